"""``tensorperf calibrate``: fit efficiency factors to measurements (train/test split); with ``--stacks``,
the serving-stack overheads per stack instead."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, TextIO

from tensorperf.interface.cli.inputs import (
    UsageError,
    csv,
)
from tensorperf.interface.report import table


def add_parser(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("calibrate", help="fit efficiency factors to published measurements (train/test split)")
    c.add_argument("file", metavar="FILE.csv", nargs="+", help="measurements CSV(s); several are fitted as one table")
    c.add_argument("-o", "--output", metavar="eff.toml", help="write the fitted factors for --efficiency")
    c.add_argument("--factors", type=csv(str), help="comma-separated factors to fit (default: a robust set)")
    c.add_argument("--train-fraction", dest="train_fraction", type=float, default=0.7)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--steps", type=int, default=150)
    c.add_argument(
        "--kernels",
        metavar="KERNELS.csv",
        help="also fit the size-dependent curves to kernel measurements and show the fit",
    )
    c.add_argument(
        "--stacks",
        action="store_true",
        help="fit each serving stack's step_overhead, request_overhead and compute_efficiency instead "
        "(split by operating point); "
        "print the table, the error before/after by metric and stack, and the stack preset TOMLs",
    )
    c.add_argument(
        "--stacks-dir",
        dest="stacks_dir",
        metavar="DIR",
        help="with --stacks: also write the stack presets as DIR/<stack>.toml",
    )


def run(args: argparse.Namespace, out: TextIO) -> int:
    if args.stacks:
        return run_stacks(args, out)
    if args.stacks_dir:
        raise UsageError("tensorperf calibrate: --stacks-dir goes with --stacks")
    from tensorperf.analysis.calibrate import DEFAULT_FACTORS, calibrate

    factors = args.factors if args.factors else list(DEFAULT_FACTORS)
    factors = [factors] if isinstance(factors, str) else factors
    kernels = None
    if args.kernels:  # read before the fit: a bad file fails at once
        from tensorperf.analysis.kernel_fit import load_kernels

        kernels = load_kernels(args.kernels)
    if len(args.file) == 1:
        measurements = args.file[0]
    else:
        from tensorperf.analysis.stacks import load_tables

        measurements = load_tables(args.file)
    name = " + ".join(args.file)
    result = calibrate(
        measurements, factors=factors, train_fraction=args.train_fraction, seed=args.seed, steps=args.steps
    )
    print(
        f"{name}: {result.rows['train']} train / {result.rows['test']} test rows (seed {args.seed}); "
        f"median |error| train {result.before['train']:.1%} -> {result.after['train']:.1%}, "
        f"test {result.before['test']:.1%} -> {result.after['test']:.1%}",
        file=out,
    )
    print(table([{"factor": k, "fitted": v} for k, v in result.factors.items()], ["factor", "fitted"]), file=out)
    if args.output:
        with open(args.output, "w") as fh:
            fh.write(result.to_toml())
        print(f"wrote {args.output} (use it with --efficiency)", file=out)
    if kernels is not None:
        from tensorperf.analysis.kernel_fit import fit_kernels, fits_table

        fits = fits_table(fit_kernels(kernels))
        print(f"\nSize-dependent efficiency curves fitted to {args.kernels}", file=out)
        print(table(fits.to_dict("records"), list(fits.columns)), file=out)
    return 0


def _compute_share(line: dict[str, Any]) -> Any:
    """The fitted compute share of a stack, or 1 and why it was not fitted."""
    from tensorperf.catalog import presets

    if line["compute_fitted"]:
        return round(line["compute_efficiency"], 3)
    measured = line["stack"] in presets.stacks() and presets.stack(line["stack"]).kernels_measured
    return "1 (its kernels measured)" if measured else "1 (too few TTFT rows)"


def _percent(value: float) -> float:
    return round(100 * value, 1)


def run_stacks(args: argparse.Namespace, out: TextIO) -> int:
    """--stacks: fit_stack_overheads on the files, then compare and preset_toml."""
    for flag, given in (("-o", args.output), ("--factors", args.factors), ("--kernels", args.kernels)):
        if given:
            raise UsageError(f"tensorperf calibrate --stacks: {flag} fits efficiency factors; leave it out")
    if args.stacks_dir and not Path(args.stacks_dir).is_dir():
        raise UsageError(f"tensorperf calibrate: --stacks-dir {args.stacks_dir!r} is not a folder")
    from tensorperf.analysis.stacks import compare, fit_stack_overheads, load_tables, preset_toml, stack_specs

    rows = load_tables(args.file)
    fit = fit_stack_overheads(rows, train_fraction=args.train_fraction, seed=args.seed)
    name = " + ".join(args.file)
    print(
        f"{name}: serving-stack overheads fitted per stack on {args.train_fraction:.0%} of each stack's "
        f"operating points (seed {args.seed}); median |error| before (no overheads) -> after",
        file=out,
    )
    lines = [
        {
            "stack": r["stack"],
            "train": r["train"],
            "test": r["test"],
            "train latency": r["train_latency"],
            "step ms": round(1e3 * r["step_overhead"], 3),
            "request ms": round(1e3 * r["request_overhead"], 1),
            "compute share": _compute_share(r),
            "train %": f"{_percent(r['train_before'])} -> {_percent(r['train_after'])}",
            "test %": f"{_percent(r['test_before'])} -> {_percent(r['test_after'])}",
            "fitted": ("yes" if r["request_fitted"] else "step only (too few serving TTFT/e2e rows)")
            if r["fitted"]
            else "no (too few latency rows)",
        }
        for r in fit.to_dict("records")
    ]
    print(table(lines, list(lines[0])), file=out)
    stats = compare(rows, stacks=stack_specs(fit), part=fit.attrs["part"], by=("metric", "stack"))
    for group in ("all", "metric", "stack"):
        part = stats[(stats["group"] == group) & (stats["ok"] > 0)]
        title = "all rows" if group == "all" else group
        print(f"\nBy {title}: median |error| % before -> after (all rows; the held-out rows)", file=out)
        lines = [
            {
                group: r["key"],
                "ok": r["ok"],
                "before": _percent(r["before"]),
                "after": _percent(r["after"]),
                "held out": r["test_ok"],
                "held-out before": _percent(r["test_before"]),
                "held-out after": _percent(r["test_after"]),
            }
            for r in part.to_dict("records")
        ]
        print(table(lines, list(lines[0])), file=out)
    for r in fit.to_dict("records"):
        text = preset_toml(r, args.file, train_fraction=args.train_fraction, seed=args.seed)
        print(f"\n# ---- tensorperf/catalog/presets/stacks/{r['stack']}.toml", file=out)
        print(text, file=out, end="")
        if args.stacks_dir:
            path = Path(args.stacks_dir) / f"{r['stack']}.toml"
            path.write_text(text)
            print(f"# wrote {path}", file=out)
    return 0
