"""``tensorperf plot``: draw a results file (pareto, breakdown, memory or sensitivity).

``plot pareto`` takes ``--x``/``--y`` (any two numeric variables), ``--over`` and ``--where``
(repeatable, the syntax of ``tensorperf best``/``pareto``); the other kinds take ``--sel`` only."""

from __future__ import annotations

import argparse
from types import MappingProxyType
from typing import TextIO

from tensorperf.interface.cli.inputs import (
    UsageError,
    assignment,
    is_results,
    names,
    where,
    where_dict,
)

PLOT_KINDS = ("pareto", "breakdown", "memory", "sensitivity")
PARETO_FLAGS = MappingProxyType({"x": "--x", "y": "--y", "over": "--over", "where": "--where"})  # pareto only


def add_parser(sub: argparse._SubParsersAction) -> None:
    g = sub.add_parser("plot", help="draw results: pareto, breakdown, memory or sensitivity")
    g.add_argument("kind", metavar="KIND", choices=PLOT_KINDS, help=f"one of {', '.join(PLOT_KINDS)}")
    g.add_argument("results", metavar="RESULTS", help="a results file (-o of sweep/sensitivity) or a sweep file")
    g.add_argument("-o", "--output", required=True, metavar="FILE", help="the figure (.png, .svg or .pdf)")
    g.add_argument(
        "--sel",
        type=assignment,
        action="append",
        metavar="DIM=VALUE",
        help="select one label of a dimension first (repeatable)",
    )
    g.add_argument("--x", metavar="VARIABLE", help="pareto: the x axis (default tokens_per_s_per_user)")
    g.add_argument("--y", metavar="VARIABLE", help="pareto: the y axis (default tokens_per_s_per_gpu)")
    g.add_argument(
        "--over",
        type=names,
        metavar="DIMS",
        help="pareto: dims to take the frontier over (default: the layout and batch dims)",
    )
    g.add_argument(
        "--where",
        type=where,
        action="append",
        metavar="EXPR",
        help="pareto: only points meeting EXPR, e.g. 'ttft<=0.5' or '20<=tokens_per_s_per_user<=60' "
        "(SI units; repeatable)",
    )


def run(args: argparse.Namespace, out: TextIO) -> int:
    from tensorperf.interface import plot

    options = _pareto_options(args)  # checked before any work
    if is_results(args.results):
        from tensorperf.interface.io import load

        ds = load(args.results)
    elif args.results.endswith(".toml"):
        from tensorperf.interface import sweepfile
        from tensorperf.interface.api import sweep

        spec = sweepfile.load(args.results)
        ds = sweep(**spec.inputs, efficiency=spec.efficiency, convention=spec.convention or "roofline")
    else:
        from tensorperf.interface.io import FORMATS

        raise UsageError(
            f"tensorperf plot: RESULTS {args.results!r} must be a results file "
            f"({', '.join(FORMATS)}) or a sweep file (.toml)"
        )
    plot.check_path(args.output)
    if args.sel:
        ds = plot.select(ds, dict(args.sel))
    plot.KINDS[args.kind](ds, args.output, **options)
    print(f"wrote {args.output}", file=out)
    return 0


def _pareto_options(args: argparse.Namespace) -> dict:
    """--x, --y, --over and --where as keyword arguments of plot.pareto (an error for other kinds)."""
    given = {name: getattr(args, name) for name in PARETO_FLAGS if getattr(args, name) is not None}
    if given and args.kind != "pareto":
        raise UsageError(f"tensorperf plot {args.kind}: {PARETO_FLAGS[next(iter(given))]} applies to plot pareto only")
    if "where" in given:
        given["where"] = where_dict(given["where"])
    return given
