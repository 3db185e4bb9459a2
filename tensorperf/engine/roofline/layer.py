"""Per-op FLOP, bytes and roofline time of one layer of a phase, on one GPU (docs/model.md §3.3-§3.6)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import torch

from tensorperf.engine.physics import ops, routing
from tensorperf.engine.physics.roofline import compute_time, memory_time, op_time, saturation
from tensorperf.engine.roofline.kernels import GEMM_OPS, OP_GROUP, KernelPath
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
    latency: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(time, compute time − memory time) of one op; the sign of the second says what bounds it
    (computed only for the per-op breakdown; None otherwise). An op with work launches one kernel;
    ``latency``: the op's GEMM kernels' fixed time (kernels x gemm_latency, §3.7.1), if any."""
    t_c = compute_time(flops, peak, eff_compute)
    t_m = memory_time(nbytes, r.hbm_bandwidth, eff_memory)
    t = op_time(t_c, t_m, s.overlap)
    if s.launches or latency is not None:
        launched = (flops + nbytes) > 0  # an op with no work launches no kernel (both are >= 0)
        if s.launches:
            t = t + r.launch_overhead * launched
        if latency is not None:
            t = t + latency * launched
    return t, (t_c - t_m if s.breakdown else None)


# GEMM kernels per op and layer, as the serving stacks fuse them (vLLM/SGLang/TensorRT-LLM): one fused
# QKV projection (MLA: the fused q_a/kv_a projection and q_b), one output projection (MLA: the
# absorbed value bmm and o_proj), gate_up + down for a dense or shared MLP, the fused-MoE kernel's two
# grouped GEMMs (w13, w2), one LM head (vllm/model_executor/models/llama.py, deepseek_v2.py;
# vllm/model_executor/layers/fused_moe/fused_moe.py).
_GEMM_KERNELS = {"qkv": 1.0, "out_proj": 1.0, "mlp": 2.0, "experts": 2.0, "shared_experts": 2.0, "lm_head": 1.0}


def gemm_kernels(w: Workload, op: str) -> Any:
    """GEMM kernels an op launches per layer (MLA's projections: two where GQA fuses one)."""
    n = _GEMM_KERNELS[op]
    if op in ("qkv", "out_proj"):
        return torch.where(w.model.kv_lora_rank > 0, 2.0 * n, n)
    return n


def fixed_time(table: Any, w: Workload, op: str) -> Any:
    """A GEMM op's fixed GPU time per layer on a kernel table (an Efficiency or a KernelPath): its
    kernels x gemm_latency (§3.7.1); the fused-MoE call's expert_latency instead where the table
    has one (§3.7.2: routing sort, expand, grouped GEMMs, activation and finalize together)."""
    t = table.gemm_latency * gemm_kernels(w, op)
    own = table.expert_latency
    if op != "experts" or (not torch.is_tensor(own) and own == 0):
        return t
    # a lone expert (a dense MLP run through the MoE path) is two plain GEMMs, not a routed call
    routed = w.model.num_experts > 1
    own = torch.as_tensor(own, dtype=w.model.num_experts.dtype, device=w.model.num_experts.device)
    return torch.where(routed & (own > 0), own, t)


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


def expert_efficiency(
    w: Workload, r: Rates, d: Deployment, ph: ops.Phase, kernel: Any = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(compute efficiency of the grouped expert GEMMs, experts the stage's tokens touch): their rows
    are the stage's token-expert pairs over the experts they touch; they saturate with tokens per
    expert (a lone expert is a plain GEMM). ``kernel``: the factors of a kernel path (an Efficiency
    or a kernels.KernelPath; default: the weight format's own table)."""
    m, eff = w.model, (r.efficiency if kernel is None else kernel)
    stage_tokens = ops.stage_tokens(d.layout, ph)
    touched = ops.expected_experts(m.num_experts, m.experts_per_token, stage_tokens)
    per_expert = stage_tokens * m.experts_per_token / torch.clamp(touched, min=1)
    half = torch.where(m.num_experts > 1, eff.expert_half_tokens, eff.gemm_half_tokens)
    return torch.where(m.num_experts > 1, eff.expert_compute, eff.compute) * saturation(per_expert, half), touched


def routing_imbalance(w: Workload, d: Deployment, s: Shortcuts, stage_tokens: torch.Tensor) -> torch.Tensor | None:
    """λ, the max/mean of the token-expert pairs the EP ranks receive when ``stage_tokens`` tokens
    are routed (docs/model.md §3.5.1): the given ``imbalance`` where ep > 1 (1 where ep = 1: one
    rank), else uniform top-k routing's expected value. None where it is 1 at every point of the
    grid (left out: the same results bit for bit)."""
    if not s.imbalanced:
        return None
    m, lay = w.model, d.layout
    if w.imbalance is not None:
        return torch.where(lay.ep > 1, w.imbalance, torch.ones_like(w.imbalance))
    return routing.imbalance(stage_tokens, m.num_experts, m.experts_per_token, lay.ep)


def fastest(
    r: Rates,
    s: Shortcuts,
    flops: torch.Tensor,
    nbytes: torch.Tensor,
    paths: tuple[KernelPath, ...],
    compute_efficiency: Callable[[KernelPath], torch.Tensor],
    rows: torch.Tensor,
    weight_bytes: torch.Tensor,
    latency: Callable[[KernelPath], Any] | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(time, compute − memory time) of a GEMM op on the fastest available kernel path (docs/model.md
    §3.13): t = min over available paths; the first (native) path where none is (an infeasible point).
    A path that streams its weights once per ``reread_rows`` of the op's ``rows`` reads them
    ceil(rows / reread_rows) times. ``latency``: the op's fixed time on a path (:func:`fixed_time`;
    None: none counted)."""
    first = paths[0]
    fixed = (lambda p: None) if latency is None else latency  # noqa: E731
    t, margin = timed(r, s, flops, nbytes, first.peak, compute_efficiency(first), first.gemm_memory, fixed(first))
    found = first.available
    for p in paths[1:]:
        n_p = nbytes
        if p.reread_rows is not None:
            n_p = nbytes + weight_bytes * torch.clamp(torch.ceil(rows / p.reread_rows) - 1, min=0)
        t_p, margin_p = timed(r, s, flops, n_p, p.peak, compute_efficiency(p), p.gemm_memory, fixed(p))
        better = p.available & (~found | (t_p < t))
        t = torch.where(better, t_p, t)
        margin = None if margin is None else torch.where(better, margin_p, margin)
        found = found | p.available
    return t, margin


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
    # the slowest EP rank's share of the routed work, and the experts it reads (§3.5.1)
    imbalance = routing_imbalance(w, d, s, ops.stage_tokens(lay, ph)) if s.has_moe else None
    read = touched
    if imbalance is not None:
        read = ops.critical_experts(m.num_experts, m.experts_per_token, ops.stage_tokens(lay, ph), imbalance, lay.ep)
    table = {  # op: (FLOP and bytes, compute efficiency at this phase's rows)
        "embed": (lambda: ops.embedding(m, ph, b), c),
        "norm": (lambda: ops.norm(m, ph, b), c),
        "qkv": (lambda: ops.qkv(m, lay, ph, b), c),
        "out_proj": (lambda: ops.out_proj(m, lay, ph, b), c),
        "mlp": (lambda: ops.dense_mlp(m, lay, ph, b), c),
        "router": (lambda: ops.router(m, ph, b), c),
        "experts": (lambda: ops.routed_experts(m, lay, ph, b, read, imbalance), c_expert),
        "shared_experts": (lambda: ops.shared_experts(m, lay, ph, b), c),
        "lm_head": (lambda: ops.lm_head(m, lay, ph, b), c_head),
    }
    skip = ({"mlp"} if not s.has_dense else set()) | (MOE_OPS if not s.has_moe else set())
    out = {}
    if r.kernels is not None:  # tensor groups in their own formats, GEMMs on the fastest kernel path
        table = _grouped(w, r, d, s, ph, table, touched, read, imbalance)
    for k, (work, e) in table.items():  # nine op kinds
        if k not in skip:
            f, n = work()
            fixed = fixed_time(eff, w, k) if s.gemm_latency and k in GEMM_OPS else None
            out[k] = (
                f,
                n,
                *(e(f, n) if callable(e) else timed(r, s, f, n, _peak(r, k), e, _memory_efficiency(r, k), fixed)),
            )
    return (
        {k: out[k] for k in OPS[:3]}
        | {"attn": attention_op(w, r, d, s, attention_parts or (ph,))}
        | {k: out[k] for k in OPS[4:10] if k in out}
    )


def _grouped(
    w: Workload,
    r: Rates,
    d: Deployment,
    s: Shortcuts,
    ph: ops.Phase,
    table: dict,
    touched: torch.Tensor | None,
    read: torch.Tensor | None = None,
    imbalance: torch.Tensor | None = None,
) -> dict:
    """The op table with each weight-reading op's bytes in its tensor group's format, and each GEMM
    timed on its group's fastest kernel path (a function of its FLOP and bytes in place of an
    efficiency). ``touched``: the experts the stage's tokens touch (the GEMM rows per expert);
    ``read`` and ``imbalance``: the experts the slowest EP rank reads and its share (§3.5.1)."""
    m, lay, b, k = w.model, d.layout, d.sizes, r.kernels
    read = touched if read is None else read
    sized = {g: dataclasses.replace(b, w=d.group_bytes[g]) for g in d.group_bytes}
    zero = ph.tokens.new_zeros(())
    idle = dataclasses.replace(ph, tokens=zero, pairs=zero, kv_read=zero, sequences=zero)  # weights only
    stage_tokens = ops.stage_tokens(lay, ph)
    per_expert = stage_tokens * m.experts_per_token / torch.clamp(touched, min=1) if touched is not None else None
    rows = {"lm_head": ph.sequences, "experts": per_expert}  # the GEMM's rows (M); the others: the tokens
    efficiency_of = {  # the compute efficiency at those rows, per kernel path
        "qkv": lambda p: p.compute * saturation(ph.tokens, p.gemm_half_tokens),
        "lm_head": lambda p: p.compute * saturation(ph.sequences, p.gemm_half_tokens),
        "experts": lambda p: expert_efficiency(w, r, d, ph, p)[0],
    }
    work = {
        "embed": lambda q: ops.embedding(m, q, sized["embeddings"]),
        "qkv": lambda q: ops.qkv(m, lay, q, sized["attention"]),
        "out_proj": lambda q: ops.out_proj(m, lay, q, sized["attention"]),
        "mlp": lambda q: ops.dense_mlp(m, lay, q, sized["mlp"]),
        "router": lambda q: ops.router(m, q, sized["attention"]),
        "experts": lambda q: ops.routed_experts(m, lay, q, sized["experts"], read, imbalance),
        "shared_experts": lambda q: ops.shared_experts(m, lay, q, sized["mlp"]),
        "lm_head": lambda q: ops.lm_head(m, lay, q, sized["embeddings"]),
    }
    out = {}
    for op, (_, e) in table.items():
        if op in GEMM_OPS:
            args = (k.paths[OP_GROUP[op]], efficiency_of.get(op, efficiency_of["qkv"]), rows.get(op, ph.tokens))
            weights = work[op](idle)[1]  # the op's weight bytes (no tokens: nothing else moves)
            latency = (lambda p, op=op: fixed_time(p, w, op)) if s.gemm_latency else None
            e = lambda f, n, a=args, wb=weights, c=latency: fastest(r, s, f, n, *a, wb, c)  # noqa: E731
        out[op] = (functools.partial(work[op], ph) if op in work else table[op][0], e)
    return out
