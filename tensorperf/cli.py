"""Command line: ``tensorperf`` (the default sweep), ``tensorperf sweep``, ``tensorperf presets``.

Parses arguments, builds the inputs, calls the library and formats the output; no physics here.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from . import presets
from .api import sweep
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
    ds = sweep(convention=args.convention, **axes)
    if args.output:
        from .io import save
        save(ds, args.output)
        print(f"wrote {args.output}", file=out)
    frame = ds[[v for v in ("ttft", "tpot", "tokens_per_s_per_gpu", "tokens_per_s_per_user", "memory_per_gpu")
                if v in ds]].to_dataframe().reset_index()
    cols = [c for c in frame.columns if c in ("model", "hardware", "weight_dtype", "prompt_len", "output_len",
                                               "batch", "tp", "pp", "dp", "ep")
            and frame[c].nunique() > 1] + ["ttft", "tpot", "tokens_per_s_per_gpu", "tokens_per_s_per_user",
                                          "memory_per_gpu"]
    print(table(frame.to_dict("records")[: args.limit], cols), file=out)
    if len(frame) > args.limit:
        print(f"... {len(frame) - args.limit} more rows (use -o to save them all)", file=out)
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
    s.add_argument("-o", "--output", help="write the Dataset (.nc, .csv or .json)")
    s.add_argument("--limit", type=int, default=40, help="rows to print")
    sub.add_parser("presets", help="list model and hardware presets with key numbers")
    return p


def main(argv: Sequence[str] | None = None, out=None) -> int:
    out = out or sys.stdout
    try:
        args = build_parser().parse_args(argv)
        if args.command is None:
            return _default_run(out)
        if args.command == "presets":
            return _presets(out)
        return _sweep(args, out)
    except (UsageError, SpecError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
