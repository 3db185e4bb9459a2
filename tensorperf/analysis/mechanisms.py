"""Each modelling mechanism's effect on the published measurements, one at a time.

``python -m tensorperf.analysis.mechanisms [FILE.csv ...]`` predicts every row of the measurement
files with the shipped defaults, then again with one mechanism switched off at a time (the rest as
shipped), and prints coverage, median and p90 |error|, the bias and the per-family medians of each.
This is the before/after table of docs/validation.md ("Mechanisms, one at a time"): a mechanism's
"before" is the shipped model without it.

Switches (nothing is refitted between them):

- ``recipes``: every row's checkpoint recipe (:func:`fidelity.recipe_of`) replaced by ``uniform``
  (every tensor group in the row's weight format, scales not counted);
- ``custom all-reduce``: the stacks' peer-memory one-shot/two-shot all-reduce kernels off (NCCL only);
- ``KV after weights``: TensorRT-LLM's KV pool sized as 0.9 of the HBM like the other stacks;
- ``stack overheads``: the stacks' host time per step and per request set to 0;
- ``routing imbalance``: the slowest EP rank's expected excess load over the mean set to none
  (``imbalance=1``), where the engine has that input.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

import numpy as np
import pandas as pd

from tensorperf.analysis import fidelity
from tensorperf.axes import AXES
from tensorperf.catalog import presets

FILES = ("data/measurements.csv", "data/measurements-2.csv")
FAMILIES = ("llama-3.x", "llama-4", "gpt-oss", "deepseek", "mixtral")


def _stacks(change: Callable[[Any], Any]) -> dict[str, Any]:
    """Every stack preset the rows map to, changed by ``change``."""
    return {s: change(presets.stack(s)) for s in fidelity.STACK_IDS}


def switches() -> dict[str, dict[str, Any]]:
    """Name -> the keyword arguments of :func:`fidelity.predict` that switch one mechanism off."""
    out: dict[str, dict[str, Any]] = {
        "shipped (every mechanism)": {},
        "- recipes (uniform formats)": {"recipe": "uniform"},
        "- custom all-reduce": {"stacks": _stacks(lambda s: dataclasses.replace(s, custom_allreduce=False))},
        "- KV after weights": {
            "stacks": _stacks(lambda s: dataclasses.replace(s, kv_cache_after_weights=False, kv_cache_fraction=0.9))
        },
        "- stack overheads": {
            "stacks": _stacks(lambda s: dataclasses.replace(s, step_overhead=0.0, request_overhead=0.0))
        },
        "- stack compute share": {"stacks": _stacks(lambda s: dataclasses.replace(s, compute_efficiency=1.0))},
    }
    if "imbalance" in AXES:
        out["- routing imbalance"] = {"imbalance": 1.0}
    return out


def _stats(report: pd.DataFrame) -> dict[str, Any]:
    ok = report[report["status"] == "ok"]
    err = ok["rel_error"].astype(float)
    row: dict[str, Any] = {
        "predicted": f"{len(ok)}/{len(report)}",
        "median %": 100 * float(err.abs().median()),
        "p90 %": 100 * float(err.abs().quantile(0.9)),
        "bias %": 100 * float(err.median()),
    }
    family = ok["model"].map(fidelity.model_family)
    for f in FAMILIES:
        e = err[family == f]
        row[f"{f} %"] = 100 * float(e.abs().median()) if len(e) else np.nan
    return row


def table(paths: Sequence[str] = FILES, cases: Mapping[str, Mapping[str, Any]] | None = None) -> pd.DataFrame:
    """One line per (file, case): coverage, median and p90 |error|, bias and per-family medians."""
    cases = switches() if cases is None else cases
    lines = []
    for path in paths:
        rows = fidelity.load_measurements(path)
        for name, kwargs in cases.items():
            lines.append({"file": path.rsplit("/", 1)[-1], "case": name, **_stats(fidelity.predict(rows, **kwargs))})
    return pd.DataFrame(lines)


def render(frame: pd.DataFrame) -> str:
    """The table as text, one decimal per percentage."""
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.1f}".format):
        return frame.to_string(index=False) + "\n"


def main(argv: Sequence[str] = (), out: TextIO = sys.stdout) -> int:
    """The command-line entry point: the table of ``argv``'s files (default FILES) on ``out``."""
    out.write(render(table(tuple(argv) or FILES)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
