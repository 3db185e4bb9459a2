"""``tensorperf validate``: predict published measurements and summarize the relative error."""

from __future__ import annotations

import argparse
from typing import TextIO

from tensorperf.interface.cli.inputs import (
    efficiency_file,
)
from tensorperf.interface.report import table

VALIDATE_GROUPS = (("metric", "metric"), ("source", "source"), ("hardware", "hardware"), ("family", "model family"))


def add_parser(sub: argparse._SubParsersAction) -> None:
    v = sub.add_parser(
        "validate", help="predict published measurements (measurements.csv schema) and summarize the relative error"
    )
    v.add_argument("file", metavar="FILE.csv")
    v.add_argument("-o", "--output", help="write the per-row report (.csv)")
    v.add_argument(
        "--efficiency",
        metavar="FILE.toml",
        help="TOML table of Efficiency field -> value overriding every hardware's defaults",
    )


def run(args: argparse.Namespace, out: TextIO) -> int:
    from tensorperf.analysis import fidelity

    efficiency = efficiency_file(args.efficiency) if args.efficiency else None
    report = fidelity.predict(fidelity.load_measurements(args.file), efficiency=efficiency)
    if args.output:
        report.to_csv(args.output, index=False)
        print(f"wrote {args.output}", file=out)
    stats = fidelity.summary(report)
    overall = stats.iloc[0]
    print(
        f"{args.file}: {int(overall['rows'])} rows, {int(overall['ok'])} predicted "
        f"({overall['ok'] / max(overall['rows'], 1):.0%}), median |error| {overall['median']:.1%}, "
        f"p90 |error| {overall['p90']:.1%}"
        + (
            " (efficiency overrides: " + ", ".join(f"{k}={v:g}" for k, v in efficiency.items()) + ")"
            if efficiency
            else ""
        ),
        file=out,
    )
    columns = ["rows", "ok", "median |err| %", "p90 |err| %", "bias %"]
    for group, title in VALIDATE_GROUPS:
        part = stats[stats["group"] == group]
        rows = [
            {
                title: r["key"],
                "rows": int(r["rows"]),
                "ok": int(r["ok"]),
                "median |err| %": round(100 * r["median"], 1),
                "p90 |err| %": round(100 * r["p90"], 1),
                "bias %": round(100 * r["bias"], 1),
            }
            for r in part.to_dict("records")
        ]
        print(f"\nBy {title} (bias: median signed error; '-': no row predicted)", file=out)
        print(table(rows, [title] + columns), file=out)
    skipped = report.loc[report["status"] != "ok", "status"].value_counts()
    if len(skipped):
        print("\nSkipped rows", file=out)
        print(table([{"rows": int(n), "status": s} for s, n in skipped.items()], ["rows", "status"]), file=out)
    return 0
