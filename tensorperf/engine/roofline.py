"""convention="roofline" (the default): the corrected inference model of model-spec §3 and §8.

Wires the pure physics modules together over the whole grid: per-op FLOPs and bytes
(physics.ops) -> per-op roofline times (physics.roofline) -> layer times with exposed collectives
(physics.comm) -> pipeline stages and schedules (physics.pipeline) -> TTFT, TPOT, throughput;
memory per GPU and the feasibility mask (physics.memory, masks).

Decode: output token 1 comes from prefill; decode step j = 1..T_out−1 attends over L = S + j
cached tokens. TPOT is the mean over those steps, integrated with Simpson's rule over j (exact
where the step time is affine or quadratic in L, e.g. whenever attention is memory-bound).
"""

from __future__ import annotations

import dataclasses
import functools
import numbers
import operator
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from tensorperf.catalog.specs import MODEL_FIELDS, Efficiency
from tensorperf.engine.grid import EVAL_ORDER, Grid
from tensorperf.engine.masks import Reason, combine
from tensorperf.engine.metrics import OP_BOUNDS, Evaluation
from tensorperf.engine.physics import comm, inplace, ops, pipeline
from tensorperf.engine.physics.attention import (
    mean_cached_tokens,
    mean_chunked_keys,
    mean_decode_keys,
    mean_pairs_between,
    mean_prefill_pairs,
)
from tensorperf.engine.physics.layout import Layout, default_microbatches, kv_elements_per_rank
from tensorperf.engine.physics.memory import (
    ACTIVATION_TOKENS,
    MEMORY_UTILIZATION,
    activation_bytes_per_gpu,
    kv_bytes_per_sequence,
    logit_bytes_per_sequence,
    max_batch,
    weight_bytes_per_gpu,
    workspace_bytes_per_gpu,
)
from tensorperf.engine.physics.roofline import compute_time, memory_time, op_time, saturation
from tensorperf.units import DTYPE_BYTES, MATH_COLUMN

OPS = (
    "embed",
    "norm",
    "qkv",
    "attn",
    "out_proj",
    "mlp",
    "router",
    "experts",
    "shared_experts",
    "lm_head",
    "tp_comm",
    "ep_comm",
    "pp_comm",
)
MOE_OPS = frozenset({"router", "experts", "shared_experts"})  # zero in dense models


# model fields that decide which layers are dense and which MoE
STRUCTURE_FIELDS = frozenset({"num_layers", "first_dense_layers", "moe_layer_freq", "num_experts"})
BOUNDED_FACTORS = frozenset(
    {
        "compute",
        "expert_compute",
        "attention",
        "gemm_memory",
        "memory",
        "scaleup",
        "scaleout",
        "overlap",
        "comm_overlap",
        "cp_overlap",
    }
)


def scaled_efficiency(value, scale, bounded: bool):
    """A factor scaled relative to a preset's value. Fractions scale their odds, η·s / (1 + η·(s − 1)),
    which stays in (0, 1] (≈ η·s for small η, exactly η at s = 1); sizes and times are multiplied."""
    return value * scale / (1 + value * (scale - 1)) if bounded else value * scale


def _simpson(first, middle, last, into_first: bool = False):
    """Mean over an interval from its ends and midpoint; exact for quadratics (and for constants,
    bit for bit, in this form). ``into_first``: ``first`` is the caller's temporary and may take the
    result (first + 4·middle in one pass: 4·middle is exact, so the fused form rounds the same)."""
    if into_first and inplace.owned(first, middle, last):
        return first.add_(middle, alpha=4).add_(last).div_(6)
    return (first + 4 * middle + last) / 6


class _Context:
    """Everything a phase needs: specs, layout, rates, efficiencies (all tensors on the grid)."""

    def __init__(
        self, grid: Grid, efficiency: Mapping[str, Any], fields: Mapping[str, torch.Tensor], breakdown: bool = True
    ):
        self.breakdown = breakdown
        self.m = grid.spec("model")
        self.hw = hw = grid.spec("hardware")
        column = {"bf16": 0, "fp8": 1, "fp4": 2}
        code = grid.lookup("weight_dtype", {k: column[v] for k, v in MATH_COLUMN.items()})
        # each hardware's factors for the weight format's kernels (bf16, fp8 or fp4 tables)
        by_column = [grid.spec("hardware", attr=lambda h, c=c: h.efficiency_for(c)) for c in column]
        eff = by_column[0]
        for f in dataclasses.fields(Efficiency):
            mixed = torch.where(
                code == 0,
                getattr(by_column[0], f.name),
                torch.where(code == 1, getattr(by_column[1], f.name), getattr(by_column[2], f.name)),
            )
            object.__setattr__(eff, f.name, mixed)
        for name, value in efficiency.items():  # values may be tensors (sensitivity leaves)
            value = torch.as_tensor(value, dtype=grid.dtype, device=grid.device)
            if name.endswith("_scale"):  # relative to each preset's own value
                field = name.removesuffix("_scale")
                value = scaled_efficiency(getattr(eff, field), value, field in BOUNDED_FACTORS)
                name = field
            object.__setattr__(eff, name, value)
        for name, value in fields.items():  # model/hardware fields replaced by tensors (leaves)
            object.__setattr__(self.m if name in MODEL_FIELDS else hw, name, value)
        self.eff = eff
        # exact specializations of the defaults: a term whose factor is identically 0 (or a factor
        # identically 1) everywhere in the grid is left out, the same result bit for bit; a factor
        # that requires a gradient keeps its term (its derivative is not zero)
        self.overlap = None if _identically(eff.overlap, 1.0) else eff.overlap  # op_time: no min term
        self.launches = not _identically(hw.launch_overhead, 0.0)
        self.exposed = None if _identically(eff.comm_overlap, 0.0) else 1 - eff.comm_overlap
        self.overhead = not _identically(eff.step_overhead, 0.0)
        # Counts (tokens per prompt, requests, layout degrees, GPUs, chunks, heads, experts, layers) stay
        # exact: they are placed and combined in float64 (exact to 2^53) whatever the grid's dtype, and
        # every count-valued metric (concurrency, max_batch, num_gpus, min_gpus_for_capacity) and every
        # feasibility decision is computed from them in float64. Only the magnitudes (FLOP, bytes,
        # seconds, rates) use the grid's dtype, from copies of the counts (.to() is a no-op in float64).
        f64, dt = torch.float64, grid.dtype
        exact = {
            n: grid.axis(n, f64) for n in ("prompt_len", "output_len", "tp", "pp", "dp", "ep", "cp") if n in grid.values
        }
        self.m_exact = grid.spec("model", int_dtype=f64) if dt != f64 else self.m
        self.S = S = exact["prompt_len"].to(dt)
        self.chunks = (
            torch.ceil(exact["prompt_len"] / grid.axis("chunk_size", f64)).to(dt)
            if "chunk_size" in grid.values
            else torch.ones_like(S)
        )  # prefill chunks per prompt
        self.T_out = exact["output_len"].to(dt)
        tp, pp, dp, ep, cp = (exact[n].to(dt) for n in ("tp", "pp", "dp", "ep", "cp"))
        self.lay_exact = Layout(
            *(exact[n] for n in ("tp", "pp", "dp", "ep")),
            micro=torch.ones((), dtype=f64, device=grid.device),
            cp=exact["cp"],
        )
        self.b = b = ops.Bytes(
            w=grid.lookup("weight_dtype", DTYPE_BYTES),
            kv=grid.lookup("kv_dtype", DTYPE_BYTES),
            a=grid.lookup("act_dtype", DTYPE_BYTES),
        )
        given_micro = grid.axis("microbatches", f64) if "microbatches" in grid.values else None
        # memory that does not depend on the batch: weights, KV bytes per sequence, usable capacity
        lead_dense = any(s.first_dense_layers > 0 for s in grid.values["model"]) or any(
            k.startswith("first_dense_layers") for k in (*grid.values, *fields)
        )
        # which kinds of layer the grid's models have: ops and collectives of a kind no model has are
        # exact zeros and are left out (what-if overrides of the layer structure keep both)
        restructured = any(k.removesuffix("_scale") in STRUCTURE_FIELDS for k in (*grid.values, *fields))
        self.has_dense = restructured or any(s.num_dense_layers > 0 for s in grid.values["model"])
        self.has_moe = restructured or any(s.num_experts > 0 for s in grid.values["model"])
        self.no_cp = set(grid.values["cp"]) == {1}
        # the kinds of attention (MLA where kv_lora_rank > 0, GQA otherwise) the grid's models use
        latent_swept = any(k.removesuffix("_scale") == "kv_lora_rank" for k in (*grid.values, *fields))
        self.has_mla = latent_swept or any(s.kv_lora_rank > 0 for s in grid.values["model"])
        self.has_gqa = latent_swept or any(s.kv_lora_rank == 0 for s in grid.values["model"])
        self.mix = pipeline.stage_mix(self.m, pp, lead_dense)
        shell = Layout(tp=tp, pp=pp, dp=dp, ep=ep, micro=torch.ones_like(pp), cp=cp)
        self.L_max = S + self.T_out
        self.weights = weight_bytes_per_gpu(self.m, shell, self.mix, b.w)
        self.kv_seq = kv_bytes_per_sequence(
            self.m, shell, mean_cached_tokens(self.m, self.L_max), b.kv, self.mix.layers.amax(dim=-1)
        )
        self.capacity = MEMORY_UTILIZATION * hw.hbm_capacity
        self.workspace_cap = workspace_bytes_per_gpu(self.m, shell, torch.full_like(S, ACTIVATION_TOKENS), b.a)
        self.per_sequence = self.kv_seq + logit_bytes_per_sequence(self.m, shell)
        dp64 = self.lay_exact.dp
        if grid.values["batch"] == ("max",):
            # the largest batch whose KV cache and logits fit next to the weights and a full workspace
            # (a count: evaluated in float64 from the byte magnitudes)
            fits = max_batch(
                self.capacity.to(f64),
                self.weights.to(f64),
                self.workspace_cap.to(f64),
                self.per_sequence.to(f64),
                dp64,
                given_micro if given_micro is not None else 1,
            )
            if "max_num_seqs" in grid.values:  # the scheduler's limit, kept a multiple of dp
                cap = grid.axis("max_num_seqs", f64)
                step = dp64 * (given_micro if given_micro is not None else 1)
                fits = torch.minimum(fits, torch.clamp(torch.floor(cap / step), min=1) * step)
            self.B_exact = torch.clamp(fits, min=1) * torch.ones_like(dp64)
        else:
            self.B_exact = grid.axis("batch", f64)
        self.B = self.B_exact.to(dt)
        self.B_rep_exact = self.B_exact / dp64
        self.B_rep = self.B_rep_exact.to(dt)
        micro = given_micro if given_micro is not None else default_microbatches(self.lay_exact.pp, self.B_rep_exact)
        self.lay_exact = dataclasses.replace(self.lay_exact, micro=micro)
        self.lay = Layout(tp=tp, pp=pp, dp=dp, ep=ep, micro=micro.to(dt), cp=cp)
        self.B_mb = self.B_rep / self.lay.micro
        peak = torch.where(code == 0, hw.peak_flops_bf16, torch.where(code == 1, hw.peak_flops_fp8, hw.peak_flops_fp4))
        self.dtype_ok = peak > 0
        self.peak_gemm = torch.where(self.dtype_ok, peak, hw.peak_flops_bf16)
        self.peak_attn = hw.peak_flops_bf16
        self.allreduce_code = {name: i for i, name in enumerate(comm.ALL_REDUCE)}
        self.allreduce = grid.lookup("allreduce", self.allreduce_code)
        self.allreduce_used = tuple(dict.fromkeys(grid.values["allreduce"]))
        self.tiers = comm.Tiers(
            bw_in=hw.scaleup_bandwidth * eff.scaleup,
            lat_in=hw.scaleup_latency,
            bw_out=hw.scaleout_bandwidth * eff.scaleout,
            lat_out=hw.scaleout_latency,
            domain=hw.scaleup_size,
            mesh=hw.scaleup_mesh,
        )

    def time(self, flops, nbytes, peak, eff_compute, eff_memory):
        """(time, compute time − memory time) of one op; the sign of the second says what bounds it
        (computed only for the per-op breakdown; None otherwise)."""
        t_c = compute_time(flops, peak, eff_compute)
        t_m = memory_time(nbytes, self.hw.hbm_bandwidth, eff_memory)
        t = op_time(t_c, t_m, self.overlap)
        if self.launches:
            launched = (flops + nbytes) > 0  # an op with no work launches no kernel (both are >= 0)
            t = t + self.hw.launch_overhead * launched
        return t, (t_c - t_m if self.breakdown else None)


def _identically(t: torch.Tensor, value: float) -> bool:
    """Whether ``t`` equals ``value`` at every point and needs no gradient (a few-axis factor)."""
    return not t.requires_grad and bool(torch.all(t == value))


def _exposed(cx: _Context, t: torch.Tensor) -> torch.Tensor:
    """The part of a collective's time not hidden behind compute: (1 − comm_overlap)·t (``t`` itself
    where comm_overlap is identically 0, the default)."""
    return t if cx.exposed is None else cx.exposed * t


def _with_overhead(cx: _Context, t: torch.Tensor, steps=None) -> torch.Tensor:
    """``t`` plus the fixed overhead of its forward steps (``steps`` of them, default one), left out
    where step_overhead is identically 0 (the default)."""
    if not cx.overhead:
        return t
    return t + (cx.eff.step_overhead if steps is None else steps * cx.eff.step_overhead)


def _each(fn, *parts) -> tuple:
    """``fn`` applied to each quantity of per-op tuples (FLOP, bytes, time, margin); the margin is None
    without the breakdown, and stays None."""
    return tuple(None if any(p is None for p in ps) else fn(*ps) for ps in zip(*parts))


def _expert_efficiency(cx: _Context, ph: ops.Phase):
    """(compute efficiency of the grouped expert GEMMs, experts the stage's tokens touch): their rows
    are the stage's token-expert pairs over the experts they touch; they saturate with tokens per
    expert (a lone expert is a plain GEMM)."""
    m, eff = cx.m, cx.eff
    stage_tokens = ops.stage_tokens(cx.lay, ph)
    touched = ops.expected_experts(m.num_experts, m.experts_per_token, stage_tokens)
    per_expert = stage_tokens * m.experts_per_token / torch.clamp(touched, min=1)
    half = torch.where(m.num_experts > 1, eff.expert_half_tokens, eff.gemm_half_tokens)
    return torch.where(m.num_experts > 1, eff.expert_compute, eff.compute) * saturation(per_expert, half), touched


def _phase_ops(cx: _Context, ph: ops.Phase, attention_parts: tuple[ops.Phase, ...] = ()) -> dict[str, tuple]:
    """Per-op (FLOP, bytes, time, compute time − memory time) for one layer (embed/lm_head: once per
    pass), per GPU.

    ``attention_parts`` replaces the attention core of ``ph`` by the sum over several phases (a
    mixed prefill + decode step: the core holds no weights, so its parts add exactly)."""
    m, lay, b, eff = cx.m, cx.lay, cx.b, cx.eff
    c = eff.compute * saturation(ph.tokens, eff.gemm_half_tokens)  # GEMMs of T rows
    c_head = eff.compute * saturation(ph.sequences, eff.gemm_half_tokens)
    c_expert, touched = _expert_efficiency(cx, ph) if cx.has_moe else (None, None)
    mem, gemm_mem = eff.memory, eff.gemm_memory  # streams vs GEMM kernels' traffic
    table = {  # op: (FLOP and bytes, peak, compute efficiency, memory efficiency)
        "embed": (lambda: ops.embedding(m, ph, b), cx.peak_gemm, c, mem),
        "norm": (lambda: ops.norm(m, ph, b), cx.peak_attn, c, mem),
        "qkv": (lambda: ops.qkv(m, lay, ph, b), cx.peak_gemm, c, gemm_mem),
        "out_proj": (lambda: ops.out_proj(m, lay, ph, b), cx.peak_gemm, c, gemm_mem),
        "mlp": (lambda: ops.dense_mlp(m, lay, ph, b), cx.peak_gemm, c, gemm_mem),
        "router": (lambda: ops.router(m, ph, b), cx.peak_attn, c, gemm_mem),
        "experts": (lambda: ops.routed_experts(m, lay, ph, b, touched), cx.peak_gemm, c_expert, gemm_mem),
        "shared_experts": (lambda: ops.shared_experts(m, lay, ph, b), cx.peak_gemm, c, gemm_mem),
        "lm_head": (lambda: ops.lm_head(m, lay, ph, b), cx.peak_gemm, c_head, gemm_mem),
    }
    skip = ({"mlp"} if not cx.has_dense else set()) | (MOE_OPS if not cx.has_moe else set())
    out = {}
    for k, (work, p, e, em) in table.items():  # nine op kinds
        if k not in skip:
            f, n = work()
            out[k] = (f, n, *cx.time(f, n, p, e, em))
    return (
        {k: out[k] for k in OPS[:3]}
        | {"attn": _attention_op(cx, attention_parts or (ph,))}
        | {k: out[k] for k in OPS[4:10] if k in out}
    )


def _attention_op(cx: _Context, parts: tuple[ops.Phase, ...]) -> tuple:
    """(FLOP, bytes, time, compute − memory time) of the attention core, summed over ``parts`` (the
    core holds no weights, so the phases of a mixed step add exactly)."""
    cores = [ops.attention_core(cx.m, cx.lay, p, cx.b, cx.has_gqa, cx.has_mla) for p in parts]
    f, n = _sum(f for f, _ in cores), _sum(n for _, n in cores)
    return (f, n, *cx.time(f, n, cx.peak_attn, cx.eff.attention, cx.eff.memory))


def _all_reduce(cx: _Context, nbytes, n):
    """The all-reduce algorithm selected by the ``allreduce`` input (ring, tree or hierarchical):
    only the algorithms the grid uses are evaluated."""
    out = None
    for name in cx.allreduce_used:  # at most three algorithms, not grid points
        t = comm.ALL_REDUCE[name](nbytes, n, cx.tiers)
        out = t if out is None else torch.where(cx.allreduce == cx.allreduce_code[name], t, out)
    return out


def _phase_comm(cx: _Context, tokens) -> dict[str, torch.Tensor]:
    """Per-layer collectives of a phase (exposed part), and the pipeline hop."""
    m, lay, t = cx.m, cx.lay, cx.tiers
    act = tokens * m.d_model * cx.b.a
    # link efficiency S/(S + h) on a message of S bytes = the full efficiency on S + h bytes
    half = cx.eff.comm_half_bytes
    ar_tp = _all_reduce(cx, act + half, lay.tp)
    hop_in = comm.pipeline_hop(act + half, torch.ones_like(lay.pp, dtype=torch.bool), t)
    hop_out = comm.pipeline_hop(act + half, torch.zeros_like(lay.pp, dtype=torch.bool), t)
    crossing = comm.domain_crossings(lay.pp, lay.stage_gpus, t.domain)
    out = {
        "hops": crossing * hop_out + (lay.pp - 1 - crossing) * hop_in,
        "hop": torch.where(crossing > 0, hop_out, hop_in),
    }
    if cx.has_dense:  # (the collectives of a kind of layer no model has are left out: exact zeros)
        out["dense"] = _exposed(cx, 2 * ar_tp)  # (2·x is exact: the same bits as (exposed·2)·x)
    if cx.has_moe:
        ar_etp = _all_reduce(cx, act * (lay.etp / lay.tp) + half, lay.etp)
        ep_tiers = dataclasses.replace(t, domain=torch.clamp(t.domain / lay.etp, min=1))
        a2a = comm.group_all_to_all(act * (m.experts_per_token / lay.tp) + half, lay.ep, ep_tiers)
        out |= {"moe_tp": _exposed(cx, ar_tp + ar_etp), "moe_ep": _exposed(cx, 2 * a2a)}
    return out


def _with_context_parallel(cx: _Context, coll: dict, ph: ops.Phase, t_attn: torch.Tensor) -> dict:
    """Add context parallelism's per-layer collectives (zero at cp = 1). Prefill (tokens split over
    cp): ring attention passes the K/V blocks around the cp ring, an all-gather of the cached tokens'
    K/V, hidden behind up to cp_overlap of the attention compute. Decode (KV split over cp): the cp
    ranks' partial attention outputs are combined, an all-reduce of B·n_q·d_h activations. A grid
    whose every cp is 1 skips them (they are exact zeros there)."""
    if cx.no_cp:
        return coll
    m, lay, t = cx.m, cx.lay, cx.tiers
    cp_tiers = dataclasses.replace(t, domain=torch.clamp(t.domain / lay.tp, min=1))  # cp next to tp
    if ph.absorbed:  # decode
        partial = ph.tokens * m.num_heads / lay.tp * m.head_dim * cx.b.a
        extra = _exposed(cx, comm.group_all_reduce(partial, lay.cp, cp_tiers))  # small: ring
    else:
        ring = comm.all_gather(
            ph.kv_read * kv_elements_per_rank(m, lay) * cx.b.kv, lay.cp, *comm.flat_link(lay.cp, cp_tiers)
        )
        extra = torch.clamp(ring - cx.eff.cp_overlap * t_attn, min=0)
    return coll | {k: coll[k] + extra for k in ("dense", "moe_tp") if k in coll}


def _counts(m) -> dict[str, Any]:
    """How many times each op runs in one pass through the model (embedding and LM head once)."""
    n_moe = m.num_moe_layers
    n_dense = m.num_layers - n_moe
    return {
        "embed": 1,
        "norm": m.num_layers,
        "qkv": m.num_layers,
        "attn": m.num_layers,
        "out_proj": m.num_layers,
        "mlp": n_dense,
        "router": n_moe,
        "experts": n_moe,
        "shared_experts": n_moe,
        "lm_head": 1,
    }


def _sum(terms):
    """Left-to-right sum from the first term (Python's ``sum`` starts from 0: one more operation)."""
    return functools.reduce(operator.add, terms)


def _total(per_op: dict, counts: dict, index: int):
    """Sum over the ops of ``counts · per_op[op][index]`` at the ops' own (broadcast) shapes, in a
    fixed order (so the result does not depend on which axes a grid or chunk sweeps): OPS's, with the
    attention core, the one term on every axis in decode, added last."""
    order = [k for k in OPS if k != "attn"] + ["attn"]
    return _sum(counts[k] * per_op[k][index] for k in order if k in per_op)


@dataclass(frozen=True)
class _Pass:
    """One pass through the model (one microbatch, every stage) before its attention core is added:
    the sum over stages and the candidate stages' times of every other op and collective."""

    total: torch.Tensor
    candidates: tuple[torch.Tensor, ...]
    layers: torch.Tensor  # layers of the model (attention runs once per layer)
    stage_layers: tuple[torch.Tensor, ...]  # layers of each candidate stage


def _comm_totals(m, coll: dict) -> dict:
    """Per-pass collective times of each kind (a kind no model of the grid has is absent)."""
    n_moe = m.num_moe_layers
    tp_terms = [n * coll[k] for n, k in ((m.num_layers - n_moe, "dense"), (n_moe, "moe_tp")) if k in coll]
    out = {"tp_comm": _sum(tp_terms), "pp_comm": coll["hops"]}
    if "moe_ep" in coll:
        out["ep_comm"] = n_moe * coll["moe_ep"]
    return out


def _layer_times(cx: _Context, per_op: dict, coll: dict, t_attn: torch.Tensor | None = None) -> tuple:
    """(time of a dense layer, time of a MoE layer), each None where no model has that kind; with
    their attention core ``t_attn`` when given (a layer's every op and exposed collective)."""
    common = _sum(per_op[k][2] for k in ("norm", "qkv", "out_proj"))
    t_dense = common + per_op["mlp"][2] + coll["dense"] if cx.has_dense else None
    t_moe = (
        (
            common
            + per_op["router"][2]
            + per_op["shared_experts"][2]
            + per_op["experts"][2]
            + coll["moe_tp"]
            + coll["moe_ep"]
        )
        if cx.has_moe
        else None
    )
    if t_attn is None:
        return t_dense, t_moe
    return tuple(None if t is None else t + t_attn for t in (t_dense, t_moe))


def _stages(cx: _Context, per_op: dict, coll: dict, mix: pipeline.StageMix, t_dense, t_moe):
    """(sum over stages, candidate stages' times) from the per-layer times."""
    m = cx.m
    candidates = pipeline.candidate_times(mix, t_dense, t_moe, per_op["embed"][2], per_op["lm_head"][2], coll["hop"])
    n_moe = m.num_moe_layers
    total = pipeline.total_time(
        m.num_layers - n_moe, n_moe, t_dense, t_moe, per_op["embed"][2], per_op["lm_head"][2], coll["hops"]
    )
    return total, candidates


def _without_attention(cx: _Context, per_op: dict, coll: dict, mix: pipeline.StageMix) -> _Pass:
    total, candidates = _stages(cx, per_op, coll, mix, *_layer_times(cx, per_op, coll))
    return _Pass(
        total=total,
        candidates=tuple(candidates),
        layers=cx.m.num_layers,
        stage_layers=tuple(mix.layers[..., i] for i in range(len(candidates))),
    )


def _with_attention(p: _Pass, t_attn: torch.Tensor):
    """(sum over stages, slowest stage) once the attention core's per-layer time is added (decode:
    the same pass at each quadrature node's attention)."""
    slowest = None
    for cand, layers in zip(p.candidates, p.stage_layers):  # at most 5 candidate stages
        t = cand + layers * t_attn
        slowest = t if slowest is None else inplace.maximum(slowest, t)
    return p.total + p.layers * t_attn, slowest


def _compose(cx: _Context, per_op: dict, coll: dict, mix: pipeline.StageMix, breakdown: bool = False):
    """Per-op totals over all layers (op axis last; only with ``breakdown``), the sum over stages,
    and the slowest stage, of a pass used once: each layer's time includes its attention core before
    the stages are formed (one addition per kind of layer, not per candidate stage)."""
    total, candidates = _stages(cx, per_op, coll, mix, *_layer_times(cx, per_op, coll, per_op["attn"][2]))
    slowest = None
    for t in candidates:  # at most 5 candidate stages (temporaries of candidate_times)
        slowest = t if slowest is None else inplace.maximum(slowest, t)
    times = None
    if breakdown:
        counts = _counts(cx.m)
        t = {k: counts[k] * v[2] for k, v in per_op.items()} | _comm_totals(cx.m, coll)
        zero = torch.zeros((), dtype=total.dtype, device=total.device)
        times = torch.stack(torch.broadcast_tensors(*(t.get(k, zero) for k in OPS)), dim=-1)
    return times, total, slowest


def _stack(per_op: dict, counts: dict, index: int):
    zero = per_op["qkv"][index].new_zeros(())
    cols = [counts[k] * per_op[k][index] if k in per_op else zero for k in OPS]
    return torch.stack(torch.broadcast_tensors(*cols), dim=-1)


def _bound(margin: Mapping[str, torch.Tensor], times: torch.Tensor) -> torch.Tensor:
    """What bounds each op (op axis last; int8 codes, names in :data:`~tensorperf.results.OP_BOUNDS`):
    compute where its compute time exceeds its memory time (``margin`` = t_compute − t_memory > 0),
    memory otherwise, communication for the collectives (``*_comm``), none where the op takes no
    time (no work, or no peer to talk to). Codes are built per op at its own (broadcast) shape and
    stacked as int8, so the grid-sized intermediate is one byte per point and op."""
    code = {name: torch.tensor(i, dtype=torch.int8, device=times.device) for i, name in enumerate(OP_BOUNDS)}
    cols = [
        torch.where(margin[k] > 0, code["compute"], code["memory"]) if k in margin else code["communication"]
        for k in OPS
    ]
    return torch.where(times > 0, torch.stack(torch.broadcast_tensors(*cols), dim=-1), code["none"])


def _serving_step(cx: _Context) -> torch.Tensor:
    """Steady-state continuous batching (in-flight batching with chunked prefill), the regime of
    offline "max throughput" benchmarks: B requests stay in flight; a request spends one step per
    output token, so each step carries B decode tokens at the mean context S + T_out/2 and, on
    average, B·S/T_out prompt tokens of the requests that replace finished ones. One step is one
    forward pass over that mixed batch (weights read once); output tokens/s = B / step."""
    m, S, T_out = cx.m, cx.S, cx.T_out
    prompt_share = S / T_out  # prompt tokens per output token
    cp = cx.lay.cp
    steps = torch.clamp(T_out - 1, min=1)
    decode_keys = cx.B_mb * mean_decode_keys(m, S + T_out / 2, mean_chunked_keys(m, S, steps)) / cp
    prompt_tokens = cx.B_mb * prompt_share / cp
    decode = ops.Phase(tokens=cx.B_mb, pairs=decode_keys, kv_read=decode_keys, sequences=cx.B_mb, absorbed=True)
    # prompt tokens attend causally: mean pairs per prompt token = pairs(S) / S; in n chunks each chunk
    # re-reads the cache before it, (n + 1)/2 times a prompt's own KV on average
    prompt = ops.Phase(
        tokens=prompt_tokens,
        pairs=prompt_tokens * mean_prefill_pairs(m, S) / S,
        kv_read=prompt_tokens * cp * (cx.chunks + 1) / 2,
        sequences=cx.B_mb / T_out,
        absorbed=False,
    )
    tokens = cx.B_mb + prompt_tokens
    mixed = ops.Phase(tokens=tokens, pairs=decode_keys, kv_read=decode_keys, sequences=cx.B_mb, absorbed=True)
    per_op = _phase_ops(cx, mixed, attention_parts=(decode, prompt))
    t_attn = per_op["attn"][2]
    coll = _with_context_parallel(
        cx, _with_context_parallel(cx, _phase_comm(cx, tokens), prompt, t_attn), decode, t_attn
    )
    _, total, slowest = _compose(cx, per_op, coll, cx.mix)
    return _with_overhead(cx, pipeline.decode_step(total, slowest, cx.lay.micro))


def _chunked_prefill(cx: _Context, grid: Grid):
    """Per-op sums over the chunks of a chunked prefill, the summed collectives, and the chunk count.

    Chunk j of C tokens follows j·C cached ones: its attention covers P(jC + C) − P(jC) pairs and
    reads the jC + C cached tokens; every chunk re-reads the weights. The last chunk holds the
    remainder r = S − floor(S/C)·C (when r > 0) and carries the LM head. Full chunks differ only in
    their attention, evaluated on a leading chunk axis (length max S / min C over the grid) and summed
    exactly; the other ops are the same for every full chunk."""
    m, lay, b, eff, S = cx.m, cx.lay, cx.b, cx.eff, cx.S
    C = torch.minimum(grid.axis("chunk_size"), S)
    n_full = torch.floor(S / C)
    rest = S - n_full * C
    has_rest = (rest > 0) * 1.0
    bmb, cp = cx.B_mb, lay.cp
    full = ops.Phase(
        tokens=bmb * C / cp,
        pairs=bmb * mean_pairs_between(m, torch.zeros_like(C), C) / cp,
        kv_read=bmb * C,
        sequences=bmb,
        absorbed=False,
        spread=cp,
    )
    last = ops.Phase(
        tokens=bmb * rest / cp,
        pairs=bmb * mean_pairs_between(m, S - rest, S) / cp,
        kv_read=bmb * mean_cached_tokens(m, S) * (rest > 0),
        sequences=bmb,
        absorbed=False,
        spread=cp,
    )
    full_ops, last_ops = _phase_ops(cx, full), _phase_ops(cx, last)
    # the attention of every full chunk j, accumulated one chunk position at a time: grid-sized
    # memory for any chunk count, and a fixed order of additions (the sum does not depend on how the
    # grid is split; positions past a point's own chunk count add exact zeros)
    n_max = max(int(max(grid.values["prompt_len"]) // min(grid.values["chunk_size"])), 1)
    attn_full = [0.0, 0.0, 0.0, 0.0]
    for j in range(n_max):  # chunk positions, not grid points
        start = j * C
        chunk_j = ops.Phase(
            tokens=full.tokens,
            pairs=bmb * mean_pairs_between(m, start, start + C) / cp,
            kv_read=bmb * mean_cached_tokens(m, start + C),
            sequences=bmb,
            absorbed=False,
            spread=cp,
        )
        f, n = ops.attention_core(m, lay, chunk_j, b, cx.has_gqa, cx.has_mla)
        t, margin = cx.time(f, n, cx.peak_attn, eff.attention, eff.memory)
        valid = j < n_full
        attn_full = [
            None if x is None else acc + torch.where(valid, x, torch.zeros_like(x))
            for acc, x in zip(attn_full, (f, n, t, margin))
        ]
    per_op = {}
    for name in full_ops:  # a handful of op kinds
        if name == "attn":
            per_op[name] = _each(lambda a, x: a + has_rest * x, attn_full, last_ops[name])
        elif name == "lm_head":  # logits once, after the last chunk
            per_op[name] = _each(lambda x, y: torch.where(rest > 0, x, y), last_ops[name], full_ops[name])
        else:
            per_op[name] = _each(lambda x, y: n_full * x + has_rest * y, full_ops[name], last_ops[name])
    c_full = _with_context_parallel(cx, _phase_comm(cx, full.tokens), full, full_ops["attn"][2])
    c_last = _with_context_parallel(cx, _phase_comm(cx, last.tokens), last, last_ops["attn"][2])
    coll = {k: n_full * c_full[k] + has_rest * c_last[k] for k in ("dense", "moe_tp", "moe_ep", "hops") if k in c_full}
    coll["hop"] = n_full * c_full["hop"] + has_rest * c_last["hop"]  # the slowest stage sends every chunk on
    # pipeline drain of the final chunk: the remainder, or a full chunk (its attention averaged)
    avg = dict(full_ops) | {"attn": _each(lambda x: x / torch.clamp(n_full, min=1), attn_full)}
    _, total_f, slowest_f = _compose(cx, avg, c_full, cx.mix)
    _, total_l, slowest_l = _compose(cx, last_ops, c_last, cx.mix)
    fill = torch.maximum(total_f - slowest_f, has_rest * (total_l - slowest_l))
    return per_op, coll, fill


# The metrics each pass feeds; a caller asking for some metrics only (a streamed reduction) skips the
# passes nobody asked for. Memory, counts and feasibility are always computed.
PREFILL_METRICS = frozenset({"ttft", "ttft_max", "e2e_latency", "tokens_per_s_per_gpu", "prefill_tokens_per_s_per_gpu"})
DECODE_METRICS = frozenset(
    {
        "tpot",
        "e2e_latency",
        "tokens_per_s_per_gpu",
        "tokens_per_s_per_user",
        "decode_tokens_per_s_per_gpu",
        "mfu",
        "mbu",
    }
)
SERVING_METRICS = frozenset({"serving_step_time", "serving_tokens_per_s_per_gpu", "serving_tokens_per_s_per_user"})


def _prefill(cx: _Context, grid: Grid, breakdown: bool):
    """(mean TTFT, last TTFT, per-op times over layers or None, per-op quantities) of the prefill.
    B_mb sequences of S tokens per replica-microbatch; context parallelism: each cp rank takes 1/cp
    of the tokens and pairs, and reads every K/V block."""
    m, lay, S = cx.m, cx.lay, cx.S
    cp = lay.cp
    tokens = cx.B_mb * S / cp
    pre = ops.Phase(
        tokens=tokens,
        pairs=cx.B_mb * mean_prefill_pairs(m, S) / cp,
        kv_read=cx.B_mb * S,
        sequences=cx.B_mb,
        absorbed=False,
        spread=cp,
    )
    pre_ops = _phase_ops(cx, pre)
    pre_coll = _with_context_parallel(cx, _phase_comm(cx, tokens), pre, pre_ops["attn"][2])
    pre_times, pre_total, pre_slowest = _compose(cx, pre_ops, pre_coll, cx.mix, breakdown)
    ttft, ttft_max = pipeline.prefill_times(_with_overhead(cx, pre_total), pre_slowest, lay.micro)
    if "chunk_size" in grid.values:  # chunked prefill; a chunk of the whole prompt is the above exactly
        whole = grid.axis("chunk_size") >= S
        c_ops, c_coll, fill = _chunked_prefill(cx, grid)
        c_times, c_total, c_slowest = _compose(cx, c_ops, c_coll, cx.mix, breakdown)
        c_ttft, c_ttft_max = pipeline.chunked_prefill_times(
            c_total, _with_overhead(cx, c_slowest, cx.chunks), lay.micro, fill
        )
        keep = lambda a, b: torch.where(whole.reshape(whole.shape + (1,) * (b.dim() - whole.dim())), a, b)  # noqa: E731
        ttft, ttft_max = keep(ttft, c_ttft), keep(ttft_max, c_ttft_max)
        pre_times = keep(pre_times, c_times) if breakdown else None
        pre_ops = {k: _each(keep, pre_ops[k], c_ops[k]) for k in pre_ops}
    return ttft, ttft_max, pre_times, pre_ops


def _decode(cx: _Context):
    """(TPOT, per-op quantities of the mean decode step, its collectives). Simpson nodes over steps
    j = 1 .. T_out − 1 (a loop over 3 quadrature nodes). Only the attention core depends on the step
    (its context S + j); every other op, and the collectives, are computed once."""
    m, lay, S, mix = cx.m, cx.lay, cx.S, cx.mix
    last = torch.clamp(cx.T_out - 1, min=1)
    saw = mean_chunked_keys(m, S, last)  # chunked-attention layers: exact mean over the generation
    nodes = []
    for j in (torch.ones_like(last), (1 + last) / 2, last):
        keys = cx.B_mb * mean_decode_keys(m, S + j, saw) / lay.cp  # the KV cache is split over cp
        nodes.append(ops.Phase(tokens=cx.B_mb, pairs=keys, kv_read=keys, sequences=cx.B_mb, absorbed=True))
    dec_ops = _phase_ops(cx, nodes[1])
    dec_coll = _with_context_parallel(cx, _phase_comm(cx, cx.B_mb), nodes[1], dec_ops["attn"][2])
    steps, attn = [], []
    rest = _without_attention(cx, dec_ops, dec_coll, mix)
    if len(rest.candidates) > 2:  # leading dense layers: 5 candidates, 2 groups by layer count
        grouped, layers = pipeline.by_layer_count(mix, list(rest.candidates))
        rest = dataclasses.replace(rest, candidates=tuple(grouped), stage_layers=tuple(layers))
    for node in nodes:
        attn.append(_attention_op(cx, (node,)))
        total, slowest = _with_attention(rest, attn[-1][2])
        steps.append(pipeline.decode_step(total, slowest, lay.micro))
    tpot = _with_overhead(cx, _simpson(*steps, into_first=True))  # the per-step overhead is the same at every node
    return tpot, dec_ops | {"attn": _each(_simpson, *attn)}, dec_coll  # (the mean step's attention)


def evaluate(
    grid: Grid,
    efficiency: Mapping[str, Any] | None = None,
    fields: Mapping[str, torch.Tensor] | None = None,
    breakdown: bool = True,
    metrics: Collection[str] | None = None,
) -> Evaluation:
    """Every metric over the grid. ``efficiency`` overrides Efficiency factors (numbers or tensors);
    ``fields`` replaces ModelSpec/HardwareSpec fields by tensors (used for sensitivities).
    ``breakdown=False`` skips the per-op variables (an ``op`` axis of 13 values per point); every
    other metric is the same, bit for bit. ``metrics``: the metrics wanted (default all); the passes
    no wanted metric needs (prefill, decode, the serving step) are skipped, and the metrics computed
    are the same, bit for bit (memory, counts and feasibility are always there).

    Without the breakdown the engine computes with its axes in :data:`~tensorperf.grid.EVAL_ORDER`
    (faster) and returns views in the grid's own order; tensors given in ``efficiency``/``fields`` on
    the grid's axes are taken in the grid's order. Every point's arithmetic is the same in any axis
    order. (The breakdown's op axis, 13 values per point, would then need a transposing copy costing
    more than the order saves; it is computed in the grid's order.)"""
    inner, back = grid.in_order(EVAL_ORDER)
    if breakdown or back == tuple(range(len(back))):
        return _evaluate(grid, efficiency, fields, breakdown, metrics)
    into = tuple(grid.dims.index(d) for d in inner.dims)
    given = [{k: _on_axes(_full_rank(v, len(into)), into) for k, v in (m or {}).items()} for m in (efficiency, fields)]
    ev = _evaluate(inner, *given, breakdown, metrics)
    return dataclasses.replace(
        ev, values={k: _on_axes(v, back) for k, v in ev.values.items()}, reason=_on_axes(ev.reason, back)
    )


def _full_rank(value: Any, n: int) -> Any:
    """An override as given: a number as it is; an array or tensor (broadcastable to the grid, its
    last axis on the grid's last) as a tensor with the grid's n axes, for :func:`_on_axes`."""
    if isinstance(value, numbers.Number) or (isinstance(value, torch.Tensor) and value.dim() == 0):
        return value
    t = torch.as_tensor(value)
    return t.reshape((1,) * (n - t.dim()) + tuple(t.shape)) if 0 < t.dim() < n else t


def _on_axes(t: Any, perm: tuple[int, ...]) -> Any:
    """A tensor on the grid's axes (plus trailing result axes) with its grid axes permuted; numbers
    and 0-d tensors as they are."""
    if not isinstance(t, torch.Tensor) or t.dim() == 0:
        return t
    if t.dim() < len(perm):
        raise ValueError(f"a tensor of shape {tuple(t.shape)} is not on the grid's {len(perm)} axes")
    return t.permute(perm + tuple(range(len(perm), t.dim())))


def _evaluate(
    grid: Grid,
    efficiency: Mapping[str, Any] | None,
    fields: Mapping[str, torch.Tensor] | None,
    breakdown: bool,
    metrics: Collection[str] | None,
) -> Evaluation:
    cx = _Context(grid, efficiency or {}, fields or {}, breakdown)
    m, lay, hw, b = cx.m, cx.lay, cx.hw, cx.b
    S, T_out, B = cx.S, cx.T_out, cx.B
    counts = _counts(m)
    wanted = lambda names: metrics is None or not names.isdisjoint(metrics)  # noqa: E731
    prefill, decode = breakdown or wanted(PREFILL_METRICS), breakdown or wanted(DECODE_METRICS)
    if prefill:
        ttft, ttft_max, pre_times, pre_ops = _prefill(cx, grid, breakdown)
    if decode:
        tpot, dec_ops, dec_coll = _decode(cx)
    serving_step = _serving_step(cx) if wanted(SERVING_METRICS) else None

    n_gpus = lay.num_gpus
    if prefill and decode:
        generation = (T_out - 1) * tpot  # the decode steps after the first token
        e2e = ttft + generation
        batch_done = ttft_max + generation
    per_gpu_step = lay.micro / lay.pp  # each GPU runs its stage once per microbatch per step
    peak = cx.peak_gemm

    # memory per GPU
    L_max, kv_seq, weights, capacity = cx.L_max, cx.kv_seq, cx.weights, cx.capacity
    kv = kv_seq * cx.B_rep
    step_tokens = cx.B_mb * (torch.minimum(S, grid.axis("chunk_size")) if "chunk_size" in grid.values else S)
    act = activation_bytes_per_gpu(m, lay, step_tokens / lay.cp, cx.B_mb, b.a)
    memory = weights + kv + act
    kv_total = m.kv_elements_per_token_per_layer * m.num_layers * mean_cached_tokens(m, L_max) * b.kv
    # weights and KV of the whole deployment over what each GPU has left after its workspace
    f64 = torch.float64
    min_gpus = torch.ceil(
        (cx.m_exact.num_params * b.w.to(f64) + cx.B_exact * kv_total.to(f64))
        / torch.clamp(capacity.to(f64) - act.to(f64), min=1.0)
    )  # a count: float64

    # every metric, in the Dataset's order, with the passes it needs (formed only where wanted)
    formulas = {
        "ttft": (prefill, lambda: ttft),
        "ttft_max": (prefill, lambda: ttft_max),
        "tpot": (decode, lambda: tpot),
        "e2e_latency": (prefill and decode, lambda: e2e),
        "tokens_per_s_per_gpu": (prefill and decode, lambda: B * T_out / n_gpus / batch_done),  # (few axes first)
        "tokens_per_s_per_user": (decode, lambda: 1 / tpot),
        "decode_tokens_per_s_per_gpu": (decode, lambda: B / n_gpus / tpot),
        "prefill_tokens_per_s_per_gpu": (prefill, lambda: B * S / n_gpus / ttft_max),
        "serving_step_time": (serving_step is not None, lambda: serving_step),
        "serving_tokens_per_s_per_gpu": (serving_step is not None, lambda: B / n_gpus / serving_step),
        "serving_tokens_per_s_per_user": (serving_step is not None, lambda: 1 / serving_step),
        "concurrency": (True, lambda: cx.B_exact),
        "memory_per_gpu": (True, lambda: memory),
        "weight_memory_per_gpu": (True, lambda: weights),
        "kv_cache_memory_per_gpu": (True, lambda: kv),
        "activation_memory_per_gpu": (True, lambda: act),
        "memory_capacity_per_gpu": (True, lambda: capacity),
        "max_batch": (
            True,
            lambda: max_batch(
                capacity.to(f64), weights.to(f64), cx.workspace_cap.to(f64), cx.per_sequence.to(f64), cx.lay_exact.dp
            ),
        ),
        "min_gpus_for_capacity": (True, lambda: min_gpus),
        "num_gpus": (True, lambda: cx.lay_exact.num_gpus),
        "mfu": (decode, lambda: _total(dec_ops, counts, 0) * (per_gpu_step / peak) / tpot),  # (few axes first)
        "mbu": (decode, lambda: _total(dec_ops, counts, 1) * (per_gpu_step / hw.hbm_bandwidth) / tpot),
    }
    always = {
        "concurrency",
        "memory_per_gpu",
        "weight_memory_per_gpu",
        "kv_cache_memory_per_gpu",
        "activation_memory_per_gpu",
        "memory_capacity_per_gpu",
        "max_batch",
        "min_gpus_for_capacity",
        "num_gpus",
    }
    values = {k: f() for k, (ready, f) in formulas.items() if ready and (k in always or wanted({k}))}
    if breakdown:
        dec_times, _, _ = _compose(cx, dec_ops, dec_coll, cx.mix, breakdown)  # of the mean decode step
        values |= {
            "prefill_op_time": pre_times,
            "decode_op_time": dec_times,
            "prefill_op_flops": _stack(pre_ops, counts, 0),
            "prefill_op_bytes": _stack(pre_ops, counts, 1),
            "decode_op_flops": _stack(dec_ops, counts, 0),
            "decode_op_bytes": _stack(dec_ops, counts, 1),
            "prefill_op_bound": _bound({k: v[3] for k, v in pre_ops.items()}, pre_times),
            "decode_op_bound": _bound({k: v[3] for k, v in dec_ops.items()}, dec_times),
        }
    checks = _checks(cx, memory <= capacity)
    if "world_size" in grid.values:
        checks[Reason.WORLD_SIZE] = cx.lay_exact.num_gpus == grid.axis("world_size", torch.float64)
    reason = combine(checks, grid.shape, grid.device)
    trailing = {k: ("op",) for k in values if k.endswith(("_op_time", "_op_flops", "_op_bytes", "_op_bound"))}
    return Evaluation(values=values, reason=reason, trailing=trailing, trailing_coords={"op": OPS})


def _divides(a, b):
    return torch.remainder(a, b) == 0


def _checks(cx: _Context, fits) -> dict[Reason, torch.Tensor]:
    """Feasibility decisions, on the exact (float64) counts."""
    m, lay = cx.m_exact, cx.lay_exact
    moe = m.num_experts > 0
    heads = _divides(m.num_heads, lay.tp) & (_divides(m.num_kv_heads, lay.tp) | _divides(lay.tp, m.num_kv_heads))
    mlp = _divides(m.d_ff, lay.tp) | (m.num_dense_layers == 0)
    experts = torch.where(
        moe,
        _divides(m.num_experts, lay.ep) & _divides(lay.stage_gpus, lay.ep) & _divides(m.d_ff_expert, lay.etp),
        lay.ep == 1,
    )
    G = cx.hw.scaleup_size
    consistent = (
        _divides(m.num_heads, m.num_kv_heads)
        & (
            (m.num_experts == 0)
            | ((m.experts_per_token >= 1) & (m.experts_per_token <= m.num_experts) & (m.d_ff_expert > 0))
        )
        & (m.first_dense_layers <= m.num_layers)
        & ((m.num_dense_layers == 0) | (m.d_ff > 0))
    )
    return {
        Reason.INCONSISTENT: consistent,
        Reason.DIVISIBILITY: heads & mlp & experts,
        Reason.PIPELINE: lay.pp <= m.num_layers,
        Reason.BATCH: _divides(cx.B_exact, lay.dp) & _divides(cx.B_rep_exact, lay.micro),
        Reason.DTYPE: cx.dtype_ok,
        Reason.PLACEMENT: (lay.tp <= G) | _divides(lay.tp, G),
        Reason.MEMORY: fits,
    }
