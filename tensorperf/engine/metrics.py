"""The metric registry (name -> units, long name, masked where infeasible) and the Evaluation a
convention returns (tensors on the grid's axes plus the infeasibility reason bits)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import torch

from tensorperf.engine.masks import Reason

# What bounds an op (the codes of prefill_op_bound / decode_op_bound are indices into this tuple).
OP_BOUNDS = ("none", "compute", "memory", "communication")


@dataclass(frozen=True)
class Metric:
    units: str
    long_name: str
    masked: bool = True  # NaN where infeasible


METRICS: Mapping[str, Metric] = MappingProxyType(
    {
        "ttft": Metric("s", "time to first token (mean over the batch)"),
        "ttft_max": Metric("s", "time until the last request of the batch has its first token"),
        "tpot": Metric("s", "time per output token (mean over the generation)"),
        "e2e_latency": Metric("s", "end-to-end latency of a request"),
        "tokens_per_s_per_gpu": Metric("tokens/s", "output tokens per second per GPU"),
        "tokens_per_s_per_user": Metric("tokens/s", "output tokens per second seen by one user"),
        "decode_tokens_per_s_per_gpu": Metric("tokens/s", "decode-phase output tokens per second per GPU"),
        "prefill_tokens_per_s_per_gpu": Metric("tokens/s", "prompt tokens per second per GPU during prefill"),
        "serving_step_time": Metric(
            "s",
            "steady-state continuous-batching step: B decode tokens plus the "
            "prompt tokens that refill finished requests",
        ),
        "serving_tokens_per_s_per_gpu": Metric(
            "tokens/s", "steady-state output tokens per second per GPU (continuous batching, prefill interleaved)"
        ),
        "serving_tokens_per_s_per_user": Metric("tokens/s", "steady-state output tokens per second per request"),
        "concurrency": Metric("1", "requests in flight on the deployment (the batch; max_batch when batch='max')"),
        "memory_per_gpu": Metric("bytes", "memory needed per GPU (worst pipeline stage)", masked=False),
        "weight_memory_per_gpu": Metric("bytes", "weight bytes resident per GPU (worst stage)", masked=False),
        "kv_cache_memory_per_gpu": Metric("bytes", "KV-cache bytes per GPU at the end of generation", masked=False),
        "activation_memory_per_gpu": Metric("bytes", "activation and workspace bytes per GPU", masked=False),
        "memory_capacity_per_gpu": Metric("bytes", "usable memory per GPU (capacity x utilization)", masked=False),
        "max_batch": Metric("1", "largest batch (requests in flight) whose memory fits this layout", masked=False),
        "min_gpus_for_capacity": Metric("1", "GPUs needed to hold weights and KV cache", masked=False),
        "num_gpus": Metric("1", "GPUs used by the layout", masked=False),
        "mfu": Metric("1", "model FLOP utilization during decode"),
        "mbu": Metric("1", "memory-bandwidth utilization during decode"),
        "layer_op_time": Metric("s", "per-layer time of each operation in prefill"),
        "prefill_op_time": Metric(
            "s",
            "prefill time of each operation for one microbatch, summed over all "
            "layers (all pipeline stages) and chunks",
        ),
        "decode_op_time": Metric(
            "s",
            "time of each operation in one decode step of one microbatch, summed "
            "over all layers (mean over the generation)",
        ),
        "prefill_op_flops": Metric(
            "FLOP",
            "FLOPs of each operation on one GPU of each stage for one microbatch's prefill, summed over all layers",
        ),
        "prefill_op_bytes": Metric(
            "bytes",
            "HBM bytes of each operation on one GPU of each stage for one microbatch's prefill, summed over all layers",
        ),
        "decode_op_flops": Metric(
            "FLOP",
            "FLOPs of each operation on one GPU of each stage in one decode step "
            "of one microbatch, summed over all layers",
        ),
        "decode_op_bytes": Metric(
            "bytes",
            "HBM bytes of each operation on one GPU of each stage in one decode "
            "step of one microbatch, summed over all layers",
        ),
        "prefill_op_bound": Metric(
            "1",
            "what bounds each operation in prefill: "
            + ", ".join(f"{i}={b}" for i, b in enumerate(OP_BOUNDS))
            + " (compute: compute time > memory time)",
            masked=False,
        ),
        "decode_op_bound": Metric(
            "1",
            "what bounds each operation in a decode step: "
            + ", ".join(f"{i}={b}" for i, b in enumerate(OP_BOUNDS))
            + " (compute: compute time > memory time)",
            masked=False,
        ),
        "layer_comm_time": Metric("s", "per-layer communication time in prefill"),
        "layer_bubble_time": Metric("s", "per-layer pipeline bubble time in prefill"),
        "layer_time": Metric("s", "per-layer time of one sequence in prefill"),
        "feasible": Metric("1", "the configuration runs (fits, divides, places)", masked=False),
        "infeasible_reason": Metric(
            "1",
            "bit flags of why a point is infeasible (0 = feasible): "
            + ", ".join(f"{r.value}={r.name.lower()}" for r in Reason),
            masked=False,
        ),
    }
)


@dataclass(frozen=True)
class Evaluation:
    """What a convention returns: tensors broadcastable to the grid (plus trailing result dims)."""

    values: Mapping[str, torch.Tensor]
    reason: torch.Tensor  # int64, grid shape (possibly an expanded view)
    trailing: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # var -> trailing dims
    trailing_coords: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # dim -> labels
