"""Per-layer collectives of a phase (the part not hidden behind compute) and the pipeline hop
(docs/model.md §3.9, §8.7-§8.8, §8.11): tensor-parallel all-reduces, the expert all-to-all, context
parallelism's ring attention or partial-output all-reduce.

Placement is innermost first: tp groups inside a scale-up domain, cp next to tp, the EP group over
what etp leaves of each domain.
"""

from __future__ import annotations

import dataclasses

import torch

from tensorperf.engine.physics import comm, ops, routing
from tensorperf.engine.physics.layout import kv_elements_per_rank
from tensorperf.engine.roofline import layer
from tensorperf.engine.roofline.values import ALLREDUCE_CODE, Deployment, Rates, Shortcuts, Workload

Collectives = dict[str, torch.Tensor]  # dense, moe_tp, moe_ep (per layer, exposed); hops, hop (per pass)


def exposed(s: Shortcuts, t: torch.Tensor) -> torch.Tensor:
    """The part of a collective's time not hidden behind compute: (1 − comm_overlap)·t (``t`` itself
    where comm_overlap is identically 0, the default)."""
    return t if s.exposed is None else s.exposed * t


def all_reduce(r: Rates, nbytes: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
    """All-reduce of ``nbytes`` over groups of ``n``: the NCCL algorithm selected by the ``allreduce``
    input (ring, tree or hierarchical; only the algorithms the grid uses are evaluated), its link
    efficiency S/(S + comm_half_bytes) as the full efficiency on S + comm_half_bytes bytes. Where the
    point's stack has peer-memory kernels and the group fits in one scale-up domain, the runtime takes
    the fastest of that, one-shot and two-shot (docs/model.md §10.4; the kernels' own fit has no
    half-bytes term)."""
    out = None
    sized = nbytes + r.efficiency.comm_half_bytes
    for name in r.allreduce_used:  # at most three algorithms, not grid points
        t = comm.ALL_REDUCE[name](sized, n, r.tiers)
        out = t if out is None else torch.where(r.allreduce == ALLREDUCE_CODE[name], t, out)
    if r.custom is None:  # no stack of the grid has them: NCCL only, bit for bit
        return out
    custom, usable = r.custom.time(nbytes, n, r.tiers)
    return torch.where(usable, torch.minimum(out, custom), out)


def phase_comm(
    w: Workload, r: Rates, d: Deployment, s: Shortcuts, tokens: torch.Tensor, spread: torch.Tensor | float = 1.0
) -> Collectives:
    """Per-layer collectives of a phase of ``tokens`` tokens per replica-microbatch (exposed part),
    and the pipeline hop: ``hops`` summed over the stages, ``hop`` the slowest stage's. ``spread``:
    the cp ranks holding different tokens (ops.Phase.spread), for the routing imbalance of the
    expert all-to-all: the slowest EP rank sends and receives λ times the mean (§3.5.1)."""
    m, lay, t = w.model, d.layout, r.tiers
    act = tokens * m.d_model * d.sizes.a
    # link efficiency S/(S + h) on a message of S bytes = the full efficiency on S + h bytes
    half = r.efficiency.comm_half_bytes
    ar_tp = all_reduce(r, act, lay.tp)
    hop_in = comm.pipeline_hop(act + half, torch.ones_like(lay.pp, dtype=torch.bool), t)
    hop_out = comm.pipeline_hop(act + half, torch.zeros_like(lay.pp, dtype=torch.bool), t)
    crossing = comm.domain_crossings(lay.pp, lay.stage_gpus, t.domain)
    out = {
        "hops": crossing * hop_out + (lay.pp - 1 - crossing) * hop_in,
        "hop": torch.where(crossing > 0, hop_out, hop_in),
    }
    if s.has_dense:  # (the collectives of a kind of layer no model has are left out: exact zeros)
        out["dense"] = exposed(s, 2 * ar_tp)  # (2·x is exact: the same bits as (exposed·2)·x)
    if s.has_moe:
        ar_etp = all_reduce(r, act * (lay.etp / lay.tp), lay.etp)
        ep_tiers = dataclasses.replace(t, domain=torch.clamp(t.domain / lay.etp, min=1))
        send = act * (m.experts_per_token / lay.tp)
        imbalance = layer.routing_imbalance(w, d, s, tokens * (lay.dp * spread))
        send = send if imbalance is None else send * imbalance
        if r.ep_a2a is None:  # NCCL's all-to-all everywhere: dispatch and combine alike
            a2a = 2 * comm.group_all_to_all(send + half, lay.ep, ep_tiers)
        else:
            a2a = deepep_all_to_all(w, r, d, send, half, ep_tiers)
        out |= {"moe_tp": exposed(s, ar_tp + ar_etp), "moe_ep": exposed(s, a2a)}
    return out


# DeepEP dispatches fp8 activations with one fp32 scale per 128 elements and combines in bf16
# (deepseek-ai/DeepEP README; DeepSeek-V3 technical report, section 3.3: "quantize the activation before MoE
# up-projections into FP8 and then apply dispatch components ... combine components retained in BF16")
FP8_DISPATCH_BYTES = 1.0 + 4.0 / 128
BF16_BYTES = 2.0


def deepep_all_to_all(
    w: Workload, r: Rates, d: Deployment, send: torch.Tensor, half: torch.Tensor, tiers: comm.Tiers
) -> torch.Tensor:
    """Dispatch + combine of one MoE layer per the ``ep_a2a`` input (docs/model.md §8.8.1): NCCL's
    (code 0) as without it; DeepEP's (1: normal, 2: low latency) dispatch fp8 and combine bf16, ``send``
    being in the activations' format; the normal kernels send a token once per remote domain
    (physics.routing.dedup_factor over the domains the EP group spans)."""
    m, lay, code = w.model, d.layout, r.ep_a2a
    deepep = code > 0
    dispatch_bytes = torch.where(deepep, FP8_DISPATCH_BYTES / d.sizes.a, 1.0) * send
    combine_bytes = torch.where(deepep, BF16_BYTES / d.sizes.a, 1.0) * send
    _, domains = comm.split(lay.ep, tiers.domain)
    dedup = torch.where(code == 1, routing.dedup_factor(m.num_experts, m.experts_per_token, domains), 1.0)
    return comm.group_all_to_all(dispatch_bytes + half, lay.ep, tiers, dedup) + comm.group_all_to_all(
        combine_bytes + half, lay.ep, tiers, dedup
    )


def with_context_parallel(
    w: Workload,
    r: Rates,
    d: Deployment,
    s: Shortcuts,
    coll: Collectives,
    ph: ops.Phase,
    t_attn: torch.Tensor,
) -> Collectives:
    """Add context parallelism's per-layer collectives (zero at cp = 1). Prefill (tokens split over
    cp): ring attention passes the K/V blocks around the cp ring, an all-gather of the cached tokens'
    K/V, hidden behind up to cp_overlap of the attention compute. Decode (KV split over cp): the cp
    ranks' partial attention outputs are combined, an all-reduce of B·n_q·d_h activations. A grid
    whose every cp is 1 skips them (they are exact zeros there)."""
    if s.no_cp:
        return coll
    m, lay, t = w.model, d.layout, r.tiers
    cp_tiers = dataclasses.replace(t, domain=torch.clamp(t.domain / lay.tp, min=1))  # cp next to tp
    if ph.absorbed:  # decode
        partial = ph.tokens * m.num_heads / lay.tp * m.head_dim * d.sizes.a
        extra = exposed(s, comm.group_all_reduce(partial, lay.cp, cp_tiers))  # small: ring
    else:
        ring = comm.all_gather(
            ph.kv_read * kv_elements_per_rank(m, lay) * d.sizes.kv, lay.cp, *comm.flat_link(lay.cp, cp_tiers)
        )
        extra = torch.clamp(ring - r.efficiency.cp_overlap * t_attn, min=0)
    return coll | {k: coll[k] + extra for k in ("dense", "moe_tp") if k in coll}
