"""``tensorperf explain``: one point spelled out: why it is infeasible, each broken rule with its numbers
(:func:`tensorperf.interface.explanation.explain`); a feasible point's per-op FLOPs, bytes, time and bound."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TextIO

import xarray as xr

from tensorperf.engine.masks import describe
from tensorperf.interface.api import sweep
from tensorperf.interface.cli.inputs import (
    INPUT_FLAGS,
    UsageError,
    add_sweep_flags,
    sweep_inputs,
)
from tensorperf.interface.explanation import explain
from tensorperf.interface.report import table


def _prefix(values: Sequence[float], unit: str) -> tuple[str, float]:
    """A unit prefix that keeps the largest of ``values`` in [1, 1000)."""
    top = max([abs(v) for v in values if v == v] + [0.0])
    for power, name in ((15, "P"), (12, "T"), (9, "G"), (6, "M"), (3, "k")):
        if top >= 10**power:
            return f"{name}{unit}", 10.0**-power
    return unit, 1.0


def _op_table(ds: xr.Dataset, phase: str) -> str:
    from tensorperf.engine.metrics import OP_BOUNDS

    flops = ds[f"{phase}_op_flops"].values
    nbytes = ds[f"{phase}_op_bytes"].values
    times = ds[f"{phase}_op_time"].values
    bound = ds[f"{phase}_op_bound"].values if f"{phase}_op_bound" in ds else None
    total = float(times.sum())
    fhead, fscale = _prefix(flops, "FLOP")
    bhead, bscale = _prefix(nbytes, "B")
    rows = []
    for i, op in enumerate(ds["op"].values.tolist()):
        if not times[i] > 0:  # no work in this model/layout
            continue
        comm = op.endswith("_comm")  # network traffic, not FLOPs or HBM bytes
        rows.append(
            {
                "op": op,
                "flop": None if comm else flops[i],
                "bytes": None if comm else nbytes[i],
                "time": times[i],
                "share": times[i] / total if total else None,
                "bound": OP_BOUNDS[int(bound[i])] if bound is not None else "-",
            }
        )
    rows.append(
        {
            "op": "total",
            "flop": float(flops.sum()),
            "bytes": float(nbytes.sum()),
            "time": total,
            "share": 1.0,
            "bound": "",
        }
    )
    formats = {
        "op": ("op", 1, "s"),
        "flop": (fhead, fscale, "~.2f"),
        "bytes": (bhead, bscale, "~.2f"),
        "time": ("time ms", 1e3, "~.3f"),
        "share": ("share %", 100, "~.1f"),
        "bound": ("bound", 1, "s"),
    }
    return table(rows, list(formats), formats)


def add_parser(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser(
        "explain",
        help="one point: why it is infeasible, with the numbers; else per-op FLOPs, bytes, time and bound",
    )
    add_sweep_flags(e)


def run(args: argparse.Namespace, out: TextIO) -> int:
    inputs, spec = sweep_inputs(args, "explain")
    for name, value in inputs.items():
        if name in ("efficiency", "convention"):
            continue
        if name == "zipped" and value:
            raise UsageError(f"tensorperf explain: one point only; --zip {','.join(value)} makes several")
        if isinstance(value, list) and len(value) > 1:
            flag = INPUT_FLAGS.get(name, f"--set {name}=")
            raise UsageError(
                f"tensorperf explain: one point only, but {flag} has {len(value)} values "
                f"({', '.join(map(str, value))}); give one value for each input"
            )
        if isinstance(value, list):
            inputs[name] = value[0]
    if inputs["convention"] != "roofline":
        raise UsageError("tensorperf explain: the per-op breakdown needs --convention roofline")
    ds = sweep(**inputs)
    p = {k: ds[k].item() for k in ds.coords if not ds[k].dims}
    n_gpus = int(ds.num_gpus)
    what_if = [f"{k}={p[k]:g}" for k in p if k not in INPUT_FLAGS and k != "op"]
    print(
        f"{p['model']} on {p['hardware']}: weights {p['weight_dtype']}, KV {p['kv_dtype']}, "
        f"prompt {p['prompt_len']}, output {p['output_len']}, batch {p['batch']}, "
        f"tp {p['tp']} x cp {p['cp']} x pp {p['pp']} x dp {p['dp']} (ep {p['ep']}"
        + (f", chunks of {p['chunk_size']}" if "chunk_size" in p else "")
        + ") "
        f"= {n_gpus} GPUs" + (f"; what-if {', '.join(what_if)}" if what_if else ""),
        file=out,
    )
    serving = [f"stack {p['stack']}", f"{p['max_num_tokens']} tokens per step"]
    if "request_rate" in p:
        serving.append(f"{p['request_rate']:g} requests/s (Poisson), at most {p['batch']} in flight")
    if "num_requests" in p:
        serving.append(f"{p['num_requests']} requests" + ("" if "request_rate" in p else " queued at once"))
    if "request_rate" not in p and "num_requests" not in p:
        serving.append(f"{p['batch']} requests in flight (closed loop)")
    ranges = [
        f"{k.split('_')[0].upper()} in [{p[k]:g}·L, L]" for k in ("isl_range_ratio", "osl_range_ratio") if p[k] < 1
    ]
    print("serving: " + ", ".join(serving + ranges), file=out)
    code = int(ds.infeasible_reason)
    if code:
        print(f"feasible: no ({describe(code)}; infeasible_reason {code})", file=out)
        for finding in explain(ds, efficiency=inputs.get("efficiency")):
            print(f"  {finding}", file=out)
    else:
        print("feasible: yes", file=out)
    gb = 1e-9
    mem = (
        f"memory {float(ds.memory_per_gpu) * gb:.1f} of {float(ds.memory_capacity_per_gpu) * gb:.1f} GB usable "
        f"per GPU (weights {float(ds.weight_memory_per_gpu) * gb:.1f}, KV cache "
        f"{float(ds.kv_cache_memory_per_gpu) * gb:.1f}, activations {float(ds.activation_memory_per_gpu) * gb:.1f})"
    )
    if code:
        print(mem, file=out)
        print("(times and per-op numbers are not defined at an infeasible point)", file=out)
        return 0
    print(
        f"serving under load: TTFT {float(ds.serving_ttft):.3f} s, TPOT {float(ds.serving_tpot) * 1e3:.2f} ms "
        f"({float(ds.serving_tokens_per_s_per_user):.1f} tokens/s/user), e2e {float(ds.serving_e2e_latency):.2f} s, "
        f"{float(ds.serving_requests_per_s):.3g} requests/s, {float(ds.serving_tokens_per_s_per_gpu):.1f} output "
        "tokens/s/GPU",
        file=out,
    )
    print(
        f"static batch (all prompts at once, then decode): TTFT {float(ds.ttft):.3f} s, TPOT "
        f"{float(ds.tpot) * 1e3:.2f} ms ({float(ds.tokens_per_s_per_user):.1f} tokens/s/user), "
        f"{float(ds.tokens_per_s_per_gpu):.1f} output tokens/s/GPU, MFU {float(ds.mfu):.3f}, MBU {float(ds.mbu):.3f}",
        file=out,
    )
    print(mem, file=out)
    print(
        "\nPrefill: the batch's prompts, per GPU, all layers (bound: compute if compute time > memory time)", file=out
    )
    print(_op_table(ds, "prefill"), file=out)
    print("\nDecode: one step at the mean context, per GPU, all layers", file=out)
    print(_op_table(ds, "decode"), file=out)
    return 0
