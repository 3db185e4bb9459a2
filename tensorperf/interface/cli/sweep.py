"""``tensorperf sweep``: evaluate a grid and print it (or its best points), or write the Dataset."""

from __future__ import annotations

import argparse
from typing import TextIO

from tensorperf.interface.cli.inputs import (
    OBJECTIVE,
    SCHEDULER_HELP,
    add_sweep_flags,
    sweep_inputs,
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("sweep", help="evaluate a grid given by a sweep file and/or comma-separated flag values")
    add_sweep_flags(s)
    s.add_argument("-o", "--output", help="write the Dataset (.nc, .zarr, .csv or .json)")
    s.add_argument("--limit", type=int, default=40, help="grids up to this many points print every point")
    s.add_argument("--scheduler", metavar="ADDRESS", help=SCHEDULER_HELP)
    s.add_argument(
        "--no-breakdown",
        dest="no_breakdown",
        action="store_true",
        help="leave out the per-op variables (*_op_*): under half the time and memory, for large grids",
    )


def run(args: argparse.Namespace, out: TextIO) -> int:
    from tensorperf.interface.api import sweep
    from tensorperf.interface.cli.tables import point_rows, print_best, summary
    from tensorperf.interface.reductions import default_over

    inputs, spec = sweep_inputs(args, "sweep")
    ds = sweep(**inputs, client=args.scheduler, breakdown=not args.no_breakdown)
    if args.output:
        from tensorperf.interface.io import save

        save(ds, args.output)
        print(f"wrote {args.output}", file=out)
    print(summary(ds, spec), file=out)
    size = int(ds.ttft.size)
    chosen = spec.best if spec is not None else {}
    if (size <= args.limit or not default_over(ds, list(ds.ttft.dims))) and not chosen:
        point_rows(ds, args.limit, out)  # a small grid, or one without a layout or batch to choose
        return 0
    print("", file=out)
    objective = chosen.get("objective", OBJECTIVE)
    keep = chosen.get("keep")
    if keep is not None and objective in ds:  # less dims the flags made scalar
        keep = [k for k in keep if k in ds[objective].dims]
    print_best(ds, out, objective, chosen.get("where", {}), keep, chosen.get("maximize", True))
    if size > args.limit:
        print(
            "\n(more views of the grid: tensorperf best|pareto with the same inputs; -o FILE saves every point)",
            file=out,
        )
    return 0
