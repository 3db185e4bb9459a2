"""The values one evaluation works on, each frozen and each a tensor (or spec of tensors) on the grid.

- :class:`Workload`: what is asked at each point: the model, the requests' lengths, the batch.
- :class:`Rates`: what the hardware delivers: peaks and efficiencies, HBM bandwidth, collective tiers.
- :class:`Deployment`: one deployment of the model: its layout, element sizes, stages, the memory
  that does not depend on the batch, and its share of the batch.
- :class:`Shortcuts`: exact specializations of the defaults (terms that are exact zeros everywhere).

Counts (tokens per prompt, requests, layout degrees, GPUs, chunks) stay exact: they are placed and
combined in float64 (exact to 2^53) whatever the grid's dtype (``*_exact`` fields), and every
count-valued metric and every feasibility decision is computed from them in float64. Only the
magnitudes (FLOP, bytes, seconds, rates) use the grid's dtype, from copies of the counts.

The phases take (workload, rates, deployment, shortcuts), so a point with two deployments (a prefill
pool and a decode pool) evaluates each phase on its own deployment.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import torch

from tensorperf.catalog.specs import Efficiency
from tensorperf.engine.physics import comm, ops, pipeline
from tensorperf.engine.physics.layout import Layout

# Where the requests beyond the cap on requests in flight wait (the ``queue`` input, docs/model.md
# §10.3): 0 at the server (trtllm-bench, vLLM's offline throughput, Triton: TTFT counts from the
# request's arrival, the wait included), 1 at a client (benchmark_serving and `vllm bench serve`
# with --max-concurrency: the client sends a request as a slot frees and times it from sending)
QUEUES = MappingProxyType({"server": 0.0, "client": 1.0})

# How a MoE layer's expert all-to-all meets its compute (the ``ep_overlap`` input, docs/model.md
# §3.9.2): 0 one after the other, 1 two-batch overlap (two half micro-batches, one's all-to-all
# behind the other's compute: SGLang --enable-two-batch-overlap, DeepSeek-V3 report §3.4)
EP_OVERLAPS = MappingProxyType({"none": 0.0, "two_batch": 1.0})

# Which kernels move the expert all-to-all (the ``ep_a2a`` input, docs/model.md §8.8.1): 0 NCCL's
# all-to-all (every copy, activations' format both ways), 1 DeepEP's normal kernels (a token sent once
# per remote domain and forwarded inside; dispatch in fp8, combine in bf16), 2 DeepEP's low-latency
# kernels (every copy over RDMA; dispatch in fp8, combine in bf16)
EP_ALL_TO_ALLS = MappingProxyType({"nccl": 0.0, "deepep": 1.0, "deepep_ll": 2.0})


@dataclass(frozen=True)
class Traffic:
    """How requests reach a continuous-batching deployment (docs/model.md §10). Lengths are uniform
    in [r·L, L]; ``mean_prompt``/``mean_output`` are their means, L·(1 + r)/2 (L itself, bit for bit,
    at r = 1)."""

    budget: torch.Tensor  # M: max_num_tokens, the token budget of one step
    mean_prompt: torch.Tensor  # E[S]
    mean_output: torch.Tensor  # E[T_out]
    prompt_range: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None  # (r·L, L, r == 1); None: r = 1
    output_cv2: torch.Tensor  # Var(T_out)/E[T_out]²: the service time's squared coefficient of variation
    request_overhead: torch.Tensor | None  # s per request outside the forward passes (the stack's); None: 0
    request_rate: torch.Tensor | None  # λ, requests/s on the deployment (open loop); None: closed loop
    num_requests: torch.Tensor | None  # N queued at once (offline); None: the steady state
    client_queue: torch.Tensor | None = None  # 1 where a client holds the waiting requests (load.QUEUES); None: server
    adp_balance: torch.Tensor | None = None  # attention-DP balancing: at most this many steps' wait; None: none
    admission: torch.Tensor | None = None  # R: decode steps between the scheduler's checks for arrivals; None: 1


@dataclass(frozen=True)
class Speculation:
    """Speculative decoding at each point (docs/model.md §3.14): k draft steps, then one verification
    pass over k + 1 positions per sequence. A Workload carries one only where some point of the grid
    speculates; its points with ``speculative="none"`` have k = 0 and E = 1 (the plain decode step)."""

    method: torch.Tensor  # physics.speculative.METHOD_CODE of each point (0: none)
    k: torch.Tensor  # draft tokens per step (0 where none)
    tokens_per_step: torch.Tensor  # E: expected tokens a sequence gains per step (1 where none)
    methods: tuple[str, ...]  # the methods the grid uses ("none" included where some point has none)
    # the draft models of speculative="draft" (None where no point drafts with a model): the model
    # (spec view on the draft_model axis), its layout (the target's tp, cp and dp; one stage, no EP),
    # its stages and its shortcuts
    draft: Any = None
    draft_layout: Layout | None = None
    draft_mix: pipeline.StageMix | None = None
    draft_cuts: Any = None


@dataclass(frozen=True)
class Workload:
    """The model and the requests at each point (the grid's dtype unless ``*_exact``: float64)."""

    model: Any  # ModelSpec view, every field a tensor (what-if field overrides applied)
    model_exact: Any  # the same with float64 counts (the model itself where the grid is float64)
    prompt: torch.Tensor  # S: tokens per prompt
    output: torch.Tensor  # T_out: output tokens per request
    context: torch.Tensor  # S + T_out: the longest context
    chunk_size: torch.Tensor | None  # prefill chunk size (None: the prompt in one pass)
    chunks: torch.Tensor  # prefill chunks per prompt, ceil(S / chunk_size) (1 without chunking)
    max_chunks: int  # chunk positions the grid needs: max S // min chunk_size (at least 1)
    batch: torch.Tensor  # B: requests in flight
    batch_exact: torch.Tensor
    serving: Traffic  # how requests reach a serving deployment (the serving pass)
    # the given max/mean of the routed token-expert pairs over the EP ranks (the ``imbalance`` input);
    # None: the analytic value of uniform top-k routing (physics.routing.imbalance, docs/model.md §3.5.1)
    imbalance: torch.Tensor | None = None
    speculation: Speculation | None = None  # None: no point of the grid speculates (docs/model.md §3.14)


ALLREDUCE_CODE = MappingProxyType({name: i for i, name in enumerate(comm.ALL_REDUCE)})  # Rates.allreduce


@dataclass(frozen=True)
class Operating:
    """What running the hardware draws and costs at each point (docs/model.md §9)."""

    idle_power: torch.Tensor  # W of an idle GPU
    board_power: torch.Tensor  # W: the board (TDP) limit
    hbm_power_fraction: torch.Tensor  # share of the dynamic power streaming HBM at full bandwidth draws
    host_power_per_gpu: torch.Tensor  # W of the node that is not GPUs, per GPU
    pue: torch.Tensor  # facility power over IT power
    price_per_gpu_hour: torch.Tensor  # $ per GPU-hour


@dataclass(frozen=True)
class Rates:
    """What the hardware delivers for the weight format at each point, and what it draws and costs."""

    efficiency: Efficiency  # every factor a tensor, per-format tables mixed, overrides applied
    peak_gemm: torch.Tensor  # FLOP/s of the weight format's GEMMs (bf16 where the device lacks it)
    peak_attn: torch.Tensor  # FLOP/s of the attention core, norms and router (bf16)
    gemm_supported: torch.Tensor  # some kernel path runs every weight group on this device and stack
    kernels: Any  # kernels.Kernels: per weight group, bytes and GEMM paths; None: weight_dtype's native path
    hbm_bandwidth: torch.Tensor  # B/s
    launch_overhead: torch.Tensor  # s per kernel
    tiers: comm.Tiers  # collectives: scale-up and scale-out bandwidth (efficiency applied), latency
    allreduce: torch.Tensor  # the all-reduce algorithm at each point (ALLREDUCE_CODE)
    allreduce_used: tuple[str, ...]  # the algorithms the grid uses
    operating: Operating  # power and price
    # the serving stacks' peer-memory all-reduce kernels (docs/model.md §10.4); None where no point's
    # stack has them on a device with measured parameters (NCCL's algorithms only, bit for bit)
    custom: comm.CustomAllReduce | None = None
    ep_a2a: torch.Tensor | None = None  # EP_ALL_TO_ALLS code at each point; None: NCCL's everywhere


@dataclass(frozen=True)
class Deployment:
    """One deployment of the model at each point: layout, memory that does not depend on the batch,
    and its share of the workload's batch."""

    layout: Layout  # parallel degrees and microbatches (grid dtype)
    layout_exact: Layout  # the same in float64
    sizes: ops.Bytes  # bytes per element: weights, KV cache, activations
    group_bytes: Any  # tensor group -> bytes per weight (docs/model.md §3.13); None: every group in sizes.w
    mix: pipeline.StageMix  # layer counts of the candidate (possibly slowest) pipeline stages
    weights: torch.Tensor  # weight bytes per GPU (worst stage)
    kv_per_sequence: torch.Tensor  # KV-cache bytes per sequence per GPU at the longest context
    per_sequence: torch.Tensor  # KV cache and logits bytes per sequence per GPU
    workspace_cap: torch.Tensor  # workspace bytes per GPU at the activation token budget
    capacity: torch.Tensor  # usable bytes per GPU
    replica_batch: torch.Tensor  # B / dp: requests per replica
    replica_batch_exact: torch.Tensor
    microbatch: torch.Tensor  # B / dp / microbatches: sequences per replica-microbatch
    two_batch: torch.Tensor | None = None  # 1 where MoE layers run two-batch overlap (EP_OVERLAPS); None: nowhere


@dataclass(frozen=True)
class Shortcuts:
    """Exact specializations of the defaults: a term whose factor is identically 0 (or a factor
    identically 1) everywhere in the grid is left out, the same result bit for bit; a factor that
    requires a gradient keeps its term (its derivative is not zero)."""

    overlap: torch.Tensor | None  # None: overlap identically 1 (op time = max(compute, memory))
    launches: bool  # some launch overhead is not 0
    exposed: torch.Tensor | None  # 1 − comm_overlap; None where comm_overlap is identically 0
    overhead: bool  # some step overhead is not 0
    has_dense: bool  # some model of the grid has dense layers (else their ops are exact zeros)
    has_moe: bool  # some model has MoE layers
    has_mla: bool  # some model has latent attention (kv_lora_rank > 0)
    has_gqa: bool  # some model has grouped-query attention
    no_cp: bool  # cp is 1 everywhere (no context-parallel collectives)
    breakdown: bool  # the per-op breakdown is wanted: ops keep their compute − memory time
    # some point's routing imbalance may differ from 1 (an MoE model with ep > 1); False: it is 1 at
    # every point (every ep is 1, or the given imbalance is 1 everywhere) and is left out
    imbalanced: bool = False
    gemm_latency: bool = False  # some kernel table's gemm_latency is not 0
