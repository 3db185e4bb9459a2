"""Feasibility decisions, on the exact (float64) counts: the model is consistent, the layout divides
it and places on the hardware, the batch splits into replicas and microbatches, the weight format
has a peak, and the memory fits."""

from __future__ import annotations

import torch

from tensorperf.engine.masks import Reason
from tensorperf.engine.roofline.values import Deployment, Rates, Workload


def _divides(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.remainder(a, b) == 0


def feasibility(
    w: Workload, r: Rates, d: Deployment, fits: torch.Tensor, world_size: torch.Tensor | None = None
) -> dict[Reason, torch.Tensor]:
    """Where each check passes; ``world_size`` (float64), when given, must equal the layout's GPUs."""
    m, lay = w.model_exact, d.layout_exact
    moe = m.num_experts > 0
    heads = _divides(m.num_heads, lay.tp) & (_divides(m.num_kv_heads, lay.tp) | _divides(lay.tp, m.num_kv_heads))
    mlp = _divides(m.d_ff, lay.tp) | (m.num_dense_layers == 0)
    experts = torch.where(
        moe,
        _divides(m.num_experts, lay.ep) & _divides(lay.stage_gpus, lay.ep) & _divides(m.d_ff_expert, lay.etp),
        lay.ep == 1,
    )
    G = r.tiers.domain  # GPUs per scale-up domain
    consistent = (
        _divides(m.num_heads, m.num_kv_heads)
        & (
            (m.num_experts == 0)
            | ((m.experts_per_token >= 1) & (m.experts_per_token <= m.num_experts) & (m.d_ff_expert > 0))
        )
        & (m.first_dense_layers <= m.num_layers)
        & ((m.num_dense_layers == 0) | (m.d_ff > 0))
    )
    op = r.operating  # the hardware's power fields (what-ifs may scale them out of their rules)
    consistent = consistent & (
        (op.idle_power <= op.board_power)
        & (op.pue >= 1)
        & (op.hbm_power_fraction <= 1)
        & (op.host_power_per_gpu >= 0)
        & (op.price_per_gpu_hour >= 0)
    )
    checks = {
        Reason.INCONSISTENT: consistent,
        Reason.DIVISIBILITY: heads & mlp & experts,
        Reason.PIPELINE: lay.pp <= m.num_layers,
        Reason.BATCH: _divides(w.batch_exact, lay.dp) & _divides(d.replica_batch_exact, lay.micro),
        Reason.DTYPE: r.gemm_supported,
        Reason.PLACEMENT: (lay.tp <= G) | _divides(lay.tp, G),
        Reason.MEMORY: fits,
    }
    if world_size is not None:
        checks[Reason.WORLD_SIZE] = lay.num_gpus == world_size
    return checks
