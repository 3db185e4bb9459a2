"""Calibrate efficiency factors against published measurements, with autograd and a torch optimizer.

The rows of a measurements file are mapped to grid points exactly as ``tensorperf validate`` does
(:mod:`tensorperf.fidelity`) and evaluated in the same zipped sweeps (:func:`fidelity.sweep_groups`:
batch kind x the optional serving inputs the rows state) with the same per-row multipliers
(num_gpus for totals, the row's ``factor``), so that with no override the predictions are those of
``fidelity.predict``. The rows are split into a train and a test part (seeded, by row), and the
chosen factors are fitted on the train part by Adam on a pseudo-Huber loss of the log ratio of
prediction to measurement (the feasible rows).
Every factor is a *global* value that overrides all hardware presets (the same meaning as
``sweep(efficiency=...)``); factors not fitted keep each preset's per-hardware, per-format values.

Bounded, smooth reparameterization (no clipping): a factor in (0, 1] is ``sigmoid(u)``, a
fraction in [0, 1] likewise, and a positive size or time is ``softplus(u)·unit``; the optimizer
works on the unconstrained ``u``. The result reports the median |relative error| on train and
test before and after, and the fitted values; ``to_toml`` writes them for ``--efficiency``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd
import torch

from tensorperf.analysis import fidelity
from tensorperf.catalog.specs import BOUNDED_EFFICIENCIES, RATE_EFFICIENCIES, Efficiency
from tensorperf.engine import roofline
from tensorperf.run.inputs import build_grid, check_efficiency
from tensorperf.validation import SpecError, is_number, unknown_name_error

# factor -> (kind, unit for positive quantities)
_EFFICIENCIES = tuple(n for n in BOUNDED_EFFICIENCIES if n != "cp_overlap")  # no measured row uses cp
_SIZES = {
    "gemm_half_tokens": 64.0,
    "expert_half_tokens": 64.0,
    "comm_half_bytes": 2.0**20,
    "step_overhead": 1e-3,
    "launch_overhead": 1e-5,
}  # launch_overhead: a HardwareSpec field
FACTOR_KINDS: Mapping[str, tuple[str, float]] = MappingProxyType(
    {
        **{n: ("eff", 1.0) for n in _EFFICIENCIES},
        **{n: ("size", unit) for n, unit in _SIZES.items()},
        **{
            f"{n}_scale": ("scale", 1.0)
            for n in RATE_EFFICIENCIES + ("gemm_half_tokens", "expert_half_tokens", "comm_half_bytes")
        },
    }
)
HARDWARE_FACTORS = frozenset({"launch_overhead"})  # fitted as a HardwareSpec field, not an Efficiency one
HUBER = 0.05  # log-ratio scale where the loss turns from quadratic to linear
# Relative factors keep each preset's per-hardware, per-format structure (measured on kernels) and
# adjust it end to end; the per-step overhead has no kernel measurement. Five factors generalize
# better on held-out rows than nine (adding attention, tokens-per-expert, scale-up and overlap):
# docs/validation.md has the measured splits.
DEFAULT_FACTORS = ("compute_scale", "expert_compute_scale", "gemm_memory_scale", "memory_scale", "step_overhead")


@dataclass(frozen=True)
class Calibration:
    """Fitted global factors and the error before/after on each part of the split."""

    factors: dict[str, float]
    before: dict[str, float]  # median |rel_error| on train / test with the presets' defaults
    after: dict[str, float]
    rows: dict[str, int]
    report: pd.DataFrame  # the validation report after the fit, with a 'part' column

    def to_toml(self) -> str:
        lines = [
            "# efficiency factors fitted by tensorperf calibrate (global overrides of the presets)",
            f"# median |error| train {self.before['train']:.3f} -> {self.after['train']:.3f}, "
            f"test {self.before['test']:.3f} -> {self.after['test']:.3f}",
            "[efficiency]",
        ]
        lines += [f"{k} = {v:.6g}" for k, v in self.factors.items()]
        return "\n".join(lines) + "\n"


def _split(ids: pd.Index, train_fraction: float, seed: int) -> np.ndarray:
    """True for train rows: a seeded permutation, the first train_fraction of it."""
    order = np.random.default_rng(seed).permutation(len(ids))
    train = np.zeros(len(ids), dtype=bool)
    train[order[: int(round(train_fraction * len(ids)))]] = True
    return train


class _Model:
    """Differentiable predictions of the mapped rows (all with status ok), in the zipped sweeps of
    :func:`fidelity.sweep_groups` (batch kind x the optional inputs the rows state), built once.

    A row's prediction is the one of :func:`fidelity.predict`, in SI: its variable, times num_gpus
    for ``*_total`` metrics, times the row's ``factor`` (e.g. (E[ISL] + E[OSL]) / E[OSL] for
    total-token throughputs)."""

    def __init__(self, mapped: pd.DataFrame) -> None:
        self.n = len(mapped)
        position = pd.Series(np.arange(self.n), index=mapped.index)
        self.parts = []
        for (batch_max, _), points in fidelity.sweep_groups(mapped):
            grid = build_grid(**fidelity.grid_inputs(points, batch_max))
            where = torch.tensor(position[points.index].to_numpy())  # rows of the group in mapped
            variables = [
                (v, torch.as_tensor(np.flatnonzero((points["variable"] == v).to_numpy())))
                for v in points["variable"].unique()
            ]
            total = torch.tensor(points["times_gpus"].to_numpy(dtype=bool))
            factor = torch.tensor(points["factor"].to_numpy(dtype=float))
            self.parts.append((where, variables, total, factor, grid))

    def predict(self, factors: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Predicted SI values of the rows in the order of ``mapped`` (a tensor) and whether each
        point is feasible with a finite prediction."""
        efficiency = {k: v for k, v in factors.items() if k not in HARDWARE_FACTORS}
        fields = {k: v for k, v in factors.items() if k in HARDWARE_FACTORS}
        values = torch.full((self.n,), float("nan"), dtype=torch.float64)
        ok = torch.zeros(self.n, dtype=torch.bool)
        for where, variables, total, factor, grid in self.parts:
            metrics = {v for v, _ in variables} | {"num_gpus"}
            ev = roofline.evaluate(grid, efficiency, fields, breakdown=False, metrics=metrics)

            def flat(t: torch.Tensor, shape: tuple[int, ...] = grid.shape) -> torch.Tensor:
                return t.expand(shape).reshape(-1)  # one value per point (= per row: the grid is zipped)

            value = torch.full((len(where),), float("nan"), dtype=torch.float64)
            for variable, sel in variables:
                value = value.index_put((sel,), flat(ev.values[variable])[sel].to(torch.float64))
            gpus = flat(ev.values["num_gpus"]).to(torch.float64)
            value = torch.where(total, value * gpus, value) * factor  # as fidelity.predict does
            values = values.index_put((where,), value)
            ok[where] = (flat(ev.reason) == 0) & torch.isfinite(value.detach())
        return values, ok


def _values(raw: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for name, u in raw.items():
        kind, unit = FACTOR_KINDS[name]
        if kind == "eff":
            out[name] = torch.sigmoid(u)
        elif kind == "scale":
            out[name] = torch.exp(u)
        else:
            out[name] = torch.nn.functional.softplus(u) * unit
    return out


def _initial(name: str, value: float) -> torch.Tensor:
    kind, unit = FACTOR_KINDS[name]
    if kind == "eff":
        v = min(max(value, 1e-3), 1 - 1e-3)
        u = np.log(v / (1 - v))
    elif kind == "scale":
        u = 0.0  # start at the presets' own values
    else:
        u = np.log(np.expm1(max(value / unit, 1e-3)))
    return torch.tensor(float(u), dtype=torch.float64, requires_grad=True)


MAX_STEPS = 100_000  # optimizer iterations: far beyond convergence (150 by default), short of a hang


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _check_options(factors: object, train_fraction: object, seed: object, steps: object, lr: object) -> None:
    if isinstance(factors, str) or not isinstance(factors, (list, tuple)) or not factors:
        raise SpecError(
            f"factors = {factors!r} is not allowed: must be a non-empty list of factor names "
            f"({', '.join(FACTOR_KINDS)})"
        )
    for name in factors:
        if not isinstance(name, str) or name not in FACTOR_KINDS:
            raise unknown_name_error("factor", name, FACTOR_KINDS)
    twice = next((name for name in factors if list(factors).count(name) > 1), None)
    if twice is not None:
        raise SpecError(f"factors = {list(factors)!r} names the factor {twice!r} twice; list each once")
    if not (is_number(train_fraction) and 0 < train_fraction < 1):
        raise SpecError(f"train_fraction = {train_fraction!r} is not allowed: must be a number in (0, 1)")
    if not (_is_int(seed) and seed >= 0):
        raise SpecError(f"seed = {seed!r} is not allowed: must be an integer >= 0")
    if not (_is_int(steps) and 0 <= steps <= MAX_STEPS):
        raise SpecError(f"steps = {steps!r} is not allowed: must be an integer in [0, {MAX_STEPS}]")
    if not (is_number(lr) and lr > 0):
        raise SpecError(f"lr = {lr!r} is not allowed: must be a finite number > 0")


def calibrate(
    measurements: str | Path | pd.DataFrame,
    *,
    factors: Sequence[str] = DEFAULT_FACTORS,
    train_fraction: float = 0.7,
    seed: int = 0,
    steps: int = 150,
    lr: float = 0.05,
) -> Calibration:
    """Fit ``factors`` on a train part of ``measurements``; report error before and after on both parts.

    Every option is checked before any work: ``factors`` a non-empty list of distinct names of
    :data:`FACTOR_KINDS`, ``train_fraction`` in (0, 1), ``seed`` an integer >= 0, ``steps`` an
    integer in [0, MAX_STEPS], ``lr`` a finite number > 0; the table (a DataFrame or a CSV path) as
    :func:`fidelity.load_measurements` checks it, with at least one row to train and one to test on."""
    _check_options(factors, train_fraction, seed, steps, lr)
    if isinstance(measurements, pd.DataFrame):
        rows = fidelity.check_measurements(measurements, "measurements")
        origin = "measurements"
    else:
        rows = fidelity.load_measurements(measurements)
        origin = str(measurements)
    base = fidelity.predict(rows)
    usable = base["status"].eq("ok").to_numpy()
    if not usable.any():
        reasons = base["status"].value_counts()
        raise SpecError(
            f"{origin}: no usable rows: all {len(rows)} rows are skipped (most often "
            f"{reasons.index[0]!r}); calibration needs rows the model can predict"
        )
    rows = rows[usable].reset_index(drop=True)
    mapped = fidelity.map_rows(rows)
    measured = torch.tensor(rows["value"].astype(float).to_numpy() * mapped["si"].astype(float).to_numpy())
    train = _split(rows.index, train_fraction, seed)
    for part, mask in (("train", train), ("test", ~train)):
        if not mask.any():
            raise SpecError(
                f"train_fraction = {train_fraction!r} leaves the {part} part of the {len(rows)} usable "
                f"rows of {origin} empty; give more rows or a train_fraction nearer 0.5"
            )
    model = _Model(mapped)
    defaults = Efficiency()
    raw = {n: _initial(n, 1.0 if n.endswith("_scale") else getattr(defaults, n, 2e-6)) for n in factors}
    # start from each preset's own value where one exists: initialize at the median over the rows
    opt = torch.optim.Adam(list(raw.values()), lr=lr)
    idx_train = torch.as_tensor(np.flatnonzero(train))
    with torch.no_grad():
        start, _ = model.predict({})
    for _ in range(steps):  # optimizer iterations
        opt.zero_grad()
        values, ok = model.predict(_values(raw))
        fit = idx_train[ok[idx_train]]  # feasible train rows: the others (NaN, inf) never reach the log
        err = torch.log(values[fit]) - torch.log(measured[fit])
        # pseudo-Huber on the log ratio: quadratic near 0, linear in the tails, so the few rows
        # the model cannot express (e.g. non-native kernels) do not drag every factor
        loss = (torch.sqrt(err**2 + HUBER**2) - HUBER).mean()
        loss.backward()
        opt.step()
    with torch.no_grad():
        fitted = {n: float(v) for n, v in _values(raw).items()}
        final, ok = model.predict({n: torch.tensor(v, dtype=torch.float64) for n, v in fitted.items()})
    check_efficiency({k: v for k, v in fitted.items() if k not in HARDWARE_FACTORS})  # true by construction

    def median(pred: torch.Tensor, mask: np.ndarray) -> float:
        rel = (pred / measured - 1).abs().numpy()
        return float(np.median(rel[mask]))

    test = ~train
    report = fidelity.predict(
        rows,
        efficiency={k: v for k, v in fitted.items() if k not in HARDWARE_FACTORS},
        **{k: v for k, v in fitted.items() if k in HARDWARE_FACTORS},
    )
    report["part"] = np.where(train, "train", "test")
    return Calibration(
        factors=fitted,
        before={"train": median(start, train), "test": median(start, test)},
        after={"train": median(final, train & ok.numpy()), "test": median(final, test & ok.numpy())},
        rows={"train": int(train.sum()), "test": int(test.sum())},
        report=report,
    )
