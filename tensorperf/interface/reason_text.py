"""The sentences of the feasibility rules: each broken rule of one point said with its numbers.

The rules and their numbers are the engine's (:func:`tensorperf.engine.roofline.checks.rules`); the
memory, world-size and request-rate numbers are the point's own variables. Only wording lives here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from tensorperf.units import FOUR_BIT_FORMATS, MATH_COLUMN

GB = 1e9  # bytes per GB (decimal, as the hardware presets state capacities)
TFLOPS = 1e12  # FLOP/s per TFLOP/s


def num(x: float) -> str:
    """A count as an integer, anything else with 4 significant digits."""
    x = float(x)
    if x == x and abs(x) < 1e15 and x == int(x):
        return str(int(x))
    return f"{x:.4g}"


@dataclass(frozen=True)
class Context:
    """What a point runs, for the sentences: names, the format of each weight group, the hardware's
    peaks per math column (what-ifs applied) and the stack's kernel paths beyond the native ones."""

    model: str
    hardware: str
    stack: str
    recipe: str
    weight_dtype: str
    formats: Mapping[str, str]  # tensor group -> weight format (the recipe's, else weight_dtype)
    uniform: bool  # every group in weight_dtype (the recipe names no group)
    peaks: Mapping[str, float]  # math column (bf16, fp8, fp4) -> FLOP/s
    weight_only: Sequence[str]  # formats the stack runs weight-only (dequantized to bf16 math)
    w4a8: Sequence[str]  # 4-bit formats the stack runs with fp8 math
    no_native: Sequence[str] = ()  # formats the stack does not run on their own math


def _path(group: str | None) -> Callable[[Mapping[str, float], Context], str]:
    def sentence(v: Mapping[str, float], c: Context) -> str:
        fmt = c.weight_dtype if group is None else c.formats[group]
        column = MATH_COLUMN[fmt]
        native = ", ".join(f"{k} {num(p / TFLOPS)} TFLOP/s" for k, p in c.peaks.items() if p > 0) or "none"
        if column == "none":
            why = f"{fmt} has no native math on any hardware"
        elif fmt in c.no_native and c.peaks.get(column, 0) > 0:
            why = f"stack {c.stack} does not run {fmt} on its native {column} math (no_native_formats)"
        else:
            why = f"no native {column} math (peak_flops_{column} = {num(c.peaks[column])}; native math there: {native})"
        wo = f"weight-only kernels for {', '.join(c.weight_only)}" if c.weight_only else "no weight-only kernel"
        w4 = f"W4A8 kernels for {', '.join(c.w4a8)}" if c.w4a8 else "no W4A8 kernel"
        if fmt in c.w4a8 and fmt in FOUR_BIT_FORMATS and fmt != "int4" and c.peaks.get("fp4", 0) <= 0:
            w4 += f" (W4A8 of {fmt} needs fp4 tensor cores for its fp8 x fp4 MMA, which {c.hardware} lacks)"
        elif fmt in c.w4a8 and fmt in FOUR_BIT_FORMATS and c.peaks.get("fp8", 0) <= 0:
            w4 += f" (W4A8 needs fp8 math, which {c.hardware} lacks)"
        head = f"{fmt} has no math path on {c.hardware}"
        if group is not None and not (c.uniform and fmt == c.weight_dtype):
            head = f"the {group} weights are {fmt} (recipe {c.recipe}), and {head}"
        return f"{head}: {why}; stack {c.stack} has {wo} and {w4}"

    return sentence


Sentence = Callable[[Mapping[str, float], Context], str]

# rule name (checks.rules) -> its sentence when broken
SENTENCES: Mapping[str, Sentence] = MappingProxyType(
    {
        # inconsistent: what-if inputs that break a cross-field rule together
        "kv_heads_divide_heads": lambda v, c: (
            f"num_kv_heads={num(v['kv'])} does not divide num_heads={num(v['heads'])} "
            "(each KV head serves a whole group of query heads)"
        ),
        "experts_per_token": lambda v, c: (
            f"experts_per_token={num(v['top_k'])} is outside [1, num_experts={num(v['experts'])}]"
        ),
        "d_ff_expert": lambda v, c: (
            f"d_ff_expert={num(v['d_ff_expert'])} with {num(v['experts'])} experts (must be > 0)"
        ),
        "first_dense_layers": lambda v, c: (
            f"first_dense_layers={num(v['first'])} is more than num_layers={num(v['layers'])}"
        ),
        "dense_d_ff": lambda v, c: f"d_ff={num(v['d_ff'])} with {num(v['dense'])} dense layers (must be > 0)",
        "idle_power": lambda v, c: f"idle_power {num(v['idle'])} W is above board_power {num(v['board'])} W",
        "pue": lambda v, c: f"pue {num(v['pue'])} is below 1",
        "hbm_power_fraction": lambda v, c: f"hbm_power_fraction {num(v['fraction'])} is above 1",
        "host_power_per_gpu": lambda v, c: f"host_power_per_gpu {num(v['power'])} W is below 0",
        "price_per_gpu_hour": lambda v, c: f"price_per_gpu_hour {num(v['price'])} $ is below 0",
        # divisibility
        "heads_over_tp": lambda v, c: f"tp={num(v['tp'])} does not divide {num(v['heads'])} attention heads",
        "kv_heads_over_tp": lambda v, c: f"tp={num(v['tp'])} and {num(v['kv'])} KV heads: neither divides the other",
        "d_ff_over_tp": lambda v, c: (
            f"tp={num(v['tp'])} does not divide d_ff={num(v['d_ff'])} (the MLP width of {num(v['dense'])} dense layers)"
        ),
        "experts_over_ep": lambda v, c: f"ep={num(v['ep'])} does not divide {num(v['experts'])} experts",
        "ep_over_stage": lambda v, c: (
            f"ep={num(v['ep'])} does not divide the {num(v['stage'])} GPUs of a pipeline stage "
            f"(tp·cp·dp = {num(v['tp'])}·{num(v['cp'])}·{num(v['dp'])})"
        ),
        "d_ff_expert_over_etp": lambda v, c: (
            f"the expert tensor-parallel degree tp·cp·dp/ep = {num(v['etp'])} does not divide "
            f"d_ff_expert={num(v['d_ff_expert'])}"
        ),
        "ep_without_experts": lambda v, c: f"ep={num(v['ep'])} but {c.model} has no experts (ep must be 1)",
        # pipeline
        "layers_over_pp": lambda v, c: (
            f"pp={num(v['pp'])} pipeline stages for {num(v['layers'])} layers (at most one stage per layer)"
        ),
        # batch
        "batch_over_dp": lambda v, c: f"dp={num(v['dp'])} does not divide batch={num(v['batch'])}",
        "replica_batch_over_microbatches": lambda v, c: (
            f"{num(v['microbatches'])} microbatch{'es do' if v['microbatches'] != 1 else ' does'} not divide a "
            f"replica's {num(v['replica_batch'])} requests "
            f"(batch {num(v['batch'])} / dp {num(v['dp'])})"
        ),
        # dtype
        "weights_path": _path(None),
        "attention_path": _path("attention"),
        "mlp_path": _path("mlp"),
        "experts_path": _path("experts"),
        "embeddings_path": _path("embeddings"),
        # no drafter
        "mtp_layers": lambda v, c: (
            f"speculative='mtp' drafts with the model's MTP modules, but {c.model} has none "
            f"(num_mtp_layers = {num(v['mtp_layers'])})"
        ),
        # placement
        "tp_in_domain": lambda v, c: (
            f"tp={num(v['tp'])} spans more than the {num(v['domain'])}-GPU scale-up domain of {c.hardware} and is "
            "not a multiple of it (a TP group fits one domain or spans whole domains)"
        ),
    }
)


def memory(needed: float, usable: float, weights: float, kv: float, activations: float) -> str:
    return (
        f"needs {needed / GB:.1f} GB per GPU, has {usable / GB:.1f} GB usable "
        f"(weights {weights / GB:.1f}, KV cache {kv / GB:.1f}, activations {activations / GB:.1f} GB)"
    )


def world_size(gpus: float, world: float, layout: Mapping[str, float]) -> str:
    dims = "·".join(layout)
    return (
        f"the layout uses {num(gpus)} GPUs ({dims} = {'·'.join(num(x) for x in layout.values())}), "
        f"the required world size is {num(world)}"
    )


def overloaded(rate: float, capacity: float, batch: float, e2e: float) -> str:
    return (
        f"request rate {num(rate)}/s reaches the capacity of {capacity:.4g} requests/s "
        f"({num(batch)} request{'s' * (batch != 1)} in flight, each {e2e:.4g} s end to end)"
    )


def unexplained(name: str) -> str:
    return (
        f"{name} is recorded in infeasible_reason, but its rules hold when re-derived from the point's inputs "
        "(an efficiency override, or a Dataset changed after the sweep?)"
    )
