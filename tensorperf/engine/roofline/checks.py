"""Feasibility decisions, on the exact (float64) counts: the model is consistent, the layout divides
it and places on the hardware, the batch splits into replicas and microbatches, the weight format
has a peak, and the memory fits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

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


@dataclass(frozen=True)
class Rule:
    """One rule of :func:`feasibility`, spelled out: its reason bit, its name, where it holds, and the
    quantities it compares (tensors broadcastable to the grid), for messages that give the numbers."""

    reason: Reason
    name: str
    ok: torch.Tensor
    values: Mapping[str, torch.Tensor]


def _rule(reason: Reason, name: str, ok: torch.Tensor, **values: Any) -> Rule:
    return Rule(reason, name, ok, MappingProxyType(values))


def _consistency_rules(w: Workload, r: Rates) -> list[Rule]:
    """The model's and the hardware's cross-field rules (what-if inputs may break them together)."""
    m, op = w.model_exact, r.operating
    E, k = m.num_experts, m.experts_per_token
    I = Reason.INCONSISTENT  # noqa: E741
    return [
        _rule(I, "kv_heads_divide_heads", _divides(m.num_heads, m.num_kv_heads), heads=m.num_heads, kv=m.num_kv_heads),
        _rule(I, "experts_per_token", (E == 0) | ((k >= 1) & (k <= E)), top_k=k, experts=E),
        _rule(I, "d_ff_expert", (E == 0) | (m.d_ff_expert > 0), d_ff_expert=m.d_ff_expert, experts=E),
        _rule(
            I,
            "first_dense_layers",
            m.first_dense_layers <= m.num_layers,
            first=m.first_dense_layers,
            layers=m.num_layers,
        ),
        _rule(I, "dense_d_ff", (m.num_dense_layers == 0) | (m.d_ff > 0), d_ff=m.d_ff, dense=m.num_dense_layers),
        _rule(I, "idle_power", op.idle_power <= op.board_power, idle=op.idle_power, board=op.board_power),
        _rule(I, "pue", op.pue >= 1, pue=op.pue),
        _rule(I, "hbm_power_fraction", op.hbm_power_fraction <= 1, fraction=op.hbm_power_fraction),
        _rule(I, "host_power_per_gpu", op.host_power_per_gpu >= 0, power=op.host_power_per_gpu),
        _rule(I, "price_per_gpu_hour", op.price_per_gpu_hour >= 0, price=op.price_per_gpu_hour),
    ]


def _layout_rules(w: Workload, d: Deployment) -> list[Rule]:
    """How the layout splits the model (heads, widths, experts, layers) and the batch."""
    m, lay = w.model_exact, d.layout_exact
    moe = m.num_experts > 0
    D = Reason.DIVISIBILITY
    tp, ep, stage = lay.tp, lay.ep, lay.stage_gpus
    return [
        _rule(D, "heads_over_tp", _divides(m.num_heads, tp), heads=m.num_heads, tp=tp),
        _rule(
            D, "kv_heads_over_tp", _divides(m.num_kv_heads, tp) | _divides(tp, m.num_kv_heads), kv=m.num_kv_heads, tp=tp
        ),
        _rule(
            D,
            "d_ff_over_tp",
            _divides(m.d_ff, tp) | (m.num_dense_layers == 0),
            d_ff=m.d_ff,
            tp=tp,
            dense=m.num_dense_layers,
        ),
        _rule(D, "experts_over_ep", ~moe | _divides(m.num_experts, ep), experts=m.num_experts, ep=ep),
        _rule(D, "ep_over_stage", ~moe | _divides(stage, ep), stage=stage, ep=ep, tp=tp, cp=lay.cp, dp=lay.dp),
        _rule(
            D, "d_ff_expert_over_etp", ~moe | _divides(m.d_ff_expert, lay.etp), d_ff_expert=m.d_ff_expert, etp=lay.etp
        ),
        _rule(D, "ep_without_experts", moe | (ep == 1), ep=ep),
        _rule(Reason.PIPELINE, "layers_over_pp", lay.pp <= m.num_layers, pp=lay.pp, layers=m.num_layers),
        _rule(Reason.BATCH, "batch_over_dp", _divides(w.batch_exact, lay.dp), batch=w.batch_exact, dp=lay.dp),
        _rule(
            Reason.BATCH,
            "replica_batch_over_microbatches",
            _divides(d.replica_batch_exact, lay.micro),
            replica_batch=d.replica_batch_exact,
            microbatches=lay.micro,
            batch=w.batch_exact,
            dp=lay.dp,
        ),
    ]


def _path_rules(w: Workload, r: Rates) -> list[Rule]:
    """Some GEMM kernel path runs the weights: one rule for the weight format's native math, or,
    with kernel paths (a recipe, a stack's weight-only or W4A8 kernels), one per tensor group the
    model has (mirrors :func:`tensorperf.engine.roofline.kernels.supported`)."""
    if r.kernels is None:
        return [_rule(Reason.DTYPE, "weights_path", r.gemm_supported)]
    m = w.model
    used = {
        "attention": True,
        "embeddings": True,
        "mlp": (m.num_layers - m.num_moe_layers > 0) | (m.num_shared_experts > 0),
        "experts": m.num_experts > 0,
    }
    out = []
    for group, paths in r.kernels.paths.items():
        some = paths[0].available
        for p in paths[1:]:
            some = some | p.available
        out.append(_rule(Reason.DTYPE, f"{group}_path", some | ~torch.as_tensor(used[group])))
    return out


def _drafter_rules(w: Workload) -> list[Rule]:
    """speculative="mtp" drafts with the model's own MTP modules (docs/model.md §3.14)."""
    spec = getattr(w, "speculation", None)
    if spec is None or "mtp" not in spec.methods:
        return []
    from tensorperf.engine.physics.speculative import METHOD_CODE  # (only where some point speculates)

    ok = (spec.method != METHOD_CODE["mtp"]) | (w.model.num_mtp_layers > 0)
    return [_rule(Reason.NO_DRAFTER, "mtp_layers", ok, mtp_layers=w.model.num_mtp_layers)]


def rules(
    w: Workload,
    r: Rates,
    d: Deployment,
    needed: torch.Tensor | None = None,
    world_size: torch.Tensor | None = None,
) -> tuple[Rule, ...]:
    """The rules behind :func:`feasibility`, one per quantity compared: a reason's check is the AND of
    its rules, bit for bit (tests/test_reasons.py). ``needed`` (bytes per GPU) adds the memory rule
    against the usable capacity, ``world_size`` the world-size rule, as in :func:`feasibility`; the
    MTP drafter rule is the engine's (``tensorperf.engine.roofline``) where some point speculates."""
    lay = d.layout_exact
    out = [*_consistency_rules(w, r), *_layout_rules(w, d), *_path_rules(w, r), *_drafter_rules(w)]
    G = r.tiers.domain  # GPUs per scale-up domain: a TP group fits one domain or spans whole domains
    out.append(_rule(Reason.PLACEMENT, "tp_in_domain", (lay.tp <= G) | _divides(lay.tp, G), tp=lay.tp, domain=G))
    if needed is not None:
        out.append(_rule(Reason.MEMORY, "memory", needed <= d.capacity, needed=needed, usable=d.capacity))
    if world_size is not None:
        out.append(
            _rule(Reason.WORLD_SIZE, "world_size", lay.num_gpus == world_size, gpus=lay.num_gpus, world=world_size)
        )
    return tuple(out)
