"""Speculative decoding on the grid (docs/model.md §3.14): the inputs (:func:`speculation`), the
drafter's memory (:func:`drafter_memory`), the verification pass's phase (:func:`verify_phase`) and
the time of one draft step (:func:`drafter`, :func:`draft_time`). The formulas are in
:mod:`tensorperf.engine.physics.speculative`.

A draft step runs the drafter on one token per decoding sequence, attending over its own cache of
the context: ``mtp``, one MTP module (a decoder layer of the model's last kind, with its collectives,
the projection, the embedding lookup and the LM head); ``eagle``, one dense decoder layer of the
model's width (its attention, a dense MLP, two all-reduces, the fc, the embedding lookup and the LM
head); ``draft``, the draft model's whole decode step (every layer, its embedding and LM head) on the
target's tp, cp and dp in one pipeline stage.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from tensorperf.catalog.specs import tensor_view
from tensorperf.engine.grid import Grid
from tensorperf.engine.physics import ops, pipeline
from tensorperf.engine.physics import speculative as spec_physics
from tensorperf.engine.physics.attention import mean_cached_tokens, mean_decode_keys
from tensorperf.engine.physics.layout import Layout
from tensorperf.engine.physics.memory import kv_bytes_per_sequence, logit_bytes_per_sequence, weight_bytes_per_gpu
from tensorperf.engine.physics.roofline import saturation
from tensorperf.engine.physics.speculative import METHOD_CODE
from tensorperf.engine.roofline import collectives, layer, stages
from tensorperf.engine.roofline.per_op import left_sum
from tensorperf.engine.roofline.values import Deployment, Rates, Shortcuts, Speculation, Workload
from tensorperf.validation import SpecError

MTP, EAGLE, DRAFT = METHOD_CODE["mtp"], METHOD_CODE["eagle"], METHOD_CODE["draft"]


# ---------------------------------------------------------------------------------------- inputs
def _acceptance(grid: Grid, fields: Mapping[str, Any], model: Any, method: torch.Tensor, used: set) -> torch.Tensor:
    """α at each point: the ``acceptance`` input (a sensitivity's leaf first), else the model preset's
    sourced value for its method (mtp: ModelSpec.mtp_acceptance); SpecError naming ``acceptance``
    where a point speculates and neither exists."""
    if "acceptance" in fields:
        return fields["acceptance"]
    if "acceptance" in grid.values:
        return grid.axis("acceptance")
    others = sorted(used - {"none", "mtp"})
    if others:
        raise SpecError(
            f"acceptance is not given: speculative={others[0]!r} has no published default acceptance; give "
            "acceptance (a number in [0, 1), the probability that a draft token is accepted given the "
            "previous one was)"
        )
    overridden = any(k.removesuffix("_scale") == "mtp_acceptance" for k in (*grid.values, *fields))
    lacking = [s.name for s in grid.values["model"] if s.mtp_acceptance == 0]
    if "mtp" in used and lacking and not overridden:
        raise SpecError(
            f"acceptance is not given and model {lacking[0]!r} states no sourced MTP acceptance "
            "(ModelSpec.mtp_acceptance = 0): give acceptance (a number in [0, 1)) for speculative='mtp'"
        )
    return torch.where(method == MTP, model.mtp_acceptance, torch.zeros_like(model.mtp_acceptance))


def speculation(
    grid: Grid, fields: Mapping[str, Any], model: Any, shell: Layout, cuts: Shortcuts
) -> Speculation | None:
    """The speculative-decoding inputs on the grid; None where every point has ``speculative="none"``
    (the engine then runs the plain decode step, bit for bit)."""
    used = set(grid.values.get("speculative", ("none",)))
    if used == {"none"}:
        return None
    method = grid.lookup("speculative", METHOD_CODE)
    k_given = grid.axis("spec_tokens") if "spec_tokens" in grid.values else torch.ones_like(method)
    k = torch.where(method == 0, torch.zeros_like(k_given), k_given)
    k_max = max(grid.values["spec_tokens"]) if "spec_tokens" in grid.values else 1
    alpha = _acceptance(grid, fields, model, method, used)
    # the preset's MTP acceptance decays past the model's MTP modules (a given acceptance is taken as
    # the same at every position, the definition)
    given = "acceptance" in fields or "acceptance" in grid.values
    decay = torch.where(method == MTP, model.mtp_reuse_decay, torch.ones_like(model.mtp_reuse_decay))
    reuse = None if given else (decay, model.num_mtp_layers)
    out = Speculation(
        method=method,
        k=k,
        tokens_per_step=spec_physics.tokens_per_step(alpha, k, int(k_max), reuse),
        methods=tuple(m for m in spec_physics.SPECULATIVE_METHODS if m in used),
    )
    if "draft" not in used:
        return out
    if "draft_model" not in grid.values:
        raise SpecError(
            "speculative='draft' needs draft_model (a model preset id, a spec file or a ModelSpec: the "
            "small model that drafts the tokens)"
        )
    drafts = grid.values["draft_model"]
    draft = grid.spec("draft_model", attr=lambda s: s)  # (what-if fields apply to the target only)
    one = torch.ones_like(shell.pp)
    lay = Layout(tp=shell.tp, pp=one, dp=shell.dp, ep=one, micro=one, cp=shell.cp)
    draft_cuts = dataclasses.replace(
        cuts,
        has_dense=any(s.num_dense_layers > 0 for s in drafts),
        has_moe=any(s.num_experts > 0 for s in drafts),
        has_mla=any(s.kv_lora_rank > 0 for s in drafts),
        has_gqa=any(s.kv_lora_rank == 0 for s in drafts),
        breakdown=False,
        imbalanced=False,
    )
    mix = pipeline.stage_mix(draft, one, lead_dense=any(s.first_dense_layers > 0 for s in drafts))
    return dataclasses.replace(out, draft=draft, draft_layout=lay, draft_mix=mix, draft_cuts=draft_cuts)


# ---------------------------------------------------------------------------------------- memory
@dataclass(frozen=True)
class DrafterMemory:
    """Bytes per GPU the drafter adds: its weights, its KV cache per sequence at the longest context,
    and the verification's logits of k more positions per sequence."""

    weights: torch.Tensor
    kv_per_sequence: torch.Tensor
    logits_per_sequence: torch.Tensor


def drafter_memory(
    spec: Speculation,
    model: Any,
    shell: Layout,
    sizes: ops.Bytes,
    context: torch.Tensor,
    group_bytes: Mapping[str, torch.Tensor] | None,
) -> DrafterMemory:
    """The drafter's memory at each point (0 where ``speculative="none"`` or k = 0: nothing drafts). MTP
    modules and an EAGLE head cache the model's own attention for every token of the context; a draft
    model holds its weights and KV cache on the target's tp·cp ranks (one stage)."""
    b_w = sizes.w if group_bytes is None else group_bytes
    zero = torch.zeros((), dtype=shell.tp.dtype, device=shell.tp.device)
    cached = mean_cached_tokens(model, context)
    weights, kv = zero, zero
    if "mtp" in spec.methods:
        on = (spec.method == MTP) & (spec.k > 0)
        weights = weights + torch.where(on, spec_physics.mtp_weight_bytes(model, shell, b_w), zero)
        mtp_kv = spec_physics.drafter_kv_bytes_per_sequence(model, shell, model.num_mtp_layers, cached, sizes.kv)
        kv = kv + torch.where(on, mtp_kv, zero)
    if "eagle" in spec.methods:
        on = (spec.method == EAGLE) & (spec.k > 0)
        weights = weights + torch.where(on, spec_physics.eagle_weight_bytes(model, shell, b_w), zero)
        kv = kv + torch.where(on, spec_physics.drafter_kv_bytes_per_sequence(model, shell, 1, cached, sizes.kv), zero)
    if spec.draft is not None:
        on, m, lay = (spec.method == DRAFT) & (spec.k > 0), spec.draft, spec.draft_layout
        draft_w = weight_bytes_per_gpu(m, lay, spec.draft_mix, b_w)
        draft_kv = kv_bytes_per_sequence(m, lay, mean_cached_tokens(m, context), sizes.kv, m.num_layers)
        weights, kv = weights + torch.where(on, draft_w, zero), kv + torch.where(on, draft_kv, zero)
    return DrafterMemory(
        weights=weights, kv_per_sequence=kv, logits_per_sequence=spec.k * logit_bytes_per_sequence(model, shell)
    )


# ---------------------------------------------------------------------------------------- time
def verify_phase(spec: Speculation, tokens: torch.Tensor, keys: torch.Tensor) -> ops.Phase:
    """The verification of ``tokens`` decoding sequences (``keys``: the keys their queries read, summed):
    k + 1 query positions each (GEMM rows and LM-head rows ×(k + 1), attention FLOP ×(k + 1)), each
    sequence's cache read once for its k + 1 queries. At k = 0, the plain decode phase bit for bit."""
    q = spec.k + 1
    return ops.Phase(tokens=tokens * q, pairs=keys * q, kv_read=keys, sequences=tokens * q, absorbed=True)


@dataclass(frozen=True)
class Drafter:
    """One draft step of every point's drafter before its attention cores: ``rest`` (s), every other op
    and collective. The cores are added per context by :func:`draft_time`."""

    rest: torch.Tensor


def _pick(model: Any, t_dense: torch.Tensor | None, t_moe: torch.Tensor | None) -> torch.Tensor:
    """A decoder layer of the model's last kind: a MoE layer where it has them, else a dense one."""
    if t_moe is None:
        return t_dense
    if t_dense is None:
        return t_moe
    return torch.where(model.num_moe_layers > 0, t_moe, t_dense)


def _projection_time(w: Workload, r: Rates, s: Shortcuts, sizes: ops.Bytes, tokens: torch.Tensor) -> torch.Tensor:
    """The drafter's 2d -> d projection, a GEMM of ``tokens`` rows at the weight format's rate."""
    b_w = sizes.w if r.kernels is None else r.kernels.bytes["attention"]
    flops, nbytes = spec_physics.projection(w.model, tokens, b_w, sizes.a)
    eff = r.efficiency
    return layer.timed(
        r, s, flops, nbytes, r.peak_gemm, eff.compute * saturation(tokens, eff.gemm_half_tokens), eff.gemm_memory
    )[0]


def _eagle_mlp_time(w: Workload, r: Rates, d: Deployment, s: Shortcuts, ph: ops.Phase) -> torch.Tensor:
    """The EAGLE head's dense MLP (physics.speculative.eagle_mlp_width), tensor-parallel."""
    m = w.model
    head = tensor_view(type(m), {**vars(m), "d_ff": spec_physics.eagle_mlp_width(m)})
    sizes = d.sizes if r.kernels is None else dataclasses.replace(d.sizes, w=r.kernels.bytes["mlp"])
    flops, nbytes = ops.dense_mlp(head, d.layout, ph, sizes)
    eff = r.efficiency
    c = eff.compute * saturation(ph.tokens, eff.gemm_half_tokens)
    return layer.timed(r, s, flops, nbytes, r.peak_gemm, c, eff.gemm_memory)[0]


def drafter(w: Workload, r: Rates, d: Deployment, s: Shortcuts, tokens: torch.Tensor, keys: torch.Tensor) -> Drafter:
    """One draft step on ``tokens`` decoding sequences per replica-microbatch (``keys``: the keys their
    queries read in the target, summed), without its attention cores."""
    spec = w.speculation
    zero = torch.zeros((), dtype=tokens.dtype, device=tokens.device)
    rest = zero
    if "mtp" in spec.methods or "eagle" in spec.methods:
        ph = ops.Phase(tokens=tokens, pairs=keys, kv_read=keys, sequences=tokens, absorbed=True)
        per_op = layer.phase_ops(w, r, d, s, ph)
        coll = collectives.phase_comm(w, r, d, s, tokens)
        ends = per_op["embed"][2] + per_op["lm_head"][2] + _projection_time(w, r, s, d.sizes, tokens)
        if "mtp" in spec.methods:
            t_mtp = _pick(w.model, *stages.layer_times(s, per_op, coll)) + ends
            rest = rest + torch.where(spec.method == MTP, t_mtp, zero)
        if "eagle" in spec.methods:
            attention = left_sum(per_op[k][2] for k in ("norm", "qkv", "out_proj"))
            act = tokens * w.model.d_model * d.sizes.a
            reduce = collectives.exposed(s, 2 * collectives.all_reduce(r, act, d.layout.tp))
            t_eagle = attention + _eagle_mlp_time(w, r, d, s, ph) + reduce + ends
            rest = rest + torch.where(spec.method == EAGLE, t_eagle, zero)
    if spec.draft is not None:
        rest = rest + torch.where(spec.method == DRAFT, _draft_model_rest(w, r, d, tokens), zero)
    return Drafter(rest=rest)


def _draft_view(w: Workload, d: Deployment) -> tuple[Workload, Deployment]:
    spec = w.speculation
    wd = dataclasses.replace(w, model=spec.draft, model_exact=spec.draft, imbalance=None, speculation=None)
    dd = dataclasses.replace(d, layout=spec.draft_layout, mix=spec.draft_mix)
    return wd, dd


def _draft_model_rest(w: Workload, r: Rates, d: Deployment, tokens: torch.Tensor) -> torch.Tensor:
    """The draft model's decode step on ``tokens`` sequences without its attention cores: its layers'
    other ops and collectives, its embedding and LM head (one stage: no hops)."""
    wd, dd = _draft_view(w, d)
    cuts = w.speculation.draft_cuts
    zero = tokens.new_zeros(())
    ph = ops.Phase(tokens=tokens, pairs=zero, kv_read=zero, sequences=tokens, absorbed=True)
    per_op = layer.phase_ops(wd, r, dd, cuts, ph)
    coll = collectives.phase_comm(wd, r, dd, cuts, tokens)
    return stages.without_attention(wd, dd, cuts, per_op, coll).total


def draft_time(
    w: Workload,
    r: Rates,
    d: Deployment,
    s: Shortcuts,
    dr: Drafter,
    tokens: torch.Tensor,
    keys: torch.Tensor,
    context: torch.Tensor,
) -> torch.Tensor:
    """Seconds of one draft step at a context: ``dr.rest`` plus the attention cores, the target's over
    ``keys`` (mtp, eagle: one layer) or the draft model's over ``context`` (every layer of it)."""
    spec = w.speculation
    t = dr.rest
    if "mtp" in spec.methods or "eagle" in spec.methods:
        ph = ops.Phase(tokens=tokens, pairs=keys, kv_read=keys, sequences=tokens, absorbed=True)
        core = layer.attention_op(w, r, d, s, (ph,))[2]
        t = t + torch.where((spec.method == MTP) | (spec.method == EAGLE), core, torch.zeros_like(core))
    if spec.draft is not None:
        wd, dd = _draft_view(w, d)
        m = spec.draft
        draft_keys = tokens * mean_decode_keys(m, context) / dd.layout.cp
        ph = ops.Phase(tokens=tokens, pairs=draft_keys, kv_read=draft_keys, sequences=tokens, absorbed=True)
        core = layer.attention_op(wd, r, dd, spec.draft_cuts, (ph,))[2]
        t = t + torch.where(spec.method == DRAFT, m.num_layers * core, torch.zeros_like(core))
    return t
