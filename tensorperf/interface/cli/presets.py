"""``tensorperf presets``: the model, hardware, serving-stack and precision-recipe presets with their key numbers."""

from __future__ import annotations

import argparse
from typing import TextIO

from tensorperf.catalog import presets
from tensorperf.catalog.specs import HardwareSpec, RecipeSpec
from tensorperf.interface.report import table


def add_parser(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("presets", help="list model, hardware and serving-stack presets with key numbers")


def _marketed_memory(h: HardwareSpec) -> str:
    """The vendor's capacity and DRAM kind ("80 GB HBM3"); the usable bytes where a spec gives no marketed figure."""
    marketed = h.hbm_capacity_marketed or f"{h.hbm_capacity / 1e9:.4g} GB"
    return f"{marketed} {h.memory_type}".strip()


def run(out: TextIO) -> int:
    rows = []
    for mid in presets.models():
        m = presets.model(mid)
        rows.append(
            {
                "id": mid,
                "params B": m.num_params / 1e9,
                "active B": m.num_active_params / 1e9,
                "layers": m.num_layers,
                "d_model": m.d_model,
                "experts": m.num_experts or "-",
            }
        )
    print("Models", file=out)
    print(table(rows, ["id", "params B", "active B", "layers", "d_model", "experts"]), file=out)
    rows = []
    for hid in presets.hardware():
        h = presets.hardware_spec(hid)
        rows.append(
            {
                "id": hid,
                "bf16 TFLOP/s": h.peak_flops_bf16 / 1e12,
                "fp8 TFLOP/s": h.peak_flops_fp8 / 1e12,
                "fp4 TFLOP/s": h.peak_flops_fp4 / 1e12,
                "memory": _marketed_memory(h),
                "usable B": f"{h.hbm_capacity / 1e9:.2f}e9",
                "HBM TB/s": h.hbm_bandwidth / 1e12,
                "scale-up GPUs": h.scaleup_size,
                "scale-up GB/s": h.scaleup_bandwidth / 1e9,
            }
        )
    print(
        "\nHardware (dense peaks; memory as marketed, usable B = the bytes the device reports, which the model"
        " uses; link bandwidth per GPU per direction)",
        file=out,
    )
    print(table(rows, list(rows[0])), file=out)
    rows = [
        {
            "id": sid,
            "ms/step": st.step_overhead * 1e3,
            "ms/request": st.request_overhead * 1e3,
            "custom AR": "yes" if st.custom_allreduce else "no",
            "KV pool": f"{st.kv_cache_fraction:g} of {'free after weights' if st.kv_cache_after_weights else 'HBM'}",
            "weight-only GEMMs": ",".join(st.weight_only_formats) or "-",
            "W4A8 GEMMs": ",".join(st.w4a8_formats) or "-",
            "not native": ",".join(st.no_native_formats) or "-",
        }
        for sid, st in ((sid, presets.stack(sid)) for sid in presets.stacks())
    ]
    print(
        "\nServing stacks (host time per forward step and per request outside the passes; peer-memory"
        " all-reduce kernels; KV-cache pool)",
        file=out,
    )
    print(table(rows, list(rows[0])), file=out)
    rows = [
        {"id": rid, **{g: getattr(r, g) or "weight_dtype" for g in RecipeSpec.GROUPS}}
        for rid, r in ((rid, presets.recipe(rid)) for rid in presets.recipes())
    ]
    print("\nPrecision recipes (weight format per tensor group; docs/model.md §3.13)", file=out)
    print(table(rows, list(rows[0])), file=out)
    return 0
