"""``tensorperf sensitivity``: gradients and elasticities of a metric at every point."""

from __future__ import annotations

import argparse
from typing import TextIO

from tensorperf.interface.cli.inputs import (
    add_sweep_flags,
    names,
    sweep_inputs,
)
from tensorperf.interface.cli.tables import (
    dim_columns,
)
from tensorperf.interface.report import table

DEFAULT_WRT = ("compute", "memory", "gemm_memory", "attention", "hbm_bandwidth", "scaleup_bandwidth")


def add_parser(sub: argparse._SubParsersAction) -> None:
    n = sub.add_parser("sensitivity", help="elasticities of a metric to efficiencies and spec fields")
    add_sweep_flags(n)
    n.add_argument("--of", default="tpot", help="metric (default tpot)")
    n.add_argument(
        "--wrt",
        type=names,
        default=list(DEFAULT_WRT),
        help=f"parameters, comma-separated (default {','.join(DEFAULT_WRT)})",
    )
    n.add_argument("-o", "--output", help="write the sensitivity Dataset (.nc, .zarr, .csv or .json)")
    n.add_argument("--limit", type=int, default=40, help="rows to print")


def run(args: argparse.Namespace, out: TextIO) -> int:
    from tensorperf.interface.api import sensitivity

    inputs, spec = sweep_inputs(args, "sensitivity")
    res = sensitivity(of=args.of, wrt=args.wrt, **inputs)
    if args.output:
        from tensorperf.interface.io import save

        save(res, args.output)
        print(f"wrote {args.output}", file=out)
    print(
        f"Elasticity of {args.of} (d ln {args.of} / d ln parameter: % change of {args.of} per 1% of the parameter)",
        file=out,
    )
    el = res["elasticity"]
    if el.dims == ("param",):
        rows = [
            {"parameter": p, "elasticity": float(e), "value": float(res["value"])}
            for p, e in zip(res["param"].values.tolist(), el.values)
        ]
        rows.sort(key=lambda r: -abs(r["elasticity"]))
        for r in rows:
            r["elasticity"] = round(r["elasticity"], 3)
        print(table(rows, ["parameter", "elasticity"]), file=out)
        return 0
    wide = el.to_dataset(dim="param").round(3)
    wide["feasible"] = res["feasible"]
    frame = wide.to_dataframe().reset_index()
    params = [str(p) for p in res["param"].values.tolist()]
    cols = dim_columns(frame, [d for d in el.dims if d != "param"]) + params + ["feasible"]
    print(table(frame.to_dict("records")[: args.limit], cols), file=out)
    if len(frame) > args.limit:
        print(f"... {len(frame) - args.limit} more rows (use -o to save them all)", file=out)
    return 0
