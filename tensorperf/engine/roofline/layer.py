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
    mem, gemm_mem = eff.memory, eff.gemm_memory  # streams vs GEMM kernels' traffic
    table = {  # op: (FLOP and bytes, peak, compute efficiency, memory efficiency)
        "embed": (lambda: ops.embedding(m, ph, b), r.peak_gemm, c, mem),
        "norm": (lambda: ops.norm(m, ph, b), r.peak_attn, c, mem),
        "qkv": (lambda: ops.qkv(m, lay, ph, b), r.peak_gemm, c, gemm_mem),
        "out_proj": (lambda: ops.out_proj(m, lay, ph, b), r.peak_gemm, c, gemm_mem),
        "mlp": (lambda: ops.dense_mlp(m, lay, ph, b), r.peak_gemm, c, gemm_mem),
        "router": (lambda: ops.router(m, ph, b), r.peak_attn, c, gemm_mem),
        "experts": (lambda: ops.routed_experts(m, lay, ph, b, touched), r.peak_gemm, c_expert, gemm_mem),
        "shared_experts": (lambda: ops.shared_experts(m, lay, ph, b), r.peak_gemm, c, gemm_mem),
        "lm_head": (lambda: ops.lm_head(m, lay, ph, b), r.peak_gemm, c_head, gemm_mem),
    }
    skip = ({"mlp"} if not s.has_dense else set()) | (MOE_OPS if not s.has_moe else set())
    out = {}
    for k, (work, p, e, em) in table.items():  # nine op kinds
        if k not in skip:
            f, n = work()
            out[k] = (f, n, *timed(r, s, f, n, p, e, em))
    return (
        {k: out[k] for k in OPS[:3]}
        | {"attn": attention_op(w, r, d, s, attention_parts or (ph,))}
        | {k: out[k] for k in OPS[4:10] if k in out}
    )
