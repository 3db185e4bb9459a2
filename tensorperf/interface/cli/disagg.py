"""``tensorperf disagg``: disaggregated prefill/decode pools (x prefill : y decode instances): every pair of
a prefill and a decode configuration, the best deployment under limits, optionally the frontier."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from tensorperf.interface.cli.inputs import UsageError, add_sweep_flags, names, sweep_inputs, where, where_dict

HELP = "disaggregated prefill/decode pools: the best xPyD deployment under TTFT/TPOT limits"
OBJECTIVE = "serving_tokens_per_s_per_gpu"
COLUMNS = (
    "serving_tokens_per_s_per_gpu",
    "serving_tokens_per_s_per_user",
    "serving_ttft",
    "serving_tpot",
    "num_gpus",
    "prefill_instances",
    "decode_instances",
    "kv_transfer_exposed",
)


def pool_input(text: str) -> tuple[str, Any]:
    """``NAME=V1,V2``: one of a pool's own sweep inputs (numbers stay numbers; ranges as for --set)."""
    name, sep, values = text.partition("=")
    items = [v.strip() for v in values.split(",") if v.strip()]
    if not sep or not name.strip() or not items:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=V1,V2,... (e.g. tp=1,2,4 or batch=8,64)")
    if all(_numeric(v) for v in items):
        from tensorperf.interface.sweepfile import parse_values

        try:
            parsed: list[Any] = parse_values(values)
        except ValueError as e:
            raise argparse.ArgumentTypeError(f"{text!r}: {e}") from None
    else:
        parsed = items
    return name.strip(), parsed[0] if len(parsed) == 1 else parsed


def _numeric(text: str) -> bool:
    try:
        float(text.split(":")[0].lstrip("x"))
    except ValueError:
        return False
    return True


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("disagg", help=HELP)
    add_sweep_flags(p)  # the inputs both pools share
    for pool in ("prefill", "decode"):
        p.add_argument(
            f"--{pool}",
            type=pool_input,
            action="append",
            metavar="NAME=V1,V2",
            help=f"an input of the {pool} pool only, e.g. tp=1,2,4 or batch=1,8 (repeatable; a list is "
            f"the dimension {pool}_NAME)",
        )
    p.add_argument(
        "--ratio",
        type=names,
        default=["balanced"],
        metavar="RATIOS",
        help="x:y prefill:decode instances and/or 'balanced' (both pools saturated), comma-separated "
        "(default balanced)",
    )
    p.add_argument(
        "--kv-overlap", type=float, metavar="F", help="share of the KV transfer hidden (default 1 - 1/layers)"
    )
    p.add_argument(
        "--kv-tier", choices=["auto", "scaleup", "scaleout"], default="auto", help="where the KV cache travels"
    )
    p.add_argument(
        "--where", type=where, action="append", metavar="EXPR", help="a limit like 'serving_ttft<=2' (repeatable)"
    )
    p.add_argument("--objective", default=OBJECTIVE, help=f"variable to optimize (default {OBJECTIVE})")
    p.add_argument("--keep", type=names, metavar="DIMS", help="dims to keep (default: the shared swept inputs)")
    p.add_argument(
        "--pareto",
        action="store_true",
        help="also print the frontier of serving tokens/s/GPU versus tokens/s/user over the pairs and ratios",
    )
    p.add_argument(
        "-o",
        "--output",
        help="write every pair (.nc, .zarr, .csv or .json); without it and --pareto the best is streamed",
    )


def run(args: argparse.Namespace, out: TextIO) -> int:
    from tensorperf.interface.cli.tables import best_rows, where_text
    from tensorperf.interface.disaggregated import disagg
    from tensorperf.interface.reductions import best, pareto_table
    from tensorperf.interface.report import table

    inputs, _ = sweep_inputs(args, "disagg")
    if inputs.pop("convention") != "roofline":
        raise UsageError("tensorperf disagg: only the roofline convention models disaggregated pools")
    limits = where_dict(args.where)
    given = dict(
        prefill=dict(args.prefill or ()),
        decode=dict(args.decode or ()),
        where=limits,
        ratio=args.ratio if len(args.ratio) > 1 else args.ratio[0],
        kv_overlap=args.kv_overlap,
        kv_tier=args.kv_tier,
        **inputs,
    )
    ds = None
    if not (args.pareto or args.output):  # the best only: streamed, the pairs never held at once
        res = disagg(objective=args.objective, keep=args.keep, **given)
        keep = args.keep if args.keep is not None else list(res[args.objective].dims)
    else:
        ds = disagg(**given)
        pools = [d for d in ds[args.objective].dims if d.startswith(("prefill_", "decode_")) or d == "ratio"]
        keep = args.keep if args.keep is not None else [d for d in ds[args.objective].dims if d not in pools]
        n, feasible = int(ds[args.objective].size), int(ds["feasible"].sum())
        within = " within the limits" if limits else ""
        print(f"{n:,} (prefill, decode, ratio) points; {feasible:,} feasible{within}", file=out)
        res = best(ds, args.objective, keep=keep)
    rows, cols = best_rows(res, keep, args.objective, COLUMNS)
    title = f"Best disaggregated deployment by {args.objective}" + (f" with {where_text(limits)}" if limits else "")
    print(f"{title} ('-': no pair qualifies)", file=out)
    print(table(rows, cols), file=out)
    if ds is not None and args.pareto:
        x, y = "serving_tokens_per_s_per_user", "serving_tokens_per_s_per_gpu"
        front = pareto_table(ds, x, y, over=pools, extra=["serving_ttft", "num_gpus"])
        print(f"Pareto frontier of {y} versus {x} over {', '.join(pools)}: {len(front)} points", file=out)
        print(table(front.to_dict("records"), list(front.columns)), file=out)
    if ds is not None and args.output:
        from tensorperf.interface.io import save

        save(ds, args.output)
        print(f"wrote {args.output}", file=out)
    return 0
