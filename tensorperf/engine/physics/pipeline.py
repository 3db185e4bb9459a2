"""Pipeline stages and schedules (docs/model.md §3.10, §8.1, §8.9).

Stages are contiguous and uneven: the first (n_L mod pp) stages get ceil(n_L/pp) layers, the rest
floor. Stage times are linear in (dense layers, MoE layers, embedding, LM head, outgoing hop), so
the slowest stage is one of a few candidates: the first stage (embedding, leading dense layers),
the second, the last stage holding leading dense layers, the first stage wholly past them (most MoE
layers), and the last (LM head). Candidates form a trailing axis of size 5. Without leading dense layers the
first and the last stage suffice: every other stage holds no more dense or MoE layers than the first
(the first (n_L mod pp) stages hold the extra layer), no embedding, and the same hop, so its time can
never exceed the first stage's (sums of non-negative terms round monotonically, so not even by
rounding) — two candidates instead of five, the same maximum bit for bit.

Schedules (GPipe, forward only), with m microbatches and stage times t_s (hop included):
  prefill: last request's first token at  sum_s t_s + (m − 1)·max_s t_s;  mean over microbatches
           sum_s t_s + (m − 1)/2 · max_s t_s
  decode:  TPOT = max(sum_s t_s, m · max_s t_s)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from tensorperf.engine.physics import inplace

if TYPE_CHECKING:
    from tensorperf.catalog.specs import ModelSpec


@dataclass(frozen=True)
class StageMix:
    """Layer counts of the candidate stages, trailing axis of size 5."""

    dense: torch.Tensor
    moe: torch.Tensor
    first: torch.Tensor  # 1 for the first stage (embedding)
    last: torch.Tensor  # 1 for the last stage (LM head)
    hop: torch.Tensor  # 1 if the stage sends activations on
    layers: torch.Tensor


def _start(s: torch.Tensor, q: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    return s * q + torch.minimum(s, r)


def stage_mix(m: ModelSpec, pp: torch.Tensor, lead_dense: bool = True) -> StageMix:
    """The candidate stages' layer counts; ``lead_dense=False`` (no model of the grid has leading dense
    layers) keeps only the first and the last stage (see the module note)."""
    n = m.num_layers.unsqueeze(-1)
    pp = pp.unsqueeze(-1)
    q = torch.floor(n / pp)
    r = n - q * pp
    lead = m.first_dense_layers.unsqueeze(-1)
    big = q + 1
    # first stage whose first layer is at or past the leading dense layers
    s_moe = torch.where(
        lead <= r * big, torch.ceil(lead / big), r + torch.ceil((lead - r * big) / torch.clamp(q, min=1))
    )
    last = pp - 1
    # (the stage before s_moe holds the last leading dense layers and possibly more layers)
    if lead_dense:
        s = torch.cat(
            [
                torch.zeros_like(s_moe),
                torch.ones_like(s_moe),
                torch.clamp(s_moe - 1, min=0),
                s_moe,
                last.expand_as(s_moe),
            ],
            dim=-1,
        )
    else:
        s = torch.cat([torch.zeros_like(s_moe), last.expand_as(s_moe)], dim=-1)
    s = torch.minimum(s, last)
    layers = q + (s < r)
    start = _start(s, q, r)
    dense_lead = torch.clamp(lead - start, min=0)
    dense_lead = torch.minimum(dense_lead, layers)
    is_moe = (m.num_experts > 0).unsqueeze(-1)
    moe = (layers - dense_lead) / m.moe_layer_freq.unsqueeze(-1) * is_moe
    return StageMix(
        dense=layers - moe, moe=moe, first=(s == 0) * 1.0, last=(s == last) * 1.0, hop=(s < last) * 1.0, layers=layers
    )


def candidate_times(
    mix: StageMix,
    t_dense: torch.Tensor | None,
    t_moe: torch.Tensor | None,
    t_embed: torch.Tensor,
    t_head: torch.Tensor,
    t_hop: torch.Tensor,
) -> list[torch.Tensor]:
    """The candidate stages' times as separate tensors (no trailing axis, so a grid-sized
    intermediate per candidate rather than one candidates times larger). ``t_dense`` or ``t_moe`` is
    None when no model of the grid has layers of that kind (their term is an exact zero)."""
    out = []
    for i in range(mix.dense.shape[-1]):  # at most 5 candidates, not grid points
        dense, moe, first, last, hop = (c[..., i] for c in (mix.dense, mix.moe, mix.first, mix.last, mix.hop))
        ends = first * t_embed + last * t_head + hop * t_hop  # smaller shapes: summed first
        out.append(sum((c * t for c, t in ((dense, t_dense), (moe, t_moe)) if t is not None), ends))
    return out


def by_layer_count(mix: StageMix, candidates: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The candidate stages' times grouped by layer count, for adding a per-layer time ``a`` later
    (decode's attention at each quadrature node): (each group's slowest, its layer count).

    A stage holds q or q + 1 layers and the last always q, so there are at most two groups, and
    max_i(t_i + l_i·a) = max over groups of (max of the group's t_i) + l·a, the same bits (rounding is
    monotone): two additions per ``a`` instead of one per candidate. An empty group is −inf."""
    q = mix.layers.amin(dim=-1)
    more = mix.layers > q.unsqueeze(-1)
    none = torch.full((), -math.inf, dtype=candidates[0].dtype, device=candidates[0].device)
    top = rest = None
    for i, t in enumerate(candidates):  # at most 5 candidates, not grid points
        upper, lower = torch.where(more[..., i], t, none), torch.where(more[..., i], none, t)
        top = upper if top is None else torch.maximum(top, upper)
        rest = lower if rest is None else torch.maximum(rest, lower)
    return [top, rest], [q + 1, q]


def total_time(
    n_dense: torch.Tensor,
    n_moe: torch.Tensor,
    t_dense: torch.Tensor | None,
    t_moe: torch.Tensor | None,
    t_embed: torch.Tensor,
    t_head: torch.Tensor,
    t_hops: torch.Tensor,
) -> torch.Tensor:
    """The sum over stages of one pass (a microbatch through every stage): each layer once, the
    embedding and the LM head once, and every hop (``t_hops``, their sum). The form of a candidate
    stage's time with the whole model's counts: a few grid-sized operations, not one per op kind."""
    ends = t_embed + t_head + t_hops  # smaller shapes: summed first
    return sum((c * t for c, t in ((n_dense, t_dense), (n_moe, t_moe)) if t is not None), ends)


def prefill_times(total: torch.Tensor, slowest: torch.Tensor, micro: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean TTFT over microbatches, last microbatch's TTFT). The mean adds half the last one's wait:
    halving is exact, so total + ((m − 1)/2)·t and total + ½·((m − 1)·t) are the same number."""
    wait = (micro - 1) * slowest
    return torch.add(total, wait, alpha=0.5), total + wait


def chunked_prefill_times(
    total: torch.Tensor, slowest: torch.Tensor, micro: torch.Tensor, fill: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Prefill in chunks, stage times summed over the chunks: the m microbatches' chunk passes follow
    one another through the slowest stage, then the last chunk drains through the other stages
    (``fill``: its sum over stages minus its slowest stage). (mean TTFT, last TTFT)."""
    return (micro + 1) / 2 * slowest + fill, micro * slowest + fill


def decode_step(total: torch.Tensor, slowest: torch.Tensor, micro: torch.Tensor) -> torch.Tensor:
    """TPOT: every sequence passes every stage once per token; stages idle when m < pp."""
    return inplace.maximum(micro * slowest, total)  # (max is symmetric: into the product, our temporary)


def bubble_fraction(pp: torch.Tensor | float, micro: torch.Tensor | float) -> torch.Tensor | float:
    """GPipe bubble (pp − 1)/(m + pp − 1) (Huang et al. 2019)."""
    return (pp - 1) / (micro + pp - 1)
