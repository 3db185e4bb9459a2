"""Command line: ``tensorperf`` (the default sweep), ``tensorperf sweep``, ``tensorperf presets``,
``tensorperf validate FILE.csv`` (predicted vs published measurements).

Parses arguments, builds the inputs, calls the library and formats the output; no physics here.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from . import presets
from .api import check_efficiency, sweep
from .reductions import best
from .report import table
from .validation import SpecError

# The seed's scenario: the 1.8T MoE on 64 GPUs, prompts of 8K and 16K tokens, 1024 output tokens,
# fp16/fp8/fp4, every power-of-two layout, across the hardware presets.
POW2 = [1, 2, 4, 8, 16, 32, 64]
DEFAULT_SWEEP: dict[str, Any] = dict(
    model="gpt-moe-1.8t",
    weight_dtype=["fp16", "fp8", "fp4"],
    prompt_len=[8192, 16384],
    output_len=1024,
    batch=[1, 2, 4, 8, 16, 32, 64, 128, 256],
    tp=POW2, pp=POW2, dp=POW2, ep=[1, 2, 4, 8, 16],
    world_size=64,
)
INTERACTIVITY = (10.0, 20.0)
BEST_COLUMNS = ["hardware", "weight_dtype", "prompt_len", "tp", "pp", "dp", "ep", "batch",
                "tokens_per_s_per_gpu", "tokens_per_s_per_user", "ttft", "memory_per_gpu"]


class UsageError(Exception):
    """A bad flag or value: one line, exit code 2."""


def _csv(kind):
    def parse(text: str):
        items = [t.strip() for t in text.split(",") if t.strip()]
        try:
            values = [kind(t) for t in items]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated {kind.__name__} values, got {text!r}") from None
        return values[0] if len(values) == 1 else values
    return parse


def _default_run(out) -> int:
    hw = [h for h in presets.hardware() if h != "mi300-seed"]
    ds = sweep(hardware=hw, **DEFAULT_SWEEP)
    print(f"tensorperf default sweep: gpt-moe-1.8t on 64 GPUs, {ds.sizes['hardware']} hardware presets, "
          f"{int(ds.ttft.size):,} configurations ({int(ds.feasible.sum()):,} feasible)", file=out)
    for floor in INTERACTIVITY:
        res = best(ds, "tokens_per_s_per_gpu", where={"tokens_per_s_per_user": (">=", floor)},
                   keep=["hardware", "weight_dtype", "prompt_len"])
        rows = []
        for rec in res.to_dataframe().reset_index().to_dict("records"):
            rec.update({d: rec.get(f"best_{d}") for d in ("tp", "pp", "dp", "ep", "batch")})
            rows.append(rec)
        print(f"\nBest layout by output tokens/s per GPU at >= {floor:g} tokens/s per user "
              "('-': no layout reaches it)", file=out)
        print(table(rows, BEST_COLUMNS), file=out)
    return 0


def _presets(out) -> int:
    rows = []
    for mid in presets.models():
        m = presets.model(mid)
        rows.append({"id": mid, "params B": m.num_params / 1e9, "active B": m.num_active_params / 1e9,
                     "layers": m.num_layers, "d_model": m.d_model, "experts": m.num_experts or "-"})
    print("Models", file=out)
    print(table(rows, ["id", "params B", "active B", "layers", "d_model", "experts"]), file=out)
    rows = []
    for hid in presets.hardware():
        h = presets.hardware_spec(hid)
        rows.append({"id": hid, "bf16 TFLOP/s": h.peak_flops_bf16 / 1e12, "fp8 TFLOP/s": h.peak_flops_fp8 / 1e12,
                     "fp4 TFLOP/s": h.peak_flops_fp4 / 1e12, "HBM GB": h.hbm_capacity / 1e9,
                     "HBM TB/s": h.hbm_bandwidth / 1e12, "scale-up GPUs": h.scaleup_size,
                     "scale-up GB/s": h.scaleup_bandwidth / 1e9})
    print("\nHardware (dense peaks; link bandwidth per GPU per direction)", file=out)
    print(table(rows, list(rows[0])), file=out)
    return 0


def _sweep(args, out) -> int:
    axes = {k: getattr(args, k) for k in ("model", "hardware", "weight_dtype", "kv_dtype", "prompt_len",
                                          "output_len", "batch", "tp", "pp", "dp", "ep", "world_size")
            if getattr(args, k) is not None}
    efficiency = _efficiency_file(args.efficiency) if args.efficiency else None
    ds = sweep(convention=args.convention, efficiency=efficiency, **axes)
    if args.output:
        from .io import save
        save(ds, args.output)
        print(f"wrote {args.output}", file=out)
    shown = ds[[v for v in ("ttft", "tpot", "tokens_per_s_per_gpu", "tokens_per_s_per_user", "memory_per_gpu")
                if v in ds]]
    if not shown.ttft.dims:  # every input a scalar: one row
        shown = shown.expand_dims("point")
    frame = shown.to_dataframe().reset_index()
    cols = [c for c in frame.columns if c in ("model", "hardware", "weight_dtype", "prompt_len", "output_len",
                                               "batch", "tp", "pp", "dp", "ep")
            and frame[c].nunique() > 1] + ["ttft", "tpot", "tokens_per_s_per_gpu", "tokens_per_s_per_user",
                                          "memory_per_gpu"]
    print(table(frame.to_dict("records")[: args.limit], cols), file=out)
    if len(frame) > args.limit:
        print(f"... {len(frame) - args.limit} more rows (use -o to save them all)", file=out)
    return 0


VALIDATE_GROUPS = (("metric", "metric"), ("source", "source"), ("hardware", "hardware"),
                   ("family", "model family"))


def _efficiency_file(path: str) -> dict[str, float]:
    """A TOML table of Efficiency field -> value (top level, or under [efficiency])."""
    import tomllib

    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except OSError as e:
        raise SpecError(f"{path}: cannot read efficiency file ({e.strerror or e})") from None
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{path}: not valid TOML ({e})") from None
    table = doc["efficiency"] if set(doc) == {"efficiency"} and isinstance(doc["efficiency"], dict) else doc
    for key, value in table.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SpecError(f"{path}: efficiency {key} = {value!r} is not a number")
    try:
        return check_efficiency(table)
    except SpecError as e:
        raise SpecError(f"{path}: {e}") from None


def _validate(args, out) -> int:
    from . import fidelity

    efficiency = _efficiency_file(args.efficiency) if args.efficiency else None
    report = fidelity.predict(fidelity.load_measurements(args.file), efficiency=efficiency)
    if args.output:
        report.to_csv(args.output, index=False)
        print(f"wrote {args.output}", file=out)
    stats = fidelity.summary(report)
    overall = stats.iloc[0]
    print(f"{args.file}: {int(overall['rows'])} rows, {int(overall['ok'])} predicted "
          f"({overall['ok'] / max(overall['rows'], 1):.0%}), median |error| {overall['median']:.1%}, "
          f"p90 |error| {overall['p90']:.1%}" + (" (efficiency overrides: "
                                                  + ", ".join(f"{k}={v:g}" for k, v in efficiency.items()) + ")"
                                                  if efficiency else ""), file=out)
    columns = ["rows", "ok", "median |err| %", "p90 |err| %", "bias %"]
    for group, title in VALIDATE_GROUPS:
        part = stats[stats["group"] == group]
        rows = [{title: r["key"], "rows": int(r["rows"]), "ok": int(r["ok"]),
                 "median |err| %": round(100 * r["median"], 1), "p90 |err| %": round(100 * r["p90"], 1),
                 "bias %": round(100 * r["bias"], 1)} for r in part.to_dict("records")]
        print(f"\nBy {title} (bias: median signed error; '-': no row predicted)", file=out)
        print(table(rows, [title] + columns), file=out)
    skipped = report.loc[report["status"] != "ok", "status"].value_counts()
    if len(skipped):
        print("\nSkipped rows", file=out)
        print(table([{"rows": int(n), "status": s} for s, n in skipped.items()], ["rows", "status"]), file=out)
    return 0


def _calibrate(args, out) -> int:
    from .calibrate import DEFAULT_FACTORS, calibrate

    factors = args.factors if args.factors else list(DEFAULT_FACTORS)
    factors = [factors] if isinstance(factors, str) else factors
    result = calibrate(args.file, factors=factors, train_fraction=args.train_fraction, seed=args.seed,
                       steps=args.steps)
    print(f"{args.file}: {result.rows['train']} train / {result.rows['test']} test rows (seed {args.seed}); "
          f"median |error| train {result.before['train']:.1%} -> {result.after['train']:.1%}, "
          f"test {result.before['test']:.1%} -> {result.after['test']:.1%}", file=out)
    print(table([{"factor": k, "fitted": v} for k, v in result.factors.items()], ["factor", "fitted"]), file=out)
    if args.output:
        with open(args.output, "w") as fh:
            fh.write(result.to_toml())
        print(f"wrote {args.output} (use it with --efficiency)", file=out)
    if args.kernels:
        from .kernel_fit import fit_kernels, fits_table, load_kernels

        fits = fits_table(fit_kernels(load_kernels(args.kernels)))
        print(f"\nSize-dependent efficiency curves fitted to {args.kernels}", file=out)
        print(table(fits.to_dict("records"), list(fits.columns)), file=out)
    return 0


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit code 2, no traceback
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="tensorperf", description="Vectorized performance model of LLM inference serving. "
                "Without a command: the default sweep of the seed's 1.8T MoE scenario.")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)
    s = sub.add_parser("sweep", help="evaluate a grid given by comma-separated flag values")
    s.add_argument("--model", type=_csv(str), required=True)
    s.add_argument("--hardware", type=_csv(str), required=True)
    s.add_argument("--weight-dtype", dest="weight_dtype", type=_csv(str))
    s.add_argument("--kv-dtype", dest="kv_dtype", type=_csv(str))
    for flag in ("prompt-len", "output-len", "batch", "tp", "pp", "dp", "ep", "world-size"):
        s.add_argument(f"--{flag}", dest=flag.replace("-", "_"), type=_csv(int))
    s.add_argument("--convention", choices=["roofline", "seed"], default="roofline")
    s.add_argument("--efficiency", metavar="FILE.toml",
                   help="TOML table of Efficiency field -> value overriding every hardware's defaults")
    s.add_argument("-o", "--output", help="write the Dataset (.nc, .csv or .json)")
    s.add_argument("--limit", type=int, default=40, help="rows to print")
    sub.add_parser("presets", help="list model and hardware presets with key numbers")
    v = sub.add_parser("validate", help="predict published measurements (measurements.csv schema) and "
                       "summarize the relative error")
    v.add_argument("file", metavar="FILE.csv")
    v.add_argument("-o", "--output", help="write the per-row report (.csv)")
    v.add_argument("--efficiency", metavar="FILE.toml",
                   help="TOML table of Efficiency field -> value overriding every hardware's defaults")
    c = sub.add_parser("calibrate", help="fit efficiency factors to published measurements (train/test split)")
    c.add_argument("file", metavar="FILE.csv")
    c.add_argument("-o", "--output", metavar="eff.toml", help="write the fitted factors for --efficiency")
    c.add_argument("--factors", type=_csv(str), help="comma-separated factors to fit (default: a robust set)")
    c.add_argument("--train-fraction", dest="train_fraction", type=float, default=0.7)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--steps", type=int, default=150)
    c.add_argument("--kernels", metavar="KERNELS.csv",
                   help="also fit the size-dependent curves to kernel measurements and show the fit")
    return p


def main(argv: Sequence[str] | None = None, out=None) -> int:
    out = out or sys.stdout
    try:
        args = build_parser().parse_args(argv)
        if args.command is None:
            return _default_run(out)
        if args.command == "presets":
            return _presets(out)
        if args.command == "validate":
            return _validate(args, out)
        if args.command == "calibrate":
            return _calibrate(args, out)
        return _sweep(args, out)
    except (UsageError, SpecError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
