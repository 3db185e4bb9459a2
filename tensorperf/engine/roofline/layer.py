"""Per-op FLOP, bytes and roofline time of one layer of a phase, on one GPU (docs/model.md §3.3-§3.6)."""

from __future__ import annotations

import torch

from tensorperf.engine.physics import ops
from tensorperf.engine.physics.roofline import compute_time, memory_time, op_time, saturation
from tensorperf.engine.roofline.per_op import MOE_OPS, OPS, PerOp, left_sum
from tensorperf.engine.roofline.values import Deployment, Rates, Shortcuts, Workload


def timed(
    r: Rates,
    s: Shortcuts,
    flops: torch.Tensor,
    nbytes: torch.Tensor,
    peak: torch.Tensor,
    eff_compute: torch.Tensor,
    eff_memory: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(time, compute time − memory time) of one op; the sign of the second says what bounds it
    (computed only for the per-op breakdown; None otherwise). An op with work launches one kernel."""
    t_c = compute_time(flops, peak, eff_compute)
    t_m = memory_time(nbytes, r.hbm_bandwidth, eff_memory)
    t = op_time(t_c, t_m, s.overlap)
    if s.launches:
        launched = (flops + nbytes) > 0  # an op with no work launches no kernel (both are >= 0)
        t = t + r.launch_overhead * launched
    return t, (t_c - t_m if s.breakdown else None)


# Which peak and which memory efficiency each op's kernels run at: GEMMs at the weight format's peak,
# the vector ops (norms, the router's scores) and the attention core at bf16's; GEMMs stream weights
# at the GEMM kernels' memory efficiency, the embedding gather, norms and attention at the streams'.
_VECTOR_OPS = frozenset({"norm", "router", "attn"})
_STREAM_OPS = frozenset({"embed", "norm", "attn"})


def _peak(r: Rates, op: str) -> torch.Tensor:
    return r.peak_attn if op in _VECTOR_OPS else r.peak_gemm


def _memory_efficiency(r: Rates, op: str) -> torch.Tensor:
    return r.efficiency.memory if op in _STREAM_OPS else r.efficiency.gemm_memory


def busy_rates(w: Workload, r: Rates, has_moe: bool) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """op -> (seconds per FLOP, seconds per byte) at its kernels' full rates: how long its work keeps
    the compute units and HBM busy (the power model, docs/model.md §9.2). Full rate: the efficiency
    without the saturation at few rows (a GEMM of few rows takes longer than its FLOP at full rate,
    but idles the tensor cores meanwhile). Few-axis factors."""
    eff = r.efficiency
    full = {"attn": eff.attention}
    if has_moe:  # a lone expert is a plain GEMM
        full["experts"] = torch.where(w.model.num_experts > 1, eff.expert_compute, eff.compute)
    return {
        k: (1 / (_peak(r, k) * full.get(k, eff.compute)), 1 / (r.hbm_bandwidth * _memory_efficiency(r, k)))
        for k in OPS
        if k not in ("tp_comm", "ep_comm", "pp_comm")
    }


def expert_efficiency(w: Workload, r: Rates, d: Deployment, ph: ops.Phase) -> tuple[torch.Tensor, torch.Tensor]:
    """(compute efficiency of the grouped expert GEMMs, experts the stage's tokens touch): their rows
    are the stage's token-expert pairs over the experts they touch; they saturate with tokens per
    expert (a lone expert is a plain GEMM)."""
    m, eff = w.model, r.efficiency
    stage_tokens = ops.stage_tokens(d.layout, ph)
    touched = ops.expected_experts(m.num_experts, m.experts_per_token, stage_tokens)
    per_expert = stage_tokens * m.experts_per_token / torch.clamp(touched, min=1)
    half = torch.where(m.num_experts > 1, eff.expert_half_tokens, eff.gemm_half_tokens)
    return torch.where(m.num_experts > 1, eff.expert_compute, eff.compute) * saturation(per_expert, half), touched


def attention_op(w: Workload, r: Rates, d: Deployment, s: Shortcuts, parts: tuple[ops.Phase, ...]) -> tuple:
    """(FLOP, bytes, time, compute − memory time) of the attention core, summed over ``parts`` (the
    core holds no weights, so the phases of a mixed step add exactly)."""
    cores = [ops.attention_core(w.model, d.layout, p, d.sizes, s.has_gqa, s.has_mla) for p in parts]
    f, n = left_sum(f for f, _ in cores), left_sum(n for _, n in cores)
    return (f, n, *timed(r, s, f, n, r.peak_attn, r.efficiency.attention, r.efficiency.memory))


def phase_ops(
    w: Workload,
    r: Rates,
    d: Deployment,
    s: Shortcuts,
    ph: ops.Phase,
    attention_parts: tuple[ops.Phase, ...] = (),
) -> PerOp:
    """Per-op (FLOP, bytes, time, compute time − memory time) for one layer (embed/lm_head: once per
    pass), per GPU, in OPS's order.

    ``attention_parts`` replaces the attention core of ``ph`` by the sum over several phases (a
    mixed prefill + decode step: the core holds no weights, so its parts add exactly)."""
    m, lay, b, eff = w.model, d.layout, d.sizes, r.efficiency
    c = eff.compute * saturation(ph.tokens, eff.gemm_half_tokens)  # GEMMs of T rows
    c_head = eff.compute * saturation(ph.sequences, eff.gemm_half_tokens)
    c_expert, touched = expert_efficiency(w, r, d, ph) if s.has_moe else (None, None)
    table = {  # op: (FLOP and bytes, compute efficiency at this phase's rows)
        "embed": (lambda: ops.embedding(m, ph, b), c),
        "norm": (lambda: ops.norm(m, ph, b), c),
        "qkv": (lambda: ops.qkv(m, lay, ph, b), c),
        "out_proj": (lambda: ops.out_proj(m, lay, ph, b), c),
        "mlp": (lambda: ops.dense_mlp(m, lay, ph, b), c),
        "router": (lambda: ops.router(m, ph, b), c),
        "experts": (lambda: ops.routed_experts(m, lay, ph, b, touched), c_expert),
        "shared_experts": (lambda: ops.shared_experts(m, lay, ph, b), c),
        "lm_head": (lambda: ops.lm_head(m, lay, ph, b), c_head),
    }
    skip = ({"mlp"} if not s.has_dense else set()) | (MOE_OPS if not s.has_moe else set())
    out = {}
    for k, (work, e) in table.items():  # nine op kinds
        if k not in skip:
            f, n = work()
            out[k] = (f, n, *timed(r, s, f, n, _peak(r, k), e, _memory_efficiency(r, k)))
    return (
        {k: out[k] for k in OPS[:3]}
        | {"attn": attention_op(w, r, d, s, attention_parts or (ph,))}
        | {k: out[k] for k in OPS[4:10] if k in out}
    )
