"""``tensorperf pareto``: the Pareto frontier of two metrics, streamed or from a results file."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from tensorperf.interface.cli.inputs import (
    SCHEDULER_HELP,
    add_sweep_flags,
    file_arg,
    grid_of,
    is_results,
    names,
    results,
    sweep_inputs,
    where,
    where_dict,
)

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr


def _streamed_pareto(args: argparse.Namespace, out: TextIO, where: dict | None) -> int:
    from tensorperf.interface.api import pareto as stream_pareto
    from tensorperf.run.reductions import default_over

    inputs, _ = sweep_inputs(args, "pareto")
    front = stream_pareto(
        args.x, args.y, over=args.over, where=where, memory=args.memory, client=args.scheduler, **inputs
    )
    frame = front.to_dataframe().reset_index(drop=True)
    extra = ["concurrency"] if inputs.get("batch") == "max" else []
    extra = [v for v in (*extra, "ttft", "tpot", "memory_per_gpu") if v in frame and v not in (args.x, args.y)]
    grid = grid_of(inputs)
    over = args.over or list(default_over(grid))
    kept = [d for d in grid.dims if d not in over]
    _print_frontier(args, out, frame, where, over, kept, extra, labels_from=list(front.coords))
    if args.output:
        if args.output.endswith(".csv"):
            frame.to_csv(args.output, index=False)
        else:
            from tensorperf.interface.io import save

            save(front, args.output)
        print(f"wrote {args.output}", file=out)
    return 0


def _print_frontier(
    args: argparse.Namespace,
    out: TextIO,
    frame: pd.DataFrame,
    where: dict | None,
    over: Sequence[str],
    kept: Sequence[str],
    extra: Sequence[str],
    labels_from: xr.Dataset | None = None,
) -> None:
    from tensorperf.interface.cli.tables import where_text
    from tensorperf.interface.report import table

    print(
        f"Pareto frontier of {args.y} versus {args.x} over {', '.join(over)}"
        + (f" with {where_text(where)}" if where else "")
        + f": {len(frame)} points",
        file=out,
    )
    columns = labels_from if labels_from is not None else frame.columns
    labels = [
        c
        for c in columns
        if c not in (args.x, args.y, *extra, "point") and (c in kept or c in over or frame[c].nunique() > 1)
    ]
    print(table(frame.to_dict("records"), labels + [args.y, args.x, *extra]), file=out)


def add_parser(sub: argparse._SubParsersAction) -> None:
    q = sub.add_parser("pareto", help="the Pareto frontier of tokens/s/GPU versus tokens/s/user")
    add_sweep_flags(q, results=True)
    q.add_argument("--x", default="tokens_per_s_per_user")
    q.add_argument("--y", default="tokens_per_s_per_gpu")
    q.add_argument(
        "--over",
        type=names,
        metavar="DIMS",
        help="dims to take the frontier over (default: the layout and batch dims)",
    )
    q.add_argument("--where", type=where, action="append", metavar="EXPR")
    q.add_argument("-o", "--output", help="write the frontier (.csv: the table; .nc/.zarr/.json: the Dataset)")
    q.add_argument("--memory", default="2GB", help="working memory of a streamed sweep (default 2GB)")
    q.add_argument("--scheduler", metavar="ADDRESS", help=SCHEDULER_HELP)


def run(args: argparse.Namespace, out: TextIO) -> int:
    from tensorperf.interface.reductions import default_over, pareto, pareto_table

    where = where_dict(args.where)
    if not is_results(file_arg(args)):  # streamed: the grid is evaluated in chunks under --memory
        return _streamed_pareto(args, out, where)
    ds, _ = results(args, "pareto")
    extra = ["concurrency"] if "batch" in ds.coords and ds["batch"].dtype.kind in "OUS" else []  # batch='max'
    extra = [v for v in (*extra, "ttft", "tpot", "memory_per_gpu") if v in ds.data_vars and v not in (args.x, args.y)]
    frame = pareto_table(ds, args.x, args.y, over=args.over, where=where, extra=extra)
    dims = [d for d in ds.dims if d in ds[args.x].dims or d in ds[args.y].dims]
    over = args.over or default_over(ds, dims)
    kept = [d for d in dims if d not in over]
    _print_frontier(args, out, frame, where, over, kept, extra)
    if args.output:
        if args.output.endswith(".csv"):
            frame.to_csv(args.output, index=False)
        else:
            from tensorperf.interface.io import save

            save(pareto(ds, args.x, args.y, over=args.over, where=where), args.output)
        print(f"wrote {args.output}", file=out)
    return 0
