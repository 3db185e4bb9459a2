"""Speculative decoding: tokens per step and what the drafter adds (docs/model.md §3.14).

Per decode step of the target, a drafter proposes k tokens in k sequential steps, then the target
verifies the k + 1 positions of every sequence in one forward pass (Leviathan et al. 2023, section 3). The
drafter is the model's own MTP modules (``mtp``: DeepSeek-V3 report, section 2.2, one Transformer block that
shares the embedding and the output head, with a projection M of [h; Emb(t)] from 2d to d), a
one-layer head on the target's features (``eagle``: Li et al. 2024, EAGLE: a decoder layer after an
fc of [f; e] from 2d to d, sharing the target's embedding and LM head) or a whole small model
(``draft``: its own weights and KV cache).

With α the probability that a draft token is accepted given that the one before it was, a sequence
gains E = 1 + α + ... + α^k = (1 − α^(k+1)) / (1 − α) tokens per step (Leviathan et al. 2023,
eq. 1, with their γ = k), and a step takes k draft steps plus one verification:

    TPOT = (k · t_draft + t_verify) / E.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

import torch

from tensorperf.engine.physics.layout import Layout, kv_elements_per_rank
from tensorperf.engine.physics.memory import attention_weights_per_rank

if TYPE_CHECKING:
    from tensorperf.catalog.specs import ModelSpec

SPECULATIVE_METHODS = ("none", "mtp", "eagle", "draft")
METHOD_CODE: Mapping[str, int] = MappingProxyType({name: i for i, name in enumerate(SPECULATIVE_METHODS)})
NORMS_PER_MODULE = 3  # MTP: RMSNorms of h and of Emb(t), and the shared head's (DeepSeek-V3 report, section 2.2)


def tokens_per_step(
    acceptance: torch.Tensor,
    k: torch.Tensor,
    k_max: int,
    reuse: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """E = Σ_{i=0}^{k} α^i, the expected tokens a sequence gains per step (Leviathan et al. 2023, eq. 1:
    (1 − α^(k+1)) / (1 − α)). Summed term by term up to the grid's largest k (``k_max``): exactly 1
    where k = 0, exactly k + 1 where α = 1, and its derivative in α is finite everywhere (no pow at 0).
    ``reuse`` = (ρ, L): position i > L is accepted with α·ρ^(i − L) given the one before was (an MTP
    module reused beyond its trained depth, ModelSpec.mtp_reuse_decay): E = 1 + Σ_j Π_{i<=j} α_i."""
    total = torch.ones_like(acceptance * k)
    term = torch.ones_like(acceptance)
    for i in range(1, k_max + 1):  # draft positions, not grid points (k <= 64)
        step = acceptance
        if reuse is not None:
            decay, trained = reuse
            step = acceptance * decay ** torch.clamp(i - trained, min=0)
        term = term * step
        total = total + torch.where(k >= i, term, torch.zeros_like(term))
    return total


def constant_acceptance(tokens: float, k: int) -> float:
    """The α that is the same at every position and gains ``tokens`` per step with k draft tokens: the
    root of (1 − α^(k+1))/(1 − α) = tokens in [0, 1] (bisection; E is increasing in α)."""
    low, high = 0.0, 1.0
    for _ in range(60):  # bisection steps, not grid points
        mid = (low + high) / 2
        gain = sum(mid**i for i in range(k + 1))
        low, high = (mid, high) if gain < tokens else (low, mid)
    return (low + high) / 2


def step_time(verify: torch.Tensor, draft: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """One speculative step: k sequential draft steps, then the verification pass (verify + 0 where k = 0:
    the plain decode step, bit for bit)."""
    return verify + k * draft


def projection(m: ModelSpec, tokens: torch.Tensor, b_w: torch.Tensor, b_a: torch.Tensor) -> tuple:
    """(FLOP, bytes) of the drafter's input projection of [hidden; embedding] (2d) to d, replicated on
    every TP rank (MTP's M, DeepSeek-V3 report eq. 21; EAGLE's fc): 2·T·2d·d FLOP, its 2d² weights
    read once and 3d activations per token."""
    d = m.d_model
    return tokens * (4 * d * d), (2 * d * d) * b_w + tokens * (3 * d * b_a)


def eagle_mlp_width(m: ModelSpec) -> torch.Tensor:
    """The EAGLE head's dense MLP width: the target's dense MLP (d_ff), or its expert width where it has
    no dense MLP (EAGLE's head is one Llama-style decoder layer of the target's width)."""
    return torch.where(m.d_ff > 0, m.d_ff, m.d_ff_expert)


def _bytes_of(b_w: torch.Tensor | Mapping[str, torch.Tensor], group: str) -> torch.Tensor:
    return b_w[group] if isinstance(b_w, Mapping) else b_w


def mtp_weight_bytes(m: ModelSpec, lay: Layout, b_w: torch.Tensor | Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Bytes per GPU of the model's num_mtp_layers MTP modules, each one decoder layer of the model's
    last kind (a MoE layer where the model has them) sharded like that layer, its 2d·d projection and
    NORMS_PER_MODULE norms on every rank; the embedding and the LM head are the model's own. DeepSeek-V3:
    11,610,068,224 parameters per module (the 685B − 671B of its release)."""
    attention = (attention_weights_per_rank(m, lay) + m.norm_params_per_layer) * _bytes_of(b_w, "attention")
    moe = (
        m.num_experts * m.expert_params / lay.stage_gpus * _bytes_of(b_w, "experts")
        + m.num_shared_experts * m.expert_params / lay.tp * _bytes_of(b_w, "mlp")
        + m.router_params * (m.num_experts > 1) * _bytes_of(b_w, "attention")
    )
    dense = m.dense_mlp_params / lay.tp * _bytes_of(b_w, "mlp")
    extra = (2 * m.d_model * m.d_model + NORMS_PER_MODULE * m.d_model) * _bytes_of(b_w, "attention")
    layer = attention + torch.where(m.num_moe_layers > 0, moe, dense) + extra
    return m.num_mtp_layers * layer


def eagle_weight_bytes(m: ModelSpec, lay: Layout, b_w: torch.Tensor | Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Bytes per GPU of an EAGLE head: one decoder layer (the target's attention, a dense MLP of
    :func:`eagle_mlp_width`, tensor-parallel) and its 2d·d fc; the embedding and LM head are shared."""
    attention = (attention_weights_per_rank(m, lay) + m.norm_params_per_layer) * _bytes_of(b_w, "attention")
    mlp = m.mlp_matrices * m.d_model * eagle_mlp_width(m) / lay.tp * _bytes_of(b_w, "mlp")
    return attention + mlp + (2 * m.d_model * m.d_model) * _bytes_of(b_w, "attention")


def drafter_kv_bytes_per_sequence(
    m: ModelSpec, lay: Layout, layers: torch.Tensor, cached_tokens: torch.Tensor, b_kv: torch.Tensor
) -> torch.Tensor:
    """KV-cache bytes per sequence per GPU of a drafter of ``layers`` layers of the model's attention
    (MTP modules, an EAGLE head): each caches every token of the context, 1/cp of them per rank."""
    return layers * kv_elements_per_rank(m, lay) * cached_tokens * b_kv / lay.cp
