"""``tensorperf`` without a command: the seed's question answered in one table (``--full``: the detailed
tables of the whole default grid). Embedded defaults, no input files.

The seed is the notebook the project started from: a 1.8T-parameter MoE served on 64 GPUs. The
default run sweeps its grid (8K-token prompts) over a fixed list of hardware presets (so that adding
a preset does not change this output) and ranks the hardware by the steady-state serving throughput
per GPU under an interactivity floor and a TTFT ceiling, one row each: its best dtype and layout.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, TextIO

# The hardware the default run compares: the presets of the seed's time (the mi300-seed preset is the
# seed's own, its numbers as the notebook had them). Fixed, so new presets do not change the output.
DEFAULT_HARDWARE = (
    "a100-sxm-80g",
    "b200",
    "b300",
    "gb200",
    "gb300",
    "h100-sxm",
    "h200-sxm",
    "h800",
    "mi300x",
    "mi325x",
    "mi355x",
)

POW2 = [1, 2, 4, 8, 16, 32, 64]

# The seed's scenario: the 1.8T MoE on 64 GPUs, prompts of 8K and 16K tokens, 1024 output tokens,
# fp16/fp8/fp4, every power-of-two layout (examples/seed-scenario.toml is the same grid).
DEFAULT_SWEEP: MappingProxyType[str, Any] = MappingProxyType(
    dict(
        model="gpt-moe-1.8t",
        hardware=list(DEFAULT_HARDWARE),
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
)

# The one table: 8K-token prompts (the seed's first), ranked by serving tokens/s per GPU among the
# layouts that give each user >= 20 tokens/s (a 50 ms TPOT) with a mean TTFT <= 2 s.
PROMPT_LEN = 8192
OBJECTIVE = "serving_tokens_per_s_per_gpu"
INTERACTIVITY = ("serving_tokens_per_s_per_user", ">=", 20.0)
TTFT = ("serving_ttft", "<=", 2.0)
LAYOUT = ("weight_dtype", "tp", "pp", "dp", "ep", "batch")  # what each hardware's row chose
METRICS = ("serving_tokens_per_s_per_gpu", "serving_tokens_per_s_per_user", "serving_ttft")
TABLE_COLUMNS = ["rank", "hardware", *LAYOUT, *METRICS]

# --full: both prompt lengths, every dtype, at two interactivity floors (no TTFT limit)
FULL_INTERACTIVITY = (10.0, 20.0)
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

HINT = (
    "More: `tensorperf --full` (every dtype, 8K and 16K prompts, >= 10 and >= 20 tok/s/user); a Pareto PNG:\n"
    "  tensorperf sweep examples/seed-scenario.toml --isl 8192 --no-breakdown -o seed.nc && tensorperf plot "
    "pareto seed.nc --x serving_tokens_per_s_per_user --y serving_tokens_per_s_per_gpu -o pareto.png"
)


def run(out: TextIO, full: bool = False) -> int:
    return run_full(out) if full else run_compact(out)


def _limit(cond: tuple[str, str, float]) -> str:
    name, op, value = cond
    return f"{name} {op} {value:g}" + (" s" if name == "serving_ttft" else "")


def _reasons(missing: list[str], feasible: dict[str, int]) -> dict[str, str]:
    """Why each hardware without a winner has none: no feasible layout, none within the TTFT limit, or
    none fast enough per user (then the most tok/s/user within the TTFT limit; a second, smaller pass)."""
    from tensorperf.interface.api import best

    out = {hw: "no feasible layout (memory or number formats)" for hw in missing if feasible[hw] == 0}
    rest = [hw for hw in missing if hw not in out]
    if rest:
        inputs = dict(DEFAULT_SWEEP, hardware=rest, prompt_len=PROMPT_LEN)
        fastest = best(INTERACTIVITY[0], where={TTFT[0]: TTFT[1:]}, keep=["hardware"], maximize=True, **inputs)
        for hw in rest:
            quick = fastest.sel(hardware=hw)
            found, user = bool(quick["found"]), float(quick[INTERACTIVITY[0]])
            within = f"TTFT <= {TTFT[2]:g} s"
            out[hw] = f"no layout: at most {user:.1f} tok/s/user with {within}" if found else f"no layout has {within}"
    return out


def winners() -> tuple[list[dict[str, Any]], dict[str, str], int, int]:
    """The ranked rows (one per hardware with a layout within the limits), the reason of each hardware
    without one, and the grid's points and feasible points: one streamed pass (and a small one for
    the reasons)."""
    from tensorperf.interface.api import reduce
    from tensorperf.run.inputs import build_grid
    from tensorperf.run.reductions import Best, Combined, Count, kept_shape

    inputs = dict(DEFAULT_SWEEP, hardware=list(DEFAULT_HARDWARE), prompt_len=PROMPT_LEN)
    keep = ("hardware",)
    shape = kept_shape(build_grid(**inputs), keep)
    limits = MappingProxyType({name: (op, value) for name, op, value in (INTERACTIVITY, TTFT)})
    count, best = reduce(
        Combined((Count(MappingProxyType({}), keep, shape), Best(OBJECTIVE, limits, keep, True, shape))), **inputs
    )
    rows, missing = [], []
    for hw in DEFAULT_HARDWARE:
        win = best.sel(hardware=hw)
        if not bool(win["found"]):
            missing.append(hw)
            continue
        rows.append(
            {"hardware": hw} | {d: win[f"best_{d}"].item() for d in LAYOUT} | {m: float(win[m]) for m in METRICS}
        )
    rows.sort(key=lambda r: -r[OBJECTIVE])
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank
    reasons = _reasons(missing, {hw: int(count["feasible"].sel(hardware=hw)) for hw in missing})
    return rows, reasons, int(count["points"].sum()), int(count["feasible"].sum())


def run_compact(out: TextIO) -> int:
    from tensorperf.interface.report import table

    rows, reasons, points, feasible = winners()
    print(
        "The seed question (seed: the notebook tensorperf started from): which hardware serves "
        "gpt-moe-1.8t, a 1.8T-parameter MoE, best on 64 GPUs?",
        file=out,
    )
    print(
        f"Swept {points:,} configurations ({feasible:,} feasible): {len(DEFAULT_HARDWARE)} hardware x fp16/fp8/fp4 x "
        f"power-of-two TP/PP/DP/EP x batch 1-256; {PROMPT_LEN // 1024}K-token prompts, 1024 output tokens.",
        file=out,
    )
    print(f"\nRanked by {OBJECTIVE} (continuous batching) with {_limit(INTERACTIVITY)} and {_limit(TTFT)}:", file=out)
    # the hardware column as wide as every name, so that the rows without a layout align with it
    width = max(len("hardware"), *(len(h) for h in DEFAULT_HARDWARE))
    text = table(rows, TABLE_COLUMNS, {"rank": ("rank", 1, "d"), "hardware": ("hardware".ljust(width), 1, "s")})
    print("\n".join([text] + [f"{'-':>4}  {hw:<{width}}  {why}" for hw, why in reasons.items()]), file=out)
    print(f"\n{HINT}", file=out)
    return 0


def run_full(out: TextIO) -> int:
    from tensorperf.interface.api import reduce
    from tensorperf.interface.report import table
    from tensorperf.run.inputs import build_grid
    from tensorperf.run.reductions import Best, Combined, Count, kept_shape

    inputs = dict(DEFAULT_SWEEP)
    keep = ("hardware", "weight_dtype", "prompt_len")
    shape = kept_shape(build_grid(**inputs), keep)
    bests = tuple(
        Best(
            OBJECTIVE,
            MappingProxyType({INTERACTIVITY[0]: (">=", floor)}),
            keep,
            True,
            shape,
        )
        for floor in FULL_INTERACTIVITY
    )
    # one streamed pass: every chunk evaluated once, reduced to the counts and the winners
    count, *winners = reduce(Combined((Count(MappingProxyType({}), (), ()), *bests)), **inputs)
    print(
        f"tensorperf default sweep: gpt-moe-1.8t on 64 GPUs, {len(DEFAULT_HARDWARE)} hardware presets, "
        f"{int(count.points):,} configurations ({int(count.feasible):,} feasible)",
        file=out,
    )
    for floor, res in zip(FULL_INTERACTIVITY, winners):
        rows = []
        for rec in res.to_dataframe().reset_index().to_dict("records"):
            rec.update({d: rec.get(f"best_{d}") if rec["found"] else None for d in ("tp", "pp", "dp", "ep", "batch")})
            rows.append(rec)
        print(
            f"\nBest layout by serving output tokens/s per GPU at >= {floor:g} tokens/s per user "
            f"({int(DEFAULT_SWEEP['batch'][-1])} requests in flight at most, chunked prefill; "
            "'-': no layout reaches it)",
            file=out,
        )
        print(table(rows, BEST_COLUMNS), file=out)
    return 0
