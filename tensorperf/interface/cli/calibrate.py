"""``tensorperf calibrate``: fit efficiency factors to measurements (train/test split)."""

from __future__ import annotations

import argparse
from typing import TextIO

from tensorperf.interface.cli.inputs import (
    csv,
)
from tensorperf.interface.report import table


def add_parser(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("calibrate", help="fit efficiency factors to published measurements (train/test split)")
    c.add_argument("file", metavar="FILE.csv")
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


def run(args: argparse.Namespace, out: TextIO) -> int:
    from tensorperf.analysis.calibrate import DEFAULT_FACTORS, calibrate

    factors = args.factors if args.factors else list(DEFAULT_FACTORS)
    factors = [factors] if isinstance(factors, str) else factors
    kernels = None
    if args.kernels:  # read before the fit: a bad file fails at once
        from tensorperf.analysis.kernel_fit import load_kernels

        kernels = load_kernels(args.kernels)
    result = calibrate(args.file, factors=factors, train_fraction=args.train_fraction, seed=args.seed, steps=args.steps)
    print(
        f"{args.file}: {result.rows['train']} train / {result.rows['test']} test rows (seed {args.seed}); "
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
