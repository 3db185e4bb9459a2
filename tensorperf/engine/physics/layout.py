"""How a layout splits the work: parallel degrees, per-rank heads, and the MoE folding.

Convention (docs/model.md §3.8, §8.3, Megatron-Core "MoE parallel folding"): N = tp · cp · pp · dp
GPUs. Inside each pipeline stage the tp·cp·dp GPUs run attention and dense layers as dp replicas of
tp-way tensor parallelism times cp-way context parallelism (each cp rank holds 1/cp of every
sequence's tokens in prefill and of its KV cache in decode), and MoE layers as ep-way expert
parallelism times etp-way expert-tensor parallelism over the same GPUs, ep · etp = tp · cp · dp
(experts are not replicated). Rank order tp, cp, ep, dp, pp (Megatron), so cp sits next to tp.
Consequence: with dp > 1 the experts are sharded over the replicas too (edp = 1); independent
replicas of a MoE model, each holding all experts, are separate deployments (sweep dp = 1 and
multiply).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from tensorperf.catalog.specs import ModelSpec


@dataclass(frozen=True)
class Layout:
    tp: torch.Tensor
    pp: torch.Tensor
    dp: torch.Tensor
    ep: torch.Tensor
    micro: torch.Tensor  # pipeline microbatches per replica
    cp: torch.Tensor | float = 1.0  # context parallelism

    @property
    def stage_gpus(self) -> torch.Tensor:
        """GPUs of one pipeline stage: tp · cp · dp."""
        return self.tp * self.cp * self.dp

    @property
    def etp(self) -> torch.Tensor:
        """Expert-tensor-parallel degree: the stage's GPUs not used by ep."""
        return self.stage_gpus / self.ep

    @property
    def num_gpus(self) -> torch.Tensor:
        return self.stage_gpus * self.pp


def default_microbatches(pp: torch.Tensor, per_replica_batch: torch.Tensor) -> torch.Tensor:
    """As many equal microbatches as fill the pipeline: the largest divisor of B/dp that is <= pp.

    Depends only on (batch, dp, pp), so the trailing candidate axis stays small."""
    top = int(pp.max())
    d = torch.arange(1, top + 1, dtype=pp.dtype, device=pp.device)
    b = torch.floor(per_replica_batch).unsqueeze(-1)
    ok = (torch.remainder(b, d) == 0) & (d <= pp.unsqueeze(-1))
    return torch.where(ok, d, torch.ones_like(d)).amax(dim=-1)


def query_heads_per_rank(m: ModelSpec, lay: Layout) -> torch.Tensor:
    return m.num_heads / lay.tp


def kv_heads_per_rank(m: ModelSpec, lay: Layout) -> torch.Tensor:
    """KV heads held by one TP rank: n_kv/tp, or 1 (replicated) once tp > n_kv (GenZ: max(ceil, 1))."""
    return torch.ceil(m.num_kv_heads / lay.tp)


def kv_elements_per_rank(m: ModelSpec, lay: Layout) -> torch.Tensor:
    """Cached elements per token per layer on one TP rank. MLA's latent is shared by all heads, so
    head-sharded TP replicates it (docs/model.md §3.6)."""
    gqa = 2 * kv_heads_per_rank(m, lay) * m.head_dim
    mla = m.kv_lora_rank + m.qk_rope_head_dim
    return torch.where(m.kv_lora_rank > 0, mla, gqa)
