"""Two-batch overlap of the expert all-to-all (docs/model.md §3.9.2).

A MoE layer run with two-batch overlap splits the replica-microbatch into two halves; while one half
computes (attention, router, experts), the other's dispatch and combine cross the network. DeepSeek's
inference system overlaps "the attention and MoE of one micro-batch with the dispatch and combine of
another" (DeepSeek-V3 technical report, arXiv:2412.19437, section 3.4; deepseek-ai/profile-data), and
SGLang's ``--enable-two-batch-overlap`` does the same (LMSYS, "Deploying DeepSeek with PD
Disaggregation and Large-scale Expert Parallelism", 2025-05-05). Per MoE layer the compute stream
carries both halves and so does the network, so

    t_layer = max(2·C(T/2), 2·A(T/2))

with C(T/2) the layer's compute at half the tokens (its attention core, norm, projections, router,
experts and tensor-parallel all-reduces: each weight stream and each kernel's fixed time paid twice)
and A(T/2) the half's all-to-all (dispatch + combine), against C(T) + A(T) without it. DeepEP's
normal kernels (``ep_a2a="deepep"``) run on SMs taken from the compute while they move data: 20 of
an H800's 132 (DeepSeek-V3 report, section 3.2.2, "only 20 SMs are sufficient to fully utilize the
bandwidths of IB and NVLink"), so the overlapped compute runs at 112/132 of its speed; the
low-latency kernels send by RDMA without occupying SMs (DeepEP README, "hook-based
communication-computation overlapping method that does not occupy any SM resource").
"""

from __future__ import annotations

import dataclasses

import torch

from tensorperf.engine.physics import ops
from tensorperf.engine.roofline import collectives, layer
from tensorperf.engine.roofline.collectives import Collectives
from tensorperf.engine.roofline.per_op import PerOp
from tensorperf.engine.roofline.values import EP_ALL_TO_ALLS, Deployment, Rates, Shortcuts, Workload


def half(ph: ops.Phase) -> ops.Phase:
    """One of the two micro-batches: half the tokens, pairs, cached reads and sequences."""
    return dataclasses.replace(
        ph, tokens=ph.tokens / 2, pairs=ph.pairs / 2, kv_read=ph.kv_read / 2, sequences=ph.sequences / 2
    )


# the SMs DeepEP's normal kernels take from the compute (DeepSeek-V3 report, section 3.2.2: 20 of H800's 132)
DEEPEP_SMS, REFERENCE_SMS = 20.0, 132.0


def halves(
    w: Workload, r: Rates, d: Deployment, s: Shortcuts, ph: ops.Phase, attention_parts: tuple[ops.Phase, ...] = ()
) -> tuple[PerOp, Collectives, torch.Tensor | float] | None:
    """Per-op quantities and collectives of one half of ``ph``, and the factor its overlapped compute
    is slowed by (132/112 where DeepEP's normal kernels share the SMs, else 1); None where no point of
    the grid runs two-batch overlap, or no model has MoE layers."""
    if d.two_batch is None or not s.has_moe:
        return None
    h = half(ph)
    per_op = layer.phase_ops(w, r, d, s, h, tuple(half(p) for p in attention_parts))
    slow: torch.Tensor | float = 1.0
    if r.ep_a2a is not None:
        slow = torch.where(r.ep_a2a == EP_ALL_TO_ALLS["deepep"], REFERENCE_SMS / (REFERENCE_SMS - DEEPEP_SMS), 1.0)
    return per_op, collectives.phase_comm(w, r, d, s, h.tokens, ph.spread), slow
