"""Serving-stack overheads fitted to published measurements (docs/validation.md, "Serving-stack overheads").

Each row of a measurements table maps to a serving stack (:func:`fidelity.stack_of`: ``trtllm-0``,
``trtllm-1``, ``sglang``, ``vllm``, ``atom``; the rest ``ideal``). A stack adds host time per
forward step (``step_overhead``) and per request before its first token (``request_overhead``), and
its kernels reach a share ``compute_efficiency`` of the device's measured compute rates
(docs/model.md §10.4). :func:`fit_stack_overheads` fits the three, per stack, to that stack's rows:

- The rows the model predicts without overheads (status ``ok`` with every stack ``ideal``) are split
  into a train and a test part by operating point (:func:`operating_points`: every metric of one
  configuration - source, framework and version, hardware, model, dtypes, layout, lengths, batch,
  mode and stated request rate - falls on the same side), per stack: a seeded permutation of all
  operating points, the first ``train_fraction`` of each stack's points train.
- Predictions are close to linear in the two overheads and in u = 1/compute_efficiency − 1 (the
  compute time's extra share), so each row is evaluated at ``x`` = (s, r, u) and at ``x`` + (1 ms,
  0, 0), ``x`` + (0, 1 ms, 0) and ``x`` + (0, 0, 0.1): its value ``v`` and its sensitivities ``a``,
  ``b``, ``c``. The three minimize the squared relative errors of the stack's train rows,
  sum ((v + a·(s' − s) + b·(r' − r) + c·(u' − u)) / measured − 1)², subject to s', r', u' >= 0 (a
  3-variable non-negative least squares, solved exactly over the active sets, :func:`nnls`).
  Starting at x = (0, 0, 0), the fit is linearized again at its result ``iterations`` times (2 by
  default).
- A stack with fewer than :data:`MIN_TRAIN_LATENCY_ROWS` train rows that give a TTFT, TPOT or e2e
  latency keeps (0, 0, 0): throughput alone cannot tell host time from kernel efficiency. The
  request overhead needs as many rows of a serving TTFT or e2e latency (:data:`REQUEST_VARIABLES`),
  the compute share as many of a TTFT (:data:`COMPUTE_VARIABLES`: a prompt's passes, where the
  compute-bound prefill shows), else each stays at its neutral value. A stack that runs the measured
  kernels themselves (``kernels_measured``: TensorRT-LLM 1.x, ATOM, SGLang on NVIDIA) keeps
  compute_efficiency 1.

The result is a table, one line per stack (:data:`TABLE_COLUMNS`): the row counts, the fitted
values (seconds) and the median |relative error| on train and test before (no overheads) and after
(re-evaluated at the fitted values, not linearized). :func:`preset_toml` writes a stack preset from
a line, with a ``[sources]`` entry that says how it was obtained; ``tensorperf calibrate FILE ...
--stacks`` prints both.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tensorperf.analysis import fidelity
from tensorperf.catalog import presets
from tensorperf.catalog.specs import StackSpec
from tensorperf.validation import SpecError, is_number, read_toml

PROBE = 1e-3  # s: the finite-difference step of both overheads
PROBE_COMPUTE = 0.1  # the finite-difference step of u = 1/compute_efficiency − 1
FITTED_STACKS = tuple(s for s in fidelity.STACK_IDS if s != "ideal")
MIN_TRAIN_LATENCY_ROWS = 10
# the variables that are latencies (TTFT, TPOT, e2e) rather than throughputs
LATENCY_VARIABLES = frozenset(
    {"serving_ttft", "serving_tpot", "serving_e2e_latency", "ttft", "ttft_max", "tpot", "e2e_latency"}
)
# the latencies that hold the request overhead (the stack's time before a request's first pass): a
# stack's request overhead is fitted only on enough of these, else its one-time cost in a finite
# run's duration is all that moves with it and the fit would use it to lower throughputs
REQUEST_VARIABLES = frozenset({"serving_ttft", "serving_e2e_latency"})
# the latencies of a prompt's passes, where compute-bound prefill shows: a stack's compute share is
# fitted only on enough of these (decode steps and throughputs move with it far less than with the
# step overhead or the kernels' memory streams)
COMPUTE_VARIABLES = frozenset({"serving_ttft", "ttft", "ttft_max"})
TABLE_COLUMNS = (
    "stack",
    "train",
    "test",
    "train_latency",
    "fitted",
    "request_fitted",
    "compute_fitted",
    "step_overhead",
    "request_overhead",
    "compute_efficiency",
    "train_before",
    "train_after",
    "test_before",
    "test_after",
)
# what each stack preset stands for (the notes of its TOML file)
STACK_NOTES: Mapping[str, str] = {
    "trtllm-0": (
        "TensorRT-LLM 0.x (v0.5-v0.14): TensorRT engines and the C++ runtime (gptSessionBenchmark "
        "static batching, trtllm-bench with in-flight batching)."
    ),
    "trtllm-triton": (
        "TensorRT-LLM engines behind Triton Inference Server's tensorrtllm_backend (v0.14, in-flight "
        "batching): each request passes the ensemble's preprocessing (tokenizer) and postprocessing "
        "(detokenizer) Python models around the engine."
    ),
    "trtllm-1": (
        "TensorRT-LLM 1.x and the PyTorch backend (0.20, 1.0, 1.1-1.3 release candidates, 2025 main "
        "builds): trtllm-bench and trtllm-serve behind benchmark_serving (InferenceX)."
    ),
    "sglang": (
        "SGLang on NVIDIA GPUs: lmsysorg/sglang v0.5.6-v0.5.12 CUDA images behind benchmark_serving (InferenceX), "
        "and the 2025 main builds of the lmsys.org blogs (prefill-decode disaggregation, large-scale EP)."
    ),
    "sglang-rocm": (
        "SGLang on AMD GPUs: lmsysorg/sglang v0.5.9-v0.5.12 rocm700 images (mi30x and mi35x builds, AITER "
        "kernels) behind benchmark_serving (InferenceX)."
    ),
    "vllm": (
        "vLLM: the 0.4.3 ROCm build of AMD's MLPerf v4.1 submission and the CI latency tests (build 9515, "
        "version not stated)."
    ),
    "atom": "AMD ATOM (rocm/atom images, atom 0.1.1-0.1.3 and 2026 builds, ROCm 7.1-7.2) behind benchmark_serving.",
}


# ------------------------------------------------------------------------------------------ rows
def load_tables(paths: Sequence[str | Path]) -> pd.DataFrame:
    """The rows of several measurements CSVs in one checked table (ids unique across the files)."""
    if isinstance(paths, (str, Path)) or not isinstance(paths, Sequence) or not paths:
        raise SpecError(f"paths = {paths!r} is not allowed: must be a non-empty list of measurements CSV paths")
    tables = [fidelity.load_measurements(p) for p in paths]
    origin = " + ".join(str(p) for p in paths)
    return fidelity.check_measurements(pd.concat(tables, ignore_index=True), origin)


def _key(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value).strip()


# what names a configuration: where it was published, the stack and version, and every column of
# the schema that describes the run (not the metric, its value or unit)
_KEY_COLUMNS = ("source", "framework", "framework_version") + tuple(
    c for c in fidelity.REQUIRED_COLUMNS if c not in ("id", "metric", "value", "unit", "source")
)


def operating_points(rows: pd.DataFrame) -> pd.Series:
    """One label per row naming its configuration: the columns of ``_KEY_COLUMNS`` that the table
    has and the request rate its notes state ("QPS=<x>"); the rows of one run's metrics share it."""
    columns = [c for c in _KEY_COLUMNS if c in rows]
    notes = rows["notes"] if "notes" in rows else pd.Series("", index=rows.index)
    rate = [fidelity.stated_rate(n) for n in notes]
    parts = [rows[c].map(_key) for c in columns] + [pd.Series(rate, index=rows.index)]
    return pd.Series(["|".join(p) for p in zip(*parts)], index=rows.index, dtype=object)


def train_split(
    rows: pd.DataFrame, usable: Sequence[bool] | np.ndarray, train_fraction: float = 0.7, seed: int = 0
) -> pd.Series:
    """``"train"``, ``"test"`` or ``""`` (not usable) per row: the usable rows' operating points in a
    seeded permutation (``numpy.random.default_rng(seed)`` over the sorted labels), of which the first
    ``round(train_fraction · n)`` of each stack's ``n`` points are train."""
    _check(train_fraction, seed)
    usable = np.asarray(usable, dtype=bool)
    stacks = fidelity.map_rows(rows)["stack"].to_numpy()
    points = operating_points(rows).to_numpy()
    labels = sorted(set(points[usable]))
    order = np.random.default_rng(seed).permutation(len(labels))
    rank = {labels[i]: k for k, i in enumerate(order)}
    part = np.full(len(rows), "", dtype=object)
    for stack in sorted(set(stacks[usable])):
        mine = usable & (stacks == stack)
        ordered = sorted(set(points[mine]), key=rank.__getitem__)
        train = set(ordered[: int(round(train_fraction * len(ordered)))])
        part[mine] = ["train" if p in train else "test" for p in points[mine]]
    return pd.Series(part, index=rows.index, dtype=object)


def _check(train_fraction: object, seed: object) -> None:
    if not (is_number(train_fraction) and 0 < train_fraction < 1):
        raise SpecError(f"train_fraction = {train_fraction!r} is not allowed: must be a number in (0, 1)")
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SpecError(f"seed = {seed!r} is not allowed: must be an integer >= 0")


# ------------------------------------------------------------------------------------------ fit
def nnls(A: np.ndarray, y: np.ndarray) -> np.ndarray:
    """argmin ||A x − y||² subject to x >= 0, for a few columns: the best least-squares solution
    over the subsets of free columns (the rest at 0) whose solution is non-negative."""
    A, y = np.asarray(A, dtype=float), np.asarray(y, dtype=float)
    k = A.shape[1]
    best, best_cost = np.zeros(k), float(y @ y)
    for mask in range(1, 2**k):
        free = [j for j in range(k) if mask >> j & 1]
        sol, *_ = np.linalg.lstsq(A[:, free], y, rcond=None)
        if (sol < 0).any():
            continue
        x = np.zeros(k)
        x[free] = sol
        cost = float(np.sum((A @ x - y) ** 2))
        if cost < best_cost - 1e-15 * max(best_cost, 1.0):
            best, best_cost = x, cost
    return best


Values = Mapping[str, tuple[float, float, float]]  # stack id -> (step overhead, request overhead, u)


def _specs(values: Values, label: str) -> dict[str, Any]:
    """A StackSpec per stack id (``ideal`` for ids not in ``values``)."""
    out: dict[str, Any] = {s: "ideal" for s in fidelity.STACK_IDS}
    for stack, (s, r, u) in values.items():
        out[stack] = StackSpec(
            name=f"{stack}-{label}",
            step_overhead=float(s),
            request_overhead=float(r),
            compute_efficiency=1 / (1 + float(u)),
        )
    return out


def _evaluate(rows: pd.DataFrame, values: Values, label: str) -> np.ndarray:
    """Predicted values (the row's unit) with each stack at ``values`` (NaN where not ok)."""
    report = fidelity.predict(rows, stacks=_specs(values, label))
    return report["predicted"].where(report["status"] == "ok").to_numpy(dtype=float)


def _median_abs(pred: np.ndarray, measured: np.ndarray, mask: np.ndarray) -> float:
    sel = mask & np.isfinite(pred)
    return float(np.median(np.abs(pred[sel] / measured[sel] - 1))) if sel.any() else float("nan")


def fit_stack_overheads(
    rows: pd.DataFrame, train_fraction: float = 0.7, seed: int = 0, iterations: int = 2
) -> pd.DataFrame:
    """Fit (step_overhead, request_overhead) >= 0 and compute_efficiency in (0, 1] per serving stack
    on a train split of its rows.

    ``rows``: a measurements table (:func:`fidelity.check_measurements`; :func:`load_tables` reads
    several files). Returns one line per stack of :data:`FITTED_STACKS` with the columns of
    :data:`TABLE_COLUMNS`: row counts (``train``, ``test``, ``train_latency``: train rows that give
    a TTFT, TPOT or e2e latency), ``fitted`` (False: too few latency rows or no rows, the overheads
    stay 0), ``request_fitted`` (False: fewer than that many train rows of a serving TTFT or e2e
    latency, :data:`REQUEST_VARIABLES`; the request overhead stays 0), ``compute_fitted`` (False:
    fewer than that many train TTFT rows, :data:`COMPUTE_VARIABLES`; the compute share stays 1), the
    overheads in seconds, the compute share and the median |relative error| on each part before (no
    overheads, the measured kernels) and after. The split is in
    ``table.attrs["part"]``: a tuple of ``"train"``, ``"test"`` or ``""`` (not predicted), one per row
    of ``rows`` in order."""
    _check(train_fraction, seed)
    if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)) or not 1 <= iterations <= 10:
        raise SpecError(f"iterations = {iterations!r} is not allowed: must be an integer in [1, 10]")
    rows = fidelity.check_measurements(rows, "measurements")
    mapped = fidelity.map_rows(rows)
    measured = rows["value"].to_numpy(dtype=float)
    stacks = mapped["stack"].to_numpy()
    latency = mapped["variable"].isin(LATENCY_VARIABLES).to_numpy()
    holds_request = mapped["variable"].isin(REQUEST_VARIABLES).to_numpy()
    prefills = mapped["variable"].isin(COMPUTE_VARIABLES).to_numpy()
    base = _evaluate(rows, {}, "0")
    usable = np.isfinite(base)
    part = train_split(rows, usable, train_fraction, seed).to_numpy()
    train, test = part == "train", part == "test"

    x: dict[str, tuple[float, float, float]] = {s: (0.0, 0.0, 0.0) for s in FITTED_STACKS}
    fit = {
        s: bool((train & latency & (stacks == s)).sum() >= MIN_TRAIN_LATENCY_ROWS)
        for s in FITTED_STACKS  # enough latency rows to tell host time from kernels
    }
    fit_request = {
        s: fit[s] and bool((train & holds_request & (stacks == s)).sum() >= MIN_TRAIN_LATENCY_ROWS) for s in fit
    }
    fit_compute = {
        s: fit[s]
        and not _preset_or_empty(s).kernels_measured  # its kernels are the measured ones: 1 by construction
        and bool((train & prefills & (stacks == s)).sum() >= MIN_TRAIN_LATENCY_ROWS)
        for s in fit
    }
    at = base
    for k in range(iterations):
        if not any(fit.values()):
            break
        step = _evaluate(rows, {s: (v[0] + PROBE, v[1], v[2]) for s, v in x.items()}, f"s{k}")
        req = _evaluate(rows, {s: (v[0], v[1] + PROBE, v[2]) for s, v in x.items()}, f"r{k}")
        slow = (  # (no stack fits its compute share: no evaluation, its column unused)
            _evaluate(rows, {s: (v[0], v[1], v[2] + PROBE_COMPUTE) for s, v in x.items()}, f"c{k}")
            if any(fit_compute.values())
            else at
        )
        # d value / d overhead (per second) and / d u
        a, b, c = (step - at) / PROBE, (req - at) / PROBE, (slow - at) / PROBE_COMPUTE
        for s in FITTED_STACKS:
            if not fit[s]:
                continue
            sel = train & (stacks == s) & np.isfinite(at) & np.isfinite(step) & np.isfinite(req) & np.isfinite(slow)
            m = measured[sel]
            A = np.column_stack([a[sel] / m, b[sel] / m, c[sel] / m])
            # (v + a (s' − s) + b (r' − r) + c (u' − u)) / m − 1 = A x' − y
            y = 1 - (at[sel] - a[sel] * x[s][0] - b[sel] * x[s][1] - c[sel] * x[s][2]) / m
            free = [0] + [1] * fit_request[s] + [2] * fit_compute[s]  # the rest stay at their neutral 0
            solved = np.zeros(3)
            solved[free] = nnls(A[:, free], y)
            x[s] = (float(solved[0]), float(solved[1]), float(solved[2]))
        at = _evaluate(rows, x, f"x{k}")
    lines = []
    for s in FITTED_STACKS:
        mine = stacks == s
        lines.append(
            {
                "stack": s,
                "train": int((train & mine).sum()),
                "test": int((test & mine).sum()),
                "train_latency": int((train & mine & latency).sum()),
                "fitted": fit[s],
                "request_fitted": fit_request[s],
                "compute_fitted": fit_compute[s],
                "step_overhead": x[s][0],
                "request_overhead": x[s][1],
                "compute_efficiency": 1 / (1 + x[s][2]),
                "train_before": _median_abs(base, measured, train & mine),
                "train_after": _median_abs(at, measured, train & mine),
                "test_before": _median_abs(base, measured, test & mine),
                "test_after": _median_abs(at, measured, test & mine),
            }
        )
    table = pd.DataFrame(lines, columns=list(TABLE_COLUMNS))
    table.attrs["part"] = tuple(str(p) for p in part)  # a tuple: pandas compares attrs with ==
    return table


# ------------------------------------------------------------------------------------------ output
def stack_specs(table: pd.DataFrame) -> dict[str, StackSpec]:
    """The fitted stacks of a :func:`fit_stack_overheads` table as StackSpecs, by stack id (for
    ``fidelity.predict(rows, stacks=...)``)."""
    return {
        str(r["stack"]): dataclasses.replace(
            _preset_or_empty(str(r["stack"])),
            step_overhead=float(r["step_overhead"]),
            request_overhead=float(r["request_overhead"]),
            compute_efficiency=float(r.get("compute_efficiency", 1.0)),
        )
        for r in table.to_dict("records")
    }


def _preset_or_empty(stack_id: str) -> StackSpec:
    """The stack's preset (its kernel paths and other fields), or a bare stack of that name."""
    return presets.stack(stack_id) if stack_id in presets.stacks() else StackSpec(name=stack_id)


def compare(
    rows: pd.DataFrame,
    stacks: Mapping[str, Any] | None = None,
    part: Sequence[str] | None = None,
    by: Sequence[str] = ("metric", "stack"),
) -> pd.DataFrame:
    """Median |relative error| without overheads (every stack ``ideal``) and with ``stacks`` (None:
    the presets), over all rows and by each of ``by``; with ``part`` (e.g. the split of
    :func:`fit_stack_overheads`) also over its ``"test"`` rows. Columns: group, key, ok (rows
    predicted both ways), before, after, and test_ok, test_before, test_after with ``part``."""
    before = fidelity.predict(rows, stacks={s: "ideal" for s in fidelity.STACK_IDS})
    after = fidelity.predict(rows, stacks=stacks)
    both = (before["status"] == "ok") & (after["status"] == "ok")
    frame = before.assign(
        _before=before["rel_error"].abs(),
        _after=after["rel_error"].abs(),
        _ok=both.to_numpy(),
        _test=(np.asarray(part, dtype=object) == "test") if part is not None else False,
    )

    def stats(group: str, key: str, sub: pd.DataFrame) -> dict[str, Any]:
        good = sub[sub["_ok"]]
        line: dict[str, Any] = {
            "group": group,
            "key": key,
            "ok": len(good),
            "before": float(good["_before"].median()) if len(good) else np.nan,
            "after": float(good["_after"].median()) if len(good) else np.nan,
        }
        if part is not None:
            held = good[good["_test"]]
            line.update(
                test_ok=len(held),
                test_before=float(held["_before"].median()) if len(held) else np.nan,
                test_after=float(held["_after"].median()) if len(held) else np.nan,
            )
        return line

    out = [stats("all", "all", frame)]
    for group in by:
        for key, sub in frame.groupby(group, sort=True, dropna=False):
            out.append(stats(group, str(key), sub))
    return pd.DataFrame(out)


def preset_toml(
    line: Mapping[str, Any], files: Sequence[str | Path], train_fraction: float = 0.7, seed: int = 0
) -> str:
    """A stack preset file (the schema of ``presets/stacks/ideal.toml``) from one line of the table of
    :func:`fit_stack_overheads` fitted on ``files``, its ``[sources]`` saying how."""
    stack = str(line["stack"])
    names = " + ".join(str(f) for f in files)
    split = (
        f"{train_fraction:.0%}/{1 - train_fraction:.0%} split by operating point, seed {seed}: "
        f"{line['train']} train rows ({line['train_latency']} TTFT/TPOT/e2e) / {line['test']} held out"
    )
    if line["fitted"]:
        how = (
            f"fitted by tensorperf.analysis.stacks.fit_stack_overheads on the rows of {names} that map to "
            f"this stack ({split}); held-out median |error| {line['test_before']:.1%} -> {line['test_after']:.1%} "
            f"(train {line['train_before']:.1%} -> {line['train_after']:.1%}); "
            f"`tensorperf calibrate {' '.join(str(f) for f in files)} --stacks`"
        )
        sources = {"step_overhead": how, "request_overhead": how, "compute_efficiency": how}
        if _preset_or_empty(stack).kernels_measured:
            sources["compute_efficiency"] = (
                "1: the stack runs the kernels the hardware presets' efficiencies were measured on (kernels_measured)"
            )
        elif not line.get("compute_fitted", True):
            sources["compute_efficiency"] = (
                f"not fitted: 1 ({split}: fewer than {MIN_TRAIN_LATENCY_ROWS} train rows of a TTFT, the latencies "
                "where the prompt's compute-bound passes show; the device's measured kernel rates)"
            )
        if not line.get("request_fitted", True):
            sources["request_overhead"] = (
                f"not fitted: 0 ({split}: fewer than {MIN_TRAIN_LATENCY_ROWS} train rows of a serving TTFT or "
                "e2e latency, the latencies that hold it; the stack's other rows move with it only through a "
                "finite run's one-time start, so a fit would trade it for throughput)"
            )
        comment = "# Fitted per stack, not per model or row (docs/validation.md, 'Serving-stack overheads')."
    else:
        why = (
            f"(tensorperf.analysis.stacks.fit_stack_overheads on {names}, {split}: fewer than "
            f"{MIN_TRAIN_LATENCY_ROWS} train rows with a TTFT, TPOT or e2e latency; held-out median |error| "
            f"{line['test_before']:.1%}, train {line['train_before']:.1%})"
        )
        sources = {
            "step_overhead": f"not fitted: 0 {why}",
            "request_overhead": f"not fitted: 0 {why}",
            "compute_efficiency": f"not fitted: 1 {why}",
        }
        comment = (
            "# Too few published latency rows to fit: no overheads (docs/validation.md, 'Serving-stack overheads')."
        )
    notes = STACK_NOTES.get(stack, stack)
    kept, kept_sources = _profile(stack)
    out = [
        comment,
        f'id = "{stack}"',
        f"notes = {_toml_string(notes)}",
        f"step_overhead = {_toml_float(line['step_overhead'])}",
        f"request_overhead = {_toml_float(line['request_overhead'])}",
        f"compute_efficiency = {_toml_float(line.get('compute_efficiency', 1.0))}",
        *kept,
        "",
        "[sources]",
    ]
    out += [f"{k} = {_toml_string(v)}" for k, v in (sources | kept_sources).items()]
    return "\n".join(out) + "\n"


def _profile(stack: str) -> tuple[list[str], dict[str, str]]:
    """The lines of the stack preset's fields other than the fitted overheads (its all-reduce kernels,
    KV-cache sizing and other profile fields, docs/model.md §10.4) and their [sources] entries, carried
    into a refitted preset file; none for a stack without a preset."""
    if stack not in presets.stacks():
        return [], {}
    data = read_toml(Path(str(resources.files(presets) / "stacks" / f"{stack}.toml")), "spec file")
    sources = data.get("sources", {})
    fitted = {"step_overhead", "request_overhead", "compute_efficiency"}
    keys = [k for k in data if k not in {"id", "notes", "sources", "display_name"} | fitted]
    return [f"{k} = {_toml_value(data[k])}" for k in keys], {k: str(sources[k]) for k in keys if k in sources}


def _toml_value(value: Any) -> str:
    """A TOML literal of a preset value: a flag, a number, a string or a list of them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    return "[" + ", ".join(_toml_value(v) for v in value) + "]"


def _toml_float(value: float) -> str:
    text = f"{float(value):.4g}"
    return text if any(c in text for c in ".e") else text + ".0"


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
