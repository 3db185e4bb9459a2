"""Terminal tables: SI values converted to readable units at the edge, aligned columns."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

# column -> (header, scale, format)
COLUMNS: Mapping[str, tuple[str, float, str]] = {
    "hardware": ("hardware", 1, "s"),
    "model": ("model", 1, "s"),
    "weight_dtype": ("dtype", 1, "s"),
    "prompt_len": ("prompt", 1, "d"),
    "output_len": ("output", 1, "d"),
    "tp": ("tp", 1, "d"),
    "pp": ("pp", 1, "d"),
    "dp": ("dp", 1, "d"),
    "ep": ("ep", 1, "d"),
    "batch": ("batch", 1, "d"),
    "tokens_per_s_per_gpu": ("tok/s/GPU", 1, ".1f"),
    "tokens_per_s_per_user": ("tok/s/user", 1, ".1f"),
    "ttft": ("TTFT s", 1, ".3f"),
    "tpot": ("TPOT ms", 1e3, ".2f"),
    "e2e_latency": ("E2E s", 1, ".2f"),
    "memory_per_gpu": ("mem/GPU GB", 1e-9, ".1f"),
    "num_gpus": ("GPUs", 1, "d"),
    "max_batch": ("max batch", 1, "d"),
    "mfu": ("MFU", 1, ".3f"),
    "mbu": ("MBU", 1, ".3f"),
    "kv_dtype": ("KV dtype", 1, "s"),
    "act_dtype": ("act dtype", 1, "s"),
    "microbatches": ("micro", 1, "d"),
    "world_size": ("world", 1, "d"),
    "max_num_seqs": ("max seqs", 1, "d"),
    "concurrency": ("concurrency", 1, "d"),
    "ttft_max": ("TTFT max s", 1, ".3f"),
    "decode_tokens_per_s_per_gpu": ("decode tok/s/GPU", 1, ".1f"),
    "prefill_tokens_per_s_per_gpu": ("prefill tok/s/GPU", 1, ".0f"),
    "serving_tokens_per_s_per_gpu": ("serving tok/s/GPU", 1, ".1f"),
    "serving_tokens_per_s_per_user": ("serving tok/s/user", 1, ".1f"),
    "serving_step_time": ("step ms", 1e3, ".2f"),
    "serving_ttft": ("serving TTFT s", 1, ".3f"),
    "serving_tpot": ("serving TPOT ms", 1e3, ".2f"),
    "serving_e2e_latency": ("serving E2E s", 1, ".2f"),
    "serving_requests_per_s": ("req/s", 1, ".3g"),
    "max_num_tokens": ("max tokens", 1, "d"),
    "request_rate": ("req/s in", 1, "g"),
    "num_requests": ("requests", 1, "d"),
    "isl_range_ratio": ("ISL ratio", 1, "g"),
    "osl_range_ratio": ("OSL ratio", 1, "g"),
    "weight_memory_per_gpu": ("weights GB", 1e-9, ".1f"),
    "kv_cache_memory_per_gpu": ("KV GB", 1e-9, ".1f"),
    "activation_memory_per_gpu": ("act GB", 1e-9, ".1f"),
    "memory_capacity_per_gpu": ("usable GB", 1e-9, ".1f"),
    "min_gpus_for_capacity": ("min GPUs", 1, "d"),
    "found": ("found", 1, "s"),
}


def _cell(value: Any, scale: float, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if fmt == "s" or isinstance(value, str):
        return str(value)
    if isinstance(value, int) and scale == 1:
        return f"{value:d}"
    if fmt == "d":
        return f"{int(round(float(value) * scale)):d}"
    x = float(value) * scale + 0.0  # + 0.0: no '-0'
    if x == 0:
        x = 0.0
    if fmt.startswith("~"):  # like the format after '~', but a non-zero value that rounds to 0 shows '<0.01'
        text = format(x, fmt[1:])
        floor = 10.0 ** -int(fmt[2:-1])
        return text if x == 0 or abs(x) >= floor / 2 else f"<{floor:.{fmt[2:-1]}f}"
    if fmt == "auto":  # sensible rounding for columns without a declared format
        return f"{x:.0f}" if abs(x) >= 1000 or x == int(x) else f"{x:.1f}" if abs(x) >= 100 else f"{x:.4g}"
    return format(x, fmt)


def table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    formats: Mapping[str, tuple[str, float, str]] | None = None,
) -> str:
    """Aligned text table; strings left-aligned, numbers right-aligned; NaN shows as '-'.

    ``formats`` adds or overrides column -> (header, scale, format) entries of :data:`COLUMNS`."""
    spec = {**COLUMNS, **(formats or {})}
    heads = [spec.get(c, (c, 1, "auto"))[0] for c in columns]
    cells = [[_cell(r.get(c), *spec.get(c, (c, 1, "auto"))[1:]) for c in columns] for r in rows]
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(heads)]
    left = [spec.get(c, (c, 1, "auto"))[2] == "s" or any(isinstance(r.get(c), str) for r in rows) for c in columns]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) if lft else v.rjust(w) for v, w, lft in zip(values, widths, left)).rstrip()

    return "\n".join([line(heads), line(["-" * w for w in widths])] + [line(r) for r in cells])
