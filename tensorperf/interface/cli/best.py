"""``tensorperf best``: the best point per group under constraints, streamed or from a results file."""

from __future__ import annotations

import argparse
import io
from typing import TextIO

import numpy as np

from tensorperf.interface.cli.inputs import (
    OBJECTIVE,
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
from tensorperf.interface.cli.tables import (
    print_best,
    print_streamed_best,
)
from tensorperf.run.reductions import higher_is_better


def add_parser(sub: argparse._SubParsersAction) -> None:
    b = sub.add_parser("best", help="the best point per group under constraints")
    add_sweep_flags(b, results=True)
    b.add_argument("--objective", help=f"variable to optimize (default {OBJECTIVE})")
    b.add_argument(
        "--minimize",
        action="store_true",
        help="minimize the objective (default: its own direction: lower for times, memory, power and cost)",
    )
    b.add_argument(
        "--where",
        type=where,
        action="append",
        metavar="EXPR",
        help="constraint like 'tokens_per_s_per_user>=20' (SI units; repeatable)",
    )
    b.add_argument(
        "--keep",
        type=names,
        metavar="DIMS",
        help="dims to keep (one winner each); default: every dim but the layout and batch dims",
    )
    b.add_argument("-o", "--output", help="write the winners (.nc, .zarr, .csv or .json)")
    b.add_argument(
        "--memory",
        default="2GB",
        help="working memory of a streamed sweep (default 2GB): the grid is "
        "evaluated in chunks of that size, so it may be far larger than memory",
    )
    b.add_argument("--scheduler", metavar="ADDRESS", help=SCHEDULER_HELP)


def run(args: argparse.Namespace, out: TextIO) -> int:
    if is_results(file_arg(args)):
        ds, spec = results(args, "best")
        dims = None
    else:  # streamed: the grid is evaluated in chunks under --memory, never held whole
        inputs, spec = sweep_inputs(args, "best")
        grid = grid_of(inputs)
        dims = grid.dims
        ds = None
    chosen = spec.best if spec is not None else {}
    objective = args.objective or chosen.get("objective", OBJECTIVE)
    where = where_dict(args.where) or chosen.get("where", {})
    keep = args.keep
    if keep is None and chosen.get("keep") is not None:  # the file's choice, less dims the flags made scalar
        scalar_now = dims if ds is None else (ds[objective].dims if objective in ds else None)
        keep = [k for k in chosen["keep"] if k in scalar_now] if scalar_now is not None else chosen["keep"]
    maximize = False if args.minimize else chosen.get("maximize")
    if maximize is None:  # the objective's own direction (lower for times, memory, power, cost)
        maximize = higher_is_better(objective)
    table = io.StringIO()  # the winners' table, shown unless nothing is feasible (then: why not)
    if ds is None:
        res = print_streamed_best(inputs, grid, table, objective, where, keep, maximize, args.memory, args.scheduler)
    else:
        res = print_best(ds, table, objective, where, keep, maximize)
    if bool(np.any(res["found"].values)):
        out.write(table.getvalue())
    else:
        _nothing_found(out, table.getvalue(), ds, inputs if ds is None else None, args, objective, maximize, where)
    if args.output:
        from tensorperf.interface.io import save

        save(res, args.output)
        print(f"wrote {args.output}", file=out)
    return 0


def _nothing_found(
    out: TextIO,
    table: str,
    ds: object,
    inputs: dict | None,
    args: argparse.Namespace,
    objective: str,
    maximize: bool,
    where: dict,
) -> None:
    """No group has a winner: with no feasible point at all, the points per infeasibility reason (one
    example each, its numbers spelled out) instead of an empty table; else the table and a line
    saying that the feasible points all miss the constraints."""
    from tensorperf.interface.explanation import explain
    from tensorperf.interface.explanation_stream import explain_inputs

    if ds is not None:
        if "infeasible_reason" not in ds:  # (a results file without the reasons)
            out.write(table)
            return
        why = explain(ds)
    else:
        why = explain_inputs(memory=args.memory, client=args.scheduler, **inputs)
    if why.feasible:
        out.write(table)
        miss = "meets the constraints" if where else f"has a value of {objective}"
        verb = "is" if why.feasible == 1 else "are"
        print(f"{why.feasible:,} of {why.points:,} points {verb} feasible; none of them {miss}", file=out)
        return
    print(f"Best point by {objective} ({'max' if maximize else 'min'}): no feasible point.", file=out)
    print(why.text(), file=out)
