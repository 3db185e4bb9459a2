"""The metric registry and the Evaluation a convention returns (tensors on the grid's axes plus the
infeasibility reason bits).

Each :class:`Metric` declares everything about one output variable: its units and long name, whether
it is NaN where infeasible, which conventions produce it, the roofline passes its formula needs, and
whether it is computed whether asked for or not. A convention reads what it computes from here (the
roofline convention's formulas are in :mod:`tensorperf.engine.roofline.formulas`, one per metric).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from types import MappingProxyType

import torch

from tensorperf.engine.masks import Reason

# What bounds an op (the codes of prefill_op_bound / decode_op_bound are indices into this tuple).
OP_BOUNDS = ("none", "compute", "memory", "communication")


class Pass(enum.Enum):
    """The roofline convention's passes through the model; a metric's formula needs some of them, and
    a pass no wanted metric needs is skipped."""

    PREFILL = "prefill"
    DECODE = "decode"
    SERVING = "serving"  # continuous batching under load (closed loop, request rate, N requests)


PREFILL, DECODE, SERVING = Pass.PREFILL, Pass.DECODE, Pass.SERVING
ROOFLINE, SEED = "roofline", "seed"  # convention names (tensorperf.engine.conventions)
BOTH = frozenset({ROOFLINE, SEED})


@dataclass(frozen=True)
class Metric:
    """One output variable.

    ``masked``: NaN where infeasible. ``conventions``: the conventions that produce it (none: formed
    from the infeasibility reason by the Dataset). ``passes``: the roofline passes its formula needs.
    ``always``: computed whether asked for or not (memory and counts: feasibility needs them).
    ``per_op``: a per-op breakdown variable, an ``op`` axis after the grid's, computed with
    ``breakdown=True`` only (and then whether asked for or not). ``higher_is_better``: the direction
    best-point searches and frontiers take by default (throughput: higher; time, memory, power,
    energy and cost: lower)."""

    units: str
    long_name: str
    masked: bool = True
    conventions: AbstractSet[str] = frozenset({ROOFLINE})
    passes: AbstractSet[Pass] = frozenset()
    always: bool = False
    per_op: bool = False
    higher_is_better: bool = True  # the default direction of a search for its best value

    def __post_init__(self) -> None:  # sets given as sets are kept as frozensets (a Metric is hashable)
        object.__setattr__(self, "conventions", frozenset(self.conventions))
        object.__setattr__(self, "passes", frozenset(self.passes))


def _bound_codes(phase: str) -> str:
    return (
        f"what bounds each operation in {phase}: "
        + ", ".join(f"{i}={b}" for i, b in enumerate(OP_BOUNDS))
        + " (compute: compute time > memory time)"
    )


METRICS: Mapping[str, Metric] = MappingProxyType(
    {
        "ttft": Metric(
            "s", "time to first token (mean over the batch)", conventions=BOTH, passes={PREFILL}, higher_is_better=False
        ),
        "ttft_max": Metric(
            "s",
            "time until the last request of the batch has its first token",
            passes={PREFILL},
            higher_is_better=False,
        ),
        "tpot": Metric(
            "s",
            "time per output token (mean over the generation)",
            conventions=BOTH,
            passes={DECODE},
            higher_is_better=False,
        ),
        "e2e_latency": Metric(
            "s", "end-to-end latency of a request", conventions=BOTH, passes={PREFILL, DECODE}, higher_is_better=False
        ),
        "tokens_per_s_per_gpu": Metric(
            "tokens/s", "output tokens per second per GPU", conventions=BOTH, passes={PREFILL, DECODE}
        ),
        "tokens_per_s_per_user": Metric(
            "tokens/s", "output tokens per second seen by one user", conventions=BOTH, passes={DECODE}
        ),
        "decode_tokens_per_s_per_gpu": Metric(
            "tokens/s", "decode-phase output tokens per second per GPU", passes={DECODE}
        ),
        "prefill_tokens_per_s_per_gpu": Metric(
            "tokens/s", "prompt tokens per second per GPU during prefill", passes={PREFILL}
        ),
        "serving_ttft": Metric(
            "s",
            "serving: mean time from a request's arrival to its first token (queueing included)",
            passes={SERVING},
            higher_is_better=False,
        ),
        "serving_tpot": Metric(
            "s",
            "serving: mean time between a request's output tokens (steps shared with prefill chunks)",
            passes={SERVING},
            higher_is_better=False,
        ),
        "serving_e2e_latency": Metric(
            "s",
            "serving: mean time from a request's arrival to its last token",
            passes={SERVING},
            higher_is_better=False,
        ),
        "serving_requests_per_s": Metric(
            "1/s", "serving: requests completed per second on the deployment", passes={SERVING}
        ),
        "serving_step_time": Metric(
            "s",
            "serving: mean continuous-batching step (decode tokens plus prefill chunks) at the load",
            passes={SERVING},
            higher_is_better=False,
        ),
        "serving_tokens_per_s_per_gpu": Metric(
            "tokens/s",
            "serving: output tokens per second per GPU (continuous batching, prefill interleaved)",
            passes={SERVING},
        ),
        "serving_tokens_per_s_per_user": Metric(
            "tokens/s", "serving: output tokens per second per request (1 / serving_tpot)", passes={SERVING}
        ),
        "concurrency": Metric(
            "1", "requests in flight on the deployment (the batch; max_batch when batch='max')", always=True
        ),
        "memory_per_gpu": Metric(
            "bytes",
            "memory needed per GPU (worst pipeline stage)",
            masked=False,
            conventions=BOTH,
            always=True,
            higher_is_better=False,
        ),
        "weight_memory_per_gpu": Metric(
            "bytes", "weight bytes resident per GPU (worst stage)", masked=False, always=True, higher_is_better=False
        ),
        "kv_cache_memory_per_gpu": Metric(
            "bytes",
            "KV-cache bytes per GPU at the end of generation",
            masked=False,
            always=True,
            higher_is_better=False,
        ),
        "activation_memory_per_gpu": Metric(
            "bytes", "activation and workspace bytes per GPU", masked=False, always=True, higher_is_better=False
        ),
        "memory_capacity_per_gpu": Metric(
            "bytes", "usable memory per GPU (capacity x utilization)", masked=False, always=True
        ),
        "max_batch": Metric(
            "1", "largest batch (requests in flight) whose memory fits this layout", masked=False, always=True
        ),
        "min_gpus_for_capacity": Metric(
            "1",
            "GPUs needed to hold weights and KV cache",
            masked=False,
            conventions=BOTH,
            always=True,
            higher_is_better=False,
        ),
        "num_gpus": Metric(
            "1", "GPUs used by the layout", masked=False, conventions=BOTH, always=True, higher_is_better=False
        ),
        "mfu": Metric("1", "model FLOP utilization during decode", passes={DECODE}),
        "mbu": Metric("1", "memory-bandwidth utilization during decode", passes={DECODE}),
        # power, energy and cost (docs/model.md §9): static batch, then the serving steady state
        "power_per_gpu": Metric(
            "W",
            "mean power drawn by each GPU over a static batch's prefill and decode",
            passes={PREFILL, DECODE},
            higher_is_better=False,
        ),
        "energy_per_output_token": Metric(
            "J",
            "GPU energy per output token (static batch, prefill included)",
            passes={PREFILL, DECODE},
            higher_is_better=False,
        ),
        "tokens_per_s_per_mw": Metric(
            "tokens/s/MW",
            "output tokens per second per MW of all-in power (GPU, host, facility)",
            passes={PREFILL, DECODE},
        ),
        "cost_per_million_output_tokens": Metric(
            "$",
            "GPU-time cost of a million output tokens (static batch, prefill included)",
            passes={PREFILL, DECODE},
            higher_is_better=False,
        ),
        "cost_per_million_input_tokens": Metric(
            "$", "GPU-time cost of prefilling a million prompt tokens", passes={PREFILL}, higher_is_better=False
        ),
        "serving_power_per_gpu": Metric(
            "W",
            "power drawn by each GPU in the steady-state continuous-batching step",
            passes={SERVING},
            higher_is_better=False,
        ),
        "serving_energy_per_output_token": Metric(
            "J",
            "GPU energy per output token in the serving steady state (prefill interleaved)",
            passes={SERVING},
            higher_is_better=False,
        ),
        "serving_tokens_per_s_per_mw": Metric(
            "tokens/s/MW", "serving output tokens per second per MW of all-in power", passes={SERVING}
        ),
        "serving_cost_per_million_output_tokens": Metric(
            "$",
            "GPU-time cost of a million output tokens in the serving steady state",
            passes={SERVING},
            higher_is_better=False,
        ),
        "layer_op_time": Metric("s", "per-layer time of each operation in prefill", conventions={SEED}, per_op=True),
        "prefill_op_time": Metric(
            "s",
            "prefill time of each operation for one microbatch, summed over all "
            "layers (all pipeline stages) and chunks",
            passes={PREFILL},
            per_op=True,
        ),
        "decode_op_time": Metric(
            "s",
            "time of each operation in one decode step of one microbatch, summed "
            "over all layers (mean over the generation)",
            passes={DECODE},
            per_op=True,
        ),
        "prefill_op_flops": Metric(
            "FLOP",
            "FLOPs of each operation on one GPU of each stage for one microbatch's prefill, summed over all layers",
            passes={PREFILL},
            per_op=True,
        ),
        "prefill_op_bytes": Metric(
            "bytes",
            "HBM bytes of each operation on one GPU of each stage for one microbatch's prefill, summed over all layers",
            passes={PREFILL},
            per_op=True,
        ),
        "decode_op_flops": Metric(
            "FLOP",
            "FLOPs of each operation on one GPU of each stage in one decode step "
            "of one microbatch, summed over all layers",
            passes={DECODE},
            per_op=True,
        ),
        "decode_op_bytes": Metric(
            "bytes",
            "HBM bytes of each operation on one GPU of each stage in one decode "
            "step of one microbatch, summed over all layers",
            passes={DECODE},
            per_op=True,
        ),
        "prefill_op_bound": Metric("1", _bound_codes("prefill"), masked=False, passes={PREFILL}, per_op=True),
        "decode_op_bound": Metric("1", _bound_codes("a decode step"), masked=False, passes={DECODE}, per_op=True),
        "layer_comm_time": Metric("s", "per-layer communication time in prefill", conventions={SEED}),
        "layer_bubble_time": Metric("s", "per-layer pipeline bubble time in prefill", conventions={SEED}),
        "layer_time": Metric("s", "per-layer time of one sequence in prefill", conventions={SEED}),
        "feasible": Metric("1", "the configuration runs (fits, divides, places)", masked=False, conventions=()),
        "infeasible_reason": Metric(
            "1",
            "bit flags of why a point is infeasible (0 = feasible): "
            + ", ".join(f"{r.value}={r.name.lower()}" for r in Reason),
            masked=False,
            conventions=(),
        ),
    }
)


def produced_by(convention: str) -> tuple[str, ...]:
    """The metrics ``convention`` produces, in the registry's (the Dataset's) order."""
    return tuple(k for k, m in METRICS.items() if convention in m.conventions)


@dataclass(frozen=True)
class Evaluation:
    """What a convention returns: tensors broadcastable to the grid (plus trailing result dims)."""

    values: Mapping[str, torch.Tensor]
    reason: torch.Tensor  # int64, grid shape (possibly an expanded view)
    trailing: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # var -> trailing dims
    trailing_coords: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # dim -> labels
