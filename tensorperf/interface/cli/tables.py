"""Printing results as text tables: a sweep's points, the best points per group."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TextIO

import numpy as np
import pandas as pd
import xarray as xr

from tensorperf.engine.grid import Grid
from tensorperf.engine.masks import describe
from tensorperf.interface.reductions import best
from tensorperf.interface.report import table
from tensorperf.interface.sweepfile import SweepFile

METRIC_COLUMNS = ["ttft", "tpot", "tokens_per_s_per_gpu", "tokens_per_s_per_user", "memory_per_gpu"]
# the headline columns when the question is about serving under load
SERVING_COLUMNS = [
    "serving_ttft",
    "serving_tpot",
    "serving_tokens_per_s_per_gpu",
    "serving_tokens_per_s_per_user",
    "memory_per_gpu",
]


def headline(objective: str) -> list[str]:
    """The metric columns shown with an objective: the serving ones for a serving objective."""
    return SERVING_COLUMNS if objective.startswith("serving_") else METRIC_COLUMNS


def summary(ds: xr.Dataset, spec: SweepFile | None) -> str:
    sizes = ", ".join(f"{d} {n}" for d, n in ds.sizes.items() if d != "op") or "one point"
    n = int(ds.ttft.size)
    text = f"{n:,} configuration{'s' * (n != 1)} ({sizes}); {int(ds.feasible.sum()):,} feasible"
    if spec is not None and spec.description:
        text = f"{spec.description}\n{text}"
    return text


def dim_columns(frame: pd.DataFrame, dims: Collection[str]) -> list[str]:
    return [c for c in frame.columns if c in dims and frame[c].nunique() > 1]


def serving_asked(ds: xr.Dataset) -> bool:
    """Whether the sweep's inputs ask about serving under load: a request rate or count, lengths drawn
    from a range, a serving stack."""
    ranged = any(bool((ds[k] < 1).any()) for k in ("isl_range_ratio", "osl_range_ratio") if k in ds.coords)
    stacked = "stack" in ds.coords and any(str(v) != "ideal" for v in np.atleast_1d(ds["stack"].values))
    return "request_rate" in ds.coords or "num_requests" in ds.coords or ranged or stacked


def point_rows(ds: xr.Dataset, limit: int, out: TextIO) -> None:
    """Every point of a small grid: the varying inputs, the headline metrics (the serving ones when the
    inputs ask about serving under load), why infeasible."""
    headline_columns = SERVING_COLUMNS if serving_asked(ds) else METRIC_COLUMNS
    metrics = headline_columns + (["concurrency"] if ds["batch"].dtype.kind in "OUS" else [])  # batch='max'
    shown = ds[[v for v in metrics + ["infeasible_reason"] if v in ds]]
    if not shown[metrics[0]].dims:
        shown = shown.expand_dims("point")
    frame = shown.to_dataframe().reset_index()
    frame["why infeasible"] = [describe(int(c)) if c else "" for c in frame["infeasible_reason"]]
    cols = dim_columns(frame, [c for c in ds.coords if c != "op"]) + [m for m in metrics if m in frame]
    if frame["infeasible_reason"].any():
        cols.append("why infeasible")
    print(table(frame.to_dict("records")[:limit], cols), file=out)
    if len(frame) > limit:
        print(f"... {len(frame) - limit} more rows (use -o to save them all)", file=out)


def best_rows(
    res: xr.Dataset, keep: Sequence[str], objective: str, extra: Sequence[str] = ()
) -> tuple[list[dict], list[str]]:
    data = res if res["found"].dims else res.expand_dims("_row")
    frame = data.to_dataframe().reset_index()
    chosen = [c.removeprefix("best_") for c in frame.columns if c.startswith("best_")]
    frame = frame.rename(columns={f"best_{c}": c for c in chosen})
    rows = frame.to_dict("records")
    for row in rows:
        if not row["found"]:
            row.update({c: None for c in chosen})
    metrics = [objective] + [m for m in dict.fromkeys([*extra, *headline(objective)]) if m != objective and m in frame]
    cols = [k for k in keep if k in frame] + [c for c in chosen if c != "point"] + metrics
    return rows, cols


def where_text(where: dict) -> str:
    """``{"x": (">=", 20), "y": ((">=", 1), ("<=", 2))}`` -> ``"x >= 20 and y >= 1 and y <= 2"``."""
    return " and ".join(
        f"{k} {op} {v:g}" for k, cond in where.items() for op, v in (cond if isinstance(cond[0], tuple) else (cond,))
    )


def show_best(
    res: xr.Dataset, out: TextIO, objective: str, where: dict, keep: Sequence[str], maximize: bool, batch_max: bool
) -> xr.Dataset:
    """Print the winners of best() (in memory or streamed) as a table under a one-line title."""
    extra = [*where, *(["concurrency"] if batch_max else [])]  # the constrained metrics, then the batch chosen
    rows, cols = best_rows(res, keep, objective, extra)
    title = f"Best point by {objective} ({'max' if maximize else 'min'})"
    title += f" with {where_text(where)}" if where else ""
    title += f" for each {', '.join(keep)}" if keep else ""
    print(f"{title} ('-': no feasible point qualifies)", file=out)
    print(table(rows, cols), file=out)
    return res


def print_best(
    ds: xr.Dataset, out: TextIO, objective: str, where: dict, keep: list[str] | None, maximize: bool
) -> xr.Dataset:
    from tensorperf.interface.reductions import default_over
    from tensorperf.validation import unknown_name_error

    if objective not in ds.data_vars:
        raise unknown_name_error("objective", objective, ds.data_vars)
    dims = list(ds[objective].dims)
    if keep is None:
        over = default_over(ds, dims)
        keep = [d for d in dims if d not in over]
    res = best(ds, objective, where=where or None, keep=keep, maximize=maximize)
    batch_max = "batch" in ds.coords and ds["batch"].dtype.kind in "OUS"
    return show_best(res, out, objective, where, keep, maximize, batch_max)


def print_streamed_best(
    inputs: dict,
    grid: Grid,
    out: TextIO,
    objective: str,
    where: dict,
    keep: list[str] | None,
    maximize: bool,
    memory: str,
    client: str | None = None,
) -> xr.Dataset:
    from tensorperf.interface.api import best as stream_best
    from tensorperf.run.reductions import default_over

    if keep is None:
        keep = [d for d in grid.dims if d not in default_over(grid)]
    res = stream_best(
        objective, where=where or None, keep=keep, maximize=maximize, memory=memory, client=client, **inputs
    )
    return show_best(res, out, objective, where, keep, maximize, inputs.get("batch") == "max")
