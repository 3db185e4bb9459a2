"""``tensorperf plot``: draw a results file (pareto, breakdown, memory or sensitivity)."""

from __future__ import annotations

import argparse
from typing import TextIO

from tensorperf.interface.api import sweep
from tensorperf.interface.cli.inputs import (
    UsageError,
    assignment,
    is_results,
)

PLOT_KINDS = ("pareto", "breakdown", "memory", "sensitivity")


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


def run(args: argparse.Namespace, out: TextIO) -> int:
    from tensorperf.interface import plot

    if is_results(args.results):
        from tensorperf.interface.io import load

        ds = load(args.results)
    elif args.results.endswith(".toml"):
        from tensorperf.interface import sweepfile

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
    plot.KINDS[args.kind](ds, args.output)
    print(f"wrote {args.output}", file=out)
    return 0
