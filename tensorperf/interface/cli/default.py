"""``tensorperf`` without a command: the default sweep (the seed's question, embedded defaults)."""

from __future__ import annotations

from typing import Any, TextIO

from tensorperf.catalog import presets
from tensorperf.interface.report import table

# The seed's scenario: the 1.8T MoE on 64 GPUs, prompts of 8K and 16K tokens, 1024 output tokens,
# fp16/fp8/fp4, every power-of-two layout, across the hardware presets.
POW2 = [1, 2, 4, 8, 16, 32, 64]


DEFAULT_SWEEP: dict[str, Any] = dict(
    model="gpt-moe-1.8t",
    weight_dtype=["fp16", "fp8", "fp4"],
    prompt_len=[8192, 16384],
    output_len=1024,
    batch=[1, 2, 4, 8, 16, 32, 64, 128, 256],
    tp=POW2,
    pp=POW2,
    dp=POW2,
    ep=[1, 2, 4, 8, 16],
    world_size=64,
)


INTERACTIVITY = (10.0, 20.0)


BEST_COLUMNS = [
    "hardware",
    "weight_dtype",
    "prompt_len",
    "tp",
    "pp",
    "dp",
    "ep",
    "batch",
    "serving_tokens_per_s_per_gpu",
    "serving_tokens_per_s_per_user",
    "serving_ttft",
    "serving_e2e_latency",
    "memory_per_gpu",
]


def run(out: TextIO) -> int:
    from types import MappingProxyType

    from tensorperf.interface.api import reduce
    from tensorperf.run.inputs import build_grid
    from tensorperf.run.reductions import Best, Combined, Count, kept_shape

    hw = [h for h in presets.hardware() if h != "mi300-seed"]
    inputs = dict(hardware=hw, **DEFAULT_SWEEP)
    keep = ("hardware", "weight_dtype", "prompt_len")
    shape = kept_shape(build_grid(**inputs), keep)
    bests = tuple(
        Best(
            "serving_tokens_per_s_per_gpu",
            MappingProxyType({"serving_tokens_per_s_per_user": (">=", floor)}),
            keep,
            True,
            shape,
        )
        for floor in INTERACTIVITY
    )
    # one streamed pass: every chunk evaluated once, reduced to the counts and the winners
    count, *winners = reduce(Combined((Count(MappingProxyType({}), (), ()), *bests)), **inputs)
    print(
        f"tensorperf default sweep: gpt-moe-1.8t on 64 GPUs, {len(hw)} hardware presets, "
        f"{int(count.points):,} configurations ({int(count.feasible):,} feasible)",
        file=out,
    )
    for floor, res in zip(INTERACTIVITY, winners):
        rows = []
        for rec in res.to_dataframe().reset_index().to_dict("records"):
            rec.update({d: rec.get(f"best_{d}") for d in ("tp", "pp", "dp", "ep", "batch")})
            rows.append(rec)
        print(
            f"\nBest layout by serving output tokens/s per GPU at >= {floor:g} tokens/s per user "
            f"({int(DEFAULT_SWEEP['batch'][-1])} requests in flight at most, chunked prefill; "
            "'-': no layout reaches it)",
            file=out,
        )
        print(table(rows, BEST_COLUMNS), file=out)
    return 0
