"""Why points are infeasible, with the numbers (``tp.explain``).

A point's reason bits (``infeasible_reason``) name the rules it breaks; here each broken rule is said
with the point's own numbers ("tp=3 does not divide 64 attention heads", "needs 212.3 GB per GPU,
has 77.0 GB usable"). The point's inputs are read back from the Dataset (its coordinates, and the
spec records in its attributes) and the engine's rules (:func:`tensorperf.engine.roofline.checks.rules`)
are evaluated on them; the memory and GPU counts are the point's own variables, and an overloaded
point's capacity is its closed loop at the same batch. A Dataset of many points is summarized: the
points with each reason and one example point's sentences per reason.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
import xarray as xr

from tensorperf.engine.conventions import CONVENTIONS
from tensorperf.engine.grid import Grid
from tensorperf.engine.masks import Reason, describe
from tensorperf.engine.roofline import checks
from tensorperf.engine.roofline.build import build
from tensorperf.engine.roofline.kernels import GROUPS
from tensorperf.interface import reason_text as say
from tensorperf.interface.point_inputs import point_inputs
from tensorperf.run.inputs import build_grid, check_efficiency
from tensorperf.validation import SpecError

# Reasons whose numbers are the point's own variables (the others come from re-deriving the rules)
_FROM_VARIABLES = Reason.MEMORY | Reason.WORLD_SIZE | Reason.OVERLOADED


def reason_name(reason: Reason) -> str:
    return describe(int(reason))


@dataclass(frozen=True)
class Finding:
    """One broken rule at one point: where (the point's labels on the Dataset's dims; a zipped
    ``point`` dim by position, with the inputs zipped on it; empty for a one-point Dataset), why (the
    reason bit and the rule's name), the sentence with the numbers, and the numbers themselves."""

    point: Mapping[str, Any]
    reason: Reason
    rule: str
    message: str
    values: Mapping[str, float]

    def __str__(self) -> str:
        return f"{reason_name(self.reason)}: {self.message}"


@dataclass(frozen=True)
class Explanation:
    """Why a Dataset's points are infeasible: ``points`` and ``feasible`` counts, the points with each
    reason bit (``counts``; a point may have several) and the ``findings``: every broken rule of a
    single point, or, for many points, those of one example point per reason (the first in C order
    with that reason alone, else the first with it). Iterating gives the findings; ``text()`` (and
    ``str``) renders them."""

    points: int
    feasible: int
    counts: Mapping[Reason, int]
    findings: tuple[Finding, ...]

    def __iter__(self) -> Iterator[Finding]:
        return iter(self.findings)

    def __len__(self) -> int:
        return len(self.findings)

    def __str__(self) -> str:
        return self.text()

    def text(self) -> str:
        """One line per reason: a single point's sentences, or a summary of many points."""
        if self.points == 1:
            if not self.findings:
                return "feasible"
            return "infeasible:\n" + "\n".join(f"  {f}" for f in self.findings)
        n_bad = self.points - self.feasible
        if self.feasible:
            head = f"{self.points:,} points, {self.feasible:,} feasible"
            head += f"; the {n_bad:,} others by reason (a point may have several):" if n_bad else ""
        else:
            head = f"none of the {self.points:,} points is feasible; by reason (a point may have several):"
        lines = [head]
        width = max([len(reason_name(r)) for r in self.counts] + [0])
        for reason, count in self.counts.items():
            example = [f for f in self.findings if f.reason == reason]
            where = ", ".join(f"{k}={v}" for k, v in example[0].point.items()) if example else ""
            said = "; ".join(f.message for f in example)
            lines.append(
                f"  {reason_name(reason):<{width}}  {count:,} point{'s' * (count != 1)}"
                + (f", e.g. {said}" if said else "")
                + (f" (at {where})" if where else "")
            )
        return "\n".join(lines)


# --------------------------------------------------------------------------- one point


def _context(grid: Grid) -> say.Context:
    model, hardware, stack, recipe = (grid.values[k][0] for k in ("model", "hardware", "stack", "recipe"))
    hw = grid.spec("hardware")  # what-ifs applied
    wdt = grid.values["weight_dtype"][0]
    return say.Context(
        model=model.name,
        hardware=hardware.name,
        stack=stack.name,
        recipe=recipe.name,
        weight_dtype=wdt,
        formats={g: getattr(recipe, g) or wdt for g in GROUPS},
        uniform=recipe.uniform,
        peaks={c: float(getattr(hw, f"peak_flops_{c}").reshape(-1)[0]) for c in ("bf16", "fp8", "fp4")},
        weight_only=tuple(stack.weight_only_formats),
        w4a8=tuple(stack.w4a8_formats),
        no_native=tuple(stack.no_native_formats),
    )


def _scalar(t: Any) -> float:
    return float(torch.as_tensor(t).reshape(-1)[0])


def _rule_findings(inputs: dict[str, Any], code: int, overrides: dict, where: Mapping[str, Any]) -> list[Finding]:
    """The broken engine rules (divisibility, pipeline, batch, dtype, placement, inconsistent)."""
    grid = build_grid(**inputs)
    w, r, d, _ = build(grid, overrides, {}, False)
    ctx = _context(grid)
    out: list[Finding] = []
    for rule in checks.rules(w, r, d):
        if rule.name == "replica_batch_over_microbatches" and any(f.rule == "batch_over_dp" for f in out):
            continue  # (a replica's batch is no integer already: nothing more to say)
        if code & rule.reason and not bool(torch.as_tensor(rule.ok).all()):
            values = {k: _scalar(v) for k, v in rule.values.items()}
            message = say.SENTENCES[rule.name](values, ctx)
            out.append(Finding(where, rule.reason, rule.name, message, MappingProxyType(values)))
    return out


def _capacity(inputs: dict[str, Any], overrides: dict) -> tuple[float, float]:
    """(requests/s, end-to-end s) of the point's closed loop at its batch: the rate it can sustain."""
    closed = {k: v for k, v in inputs.items() if k != "request_rate"}
    grid = build_grid(**closed)
    with torch.no_grad():
        ev = CONVENTIONS["roofline"](
            grid, overrides, breakdown=False, metrics=("serving_requests_per_s", "serving_e2e_latency")
        )
    return _scalar(ev.values["serving_requests_per_s"]), _scalar(ev.values["serving_e2e_latency"])


def _world_size(point: xr.Dataset, inputs: Mapping[str, Any]) -> float | None:
    """The GPUs a layout must use: the ``world_size`` input; in the seed convention, without it, the
    seed hardware's nodes x GPUs per node."""
    if "world_size" in inputs:
        return float(inputs["world_size"])
    seed = getattr(inputs.get("hardware"), "seed", None)
    if point.attrs.get("convention") == "seed" and seed is not None:
        return float(seed.gpus_per_node * seed.number_of_nodes)
    return None


def _variable_findings(point: xr.Dataset, inputs: dict, code: int, overrides: dict, where: Mapping) -> list[Finding]:
    """Memory, world size and overload, from the point's own variables (and its closed loop)."""
    out = []
    v = {k: float(point[k]) for k in point.data_vars if not point[k].dims and point[k].dtype.kind in "biuf"}
    if code & Reason.MEMORY:
        parts = ("memory_per_gpu", "memory_capacity_per_gpu", "weight_memory_per_gpu", "kv_cache_memory_per_gpu")
        nums = {k: v.get(k, float("nan")) for k in (*parts, "activation_memory_per_gpu")}
        text = say.memory(*nums.values())
        out.append(Finding(where, Reason.MEMORY, "memory", text, MappingProxyType(nums)))
    world = _world_size(point, inputs)
    if code & Reason.WORLD_SIZE and world is not None:
        seed = point.attrs.get("convention") == "seed"  # the seed counts tp·pp·dp·ep GPUs
        layout = {k: float(inputs.get(k, 1)) for k in (("tp", "pp", "dp", "ep") if seed else ("tp", "cp", "pp", "dp"))}
        nums = {"gpus": v.get("num_gpus", float(np.prod(list(layout.values())))), "world": world}
        text = say.world_size(nums["gpus"], nums["world"], layout)
        out.append(Finding(where, Reason.WORLD_SIZE, "world_size", text, MappingProxyType(nums | layout)))
    if code & Reason.OVERLOADED and "request_rate" in inputs:
        capacity, e2e = _capacity(inputs, overrides)
        if inputs.get("batch") == "max":  # the largest batch that fits, capped by the scheduler's limit
            batch = min(v.get("max_batch", float("nan")), float(inputs.get("max_num_seqs", float("inf"))))
        else:
            batch = float(inputs.get("batch", 1))
        nums = {"rate": float(inputs["request_rate"]), "capacity": capacity, "batch": batch, "e2e": e2e}
        out.append(
            Finding(where, Reason.OVERLOADED, "overloaded", say.overloaded(*nums.values()), MappingProxyType(nums))
        )
    return out


def point_findings(
    point: xr.Dataset, where: Mapping[str, Any] | None = None, efficiency: Mapping[str, float] | None = None
) -> tuple[Finding, ...]:
    """Every broken rule of one point of a sweep's Dataset (all its variables scalars but ``op``)."""
    code = int(point["infeasible_reason"])
    where = MappingProxyType(dict(where or {}))
    if not code:
        return ()
    inputs = point_inputs(point)
    overrides = check_efficiency(efficiency)
    out = []
    if point.attrs.get("convention", "roofline") == "roofline" and code & ~_FROM_VARIABLES:
        out += _rule_findings(inputs, code, overrides, where)
    out += _variable_findings(point, inputs, code, overrides, where)
    said = {f.reason for f in out}
    for reason in Reason:
        if code & reason and reason not in said:
            out.append(Finding(where, reason, "", say.unexplained(reason_name(reason)), MappingProxyType({})))
    order = {r: i for i, r in enumerate(Reason)}
    return tuple(sorted(out, key=lambda f: order[f.reason]))


# --------------------------------------------------------------------------- a Dataset


def _labels(ds: xr.Dataset, dims: tuple[str, ...], index: tuple[int, ...]) -> dict[str, Any]:
    """A point's labels on ``dims``: a dim's label, or on a dim without labels (a zipped ``point``)
    its position and the inputs zipped on it."""
    out = {}
    for d, i in zip(dims, index):
        if d in ds.coords:
            out[d] = ds[d].values[i].item()
            continue
        out[d] = int(i)
        for name in ds.coords:
            if ds[name].dims == (d,):
                out[name] = ds[name].values[i].item()
    return out


def explain(ds: xr.Dataset, *, efficiency: Mapping[str, float] | None = None) -> Explanation:
    """Why the points of a sweep's Dataset (``tp.sweep``'s result, or a selection of it down to one
    point) are infeasible, each broken rule with its numbers: "tp=3 does not divide 64 attention
    heads", "needs 212.3 GB per GPU, has 77.0 GB usable", "fp4 has no math path on h100-sxm: ...".

    One point: every broken rule. Many: the points with each reason bit, and one example point's
    broken rules per reason. ``efficiency``: the sweep's efficiency overrides, if any (an overloaded
    point's capacity depends on them). Returns an :class:`Explanation` (its ``findings`` are frozen
    records; ``str()`` renders them)."""
    if not isinstance(ds, xr.Dataset) or "infeasible_reason" not in ds.data_vars:
        raise SpecError(f"ds = {type(ds).__name__} is not allowed: must be a sweep's Dataset (with infeasible_reason)")
    reason = ds["infeasible_reason"]
    dims = tuple(reason.dims)
    codes = np.asarray(reason.values, dtype=np.int64).reshape(-1)
    counts = {r: int(np.count_nonzero(codes & r)) for r in Reason}
    counts = {r: n for r, n in counts.items() if n}
    shape = tuple(ds.sizes[d] for d in dims)
    findings: list[Finding] = []
    done: dict[int, tuple[Finding, ...]] = {}
    for r in counts:
        pure = np.flatnonzero(codes == r)
        flat = int(pure[0]) if pure.size else int(np.flatnonzero(codes & r)[0])
        if flat not in done:
            index = np.unravel_index(flat, shape) if shape else ()
            point = ds.isel(dict(zip(dims, index)))
            done[flat] = point_findings(point, _labels(ds, dims, tuple(index)), efficiency)
        findings += [f for f in done[flat] if f.reason == r]
    return Explanation(
        points=codes.size,
        feasible=int(np.count_nonzero(codes == 0)),
        counts=MappingProxyType(counts),
        findings=tuple(findings),
    )
