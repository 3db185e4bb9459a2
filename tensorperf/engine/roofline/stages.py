"""Per-op and per-layer times composed into pipeline stages (docs/model.md §3.10, §8.1, §8.9).

A layer's time is the sum of its ops and its exposed collectives (dense or MoE layer); a stage's is
its layers, plus the embedding (first stage), the LM head (last) and the hop to the next stage. The
slowest stage is one of a few candidate stages (physics.pipeline.StageMix).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch

from tensorperf.engine.physics import inplace, pipeline
from tensorperf.engine.roofline.collectives import Collectives
from tensorperf.engine.roofline.per_op import OPS, PerOp, counts, left_sum
from tensorperf.engine.roofline.values import Deployment, Shortcuts, Workload


@dataclass(frozen=True)
class WithoutAttention:
    """One pass through the model (one microbatch, every stage) before its attention core is added:
    the sum over stages and the candidate stages' times of every other op and collective."""

    total: torch.Tensor
    candidates: tuple[torch.Tensor, ...]
    layers: torch.Tensor  # layers of the model (attention runs once per layer)
    stage_layers: tuple[torch.Tensor, ...]  # layers of each candidate stage


def comm_totals(model: Any, coll: Collectives) -> dict[str, torch.Tensor]:
    """Per-pass collective times of each kind (a kind no model of the grid has is absent)."""
    n_moe = model.num_moe_layers
    tp_terms = [n * coll[k] for n, k in ((model.num_layers - n_moe, "dense"), (n_moe, "moe_tp")) if k in coll]
    out = {"tp_comm": left_sum(tp_terms), "pp_comm": coll["hops"]}
    if "moe_ep" in coll:
        out["ep_comm"] = n_moe * coll["moe_ep"]
    return out


def _common(per_op: PerOp) -> torch.Tensor:
    """The ops every layer has besides its attention core: norms, QKV and output projections."""
    return left_sum(per_op[k][2] for k in ("norm", "qkv", "out_proj"))


def _moe_compute(common: torch.Tensor, per_op: PerOp, coll: Collectives) -> torch.Tensor:
    """A MoE layer's ops and tensor-parallel all-reduces, without its attention core and all-to-all."""
    return common + per_op["router"][2] + per_op["shared_experts"][2] + per_op["experts"][2] + coll["moe_tp"]


def layer_times(
    s: Shortcuts,
    per_op: PerOp,
    coll: Collectives,
    t_attn: torch.Tensor | None = None,
    two_batch: tuple[torch.Tensor, PerOp, Collectives, Any] | None = None,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(time of a dense layer, time of a MoE layer), each None where no model has that kind; with
    their attention core ``t_attn`` when given (a layer's every op and exposed collective).
    ``two_batch`` = (where, a half's per-op quantities, a half's collectives, the overlapped compute's
    slowdown), with ``t_attn``: the MoE layer there is max(2·C(T/2), 2·A(T/2)) instead (two-batch
    overlap, overlap.py)."""
    common = _common(per_op)
    t_dense = common + per_op["mlp"][2] + coll["dense"] if s.has_dense else None
    t_moe = _moe_compute(common, per_op, coll) + coll["moe_ep"] if s.has_moe else None
    if t_attn is None:
        return t_dense, t_moe
    t_dense, t_moe = (None if t is None else t + t_attn for t in (t_dense, t_moe))
    if two_batch is not None and t_moe is not None:
        where, h_ops, h_coll, slow = two_batch
        compute = _moe_compute(_common(h_ops), h_ops, h_coll) + h_ops["attn"][2]
        overlapped = 2 * torch.maximum(compute * slow, h_coll["moe_ep"])
        t_moe = torch.where(where > 0, overlapped, t_moe)
    return t_dense, t_moe


def stage_times(
    w: Workload, d: Deployment, per_op: PerOp, coll: Collectives, t_dense: Any, t_moe: Any
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(sum over stages, candidate stages' times) from the per-layer times."""
    m = w.model
    embed, head = per_op["embed"][2], per_op["lm_head"][2]
    candidates = pipeline.candidate_times(d.mix, t_dense, t_moe, embed, head, coll["hop"])
    n_moe = m.num_moe_layers
    total = pipeline.total_time(m.num_layers - n_moe, n_moe, t_dense, t_moe, embed, head, coll["hops"])
    return total, candidates


def without_attention(w: Workload, d: Deployment, s: Shortcuts, per_op: PerOp, coll: Collectives) -> WithoutAttention:
    """A pass to be evaluated at several attention cores (decode's quadrature nodes)."""
    total, candidates = stage_times(w, d, per_op, coll, *layer_times(s, per_op, coll))
    return WithoutAttention(
        total=total,
        candidates=tuple(candidates),
        layers=w.model.num_layers,
        stage_layers=tuple(d.mix.layers[..., i] for i in range(len(candidates))),
    )


def grouped_by_layer_count(p: WithoutAttention, d: Deployment) -> WithoutAttention:
    """The candidates of a pass with leading dense layers (5) grouped by their layer count (2 groups:
    the attention core adds to each group once)."""
    if len(p.candidates) <= 2:
        return p
    grouped, layers = pipeline.by_layer_count(d.mix, list(p.candidates))
    return dataclasses.replace(p, candidates=tuple(grouped), stage_layers=tuple(layers))


def with_attention(p: WithoutAttention, t_attn: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum over stages, slowest stage) once the attention core's per-layer time is added (decode:
    the same pass at each quadrature node's attention)."""
    slowest = None
    for cand, layers in zip(p.candidates, p.stage_layers):  # at most 5 candidate stages
        t = cand + layers * t_attn
        slowest = t if slowest is None else inplace.maximum(slowest, t)
    return p.total + p.layers * t_attn, slowest


def compose(
    w: Workload,
    d: Deployment,
    s: Shortcuts,
    per_op: PerOp,
    coll: Collectives,
    breakdown: bool = False,
    halves: tuple[PerOp, Collectives, Any] | None = None,
) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """Per-op totals over all layers (op axis last; only with ``breakdown``), the sum over stages,
    and the slowest stage, of a pass used once: each layer's time includes its attention core before
    the stages are formed (one addition per kind of layer, not per candidate stage). ``halves``: a
    half micro-batch's per-op quantities and collectives, for the points with two-batch overlap (the
    per-op breakdown stays the ops' own times, before the overlap)."""
    two_batch = None if halves is None else (d.two_batch, *halves)
    layers = layer_times(s, per_op, coll, per_op["attn"][2], two_batch)
    total, candidates = stage_times(w, d, per_op, coll, *layers)
    slowest = None
    for t in candidates:  # at most 5 candidate stages (temporaries of candidate_times)
        slowest = t if slowest is None else inplace.maximum(slowest, t)
    times = None
    if breakdown:
        n = counts(w.model)
        t = {k: n[k] * v[2] for k, v in per_op.items()} | comm_totals(w.model, coll)
        zero = torch.zeros((), dtype=total.dtype, device=total.device)
        times = torch.stack(torch.broadcast_tensors(*(t.get(k, zero) for k in OPS)), dim=-1)
    return times, total, slowest
