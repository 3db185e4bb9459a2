"""``tensorperf report``: one self-contained HTML page of a sweep (a results file, or a sweep run from a
sweep file and flags): axes and presets, the best configurations, the interactive frontier, cost and
energy, the per-op breakdown of a frontier point and the reasons infeasible points failed."""

from __future__ import annotations

import argparse
from typing import TextIO

from tensorperf.interface.cli.inputs import add_sweep_flags, results, where, where_dict


def add_parser(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("report", help="one self-contained HTML page of a sweep (open it in a browser)")
    add_sweep_flags(r, results=True)
    r.add_argument("-o", "--output", required=True, metavar="FILE.html", help="the page to write (.html)")
    r.add_argument(
        "--where",
        type=where,
        action="append",
        metavar="EXPR",
        help="limits of the best configurations and the frontier, like 'tokens_per_s_per_user>=20' "
        "(SI units; repeatable; default: a sweep file's [best] where)",
    )
    r.add_argument("--x", default="tokens_per_s_per_user", help="the frontier's x (default tokens_per_s_per_user)")
    r.add_argument("--y", default="tokens_per_s_per_gpu", help="the frontier's y and the objective of the best")
    r.add_argument("--title", help="the page's title (default: the models, hardware and workload)")


def run(args: argparse.Namespace, out: TextIO) -> int:
    from tensorperf.interface.page import check_path, report

    check_path(args.output)  # before any sweep
    limits = where_dict(args.where)
    ds, spec = results(args, "report")
    if limits is None and spec is not None:
        limits = spec.best.get("where") or None
    path = report(ds, args.output, where=limits, x=args.x, y=args.y, title=args.title)
    print(f"wrote {path}", file=out)
    return 0
