"""FLOPs and HBM bytes of each operation of a decoder layer, per GPU (docs/model.md §3.3-§3.6).

One table serves prefill and decode: a phase is described by the tokens entering the layer (T),
the query-key pairs the attention core computes, and the cached tokens it reads. Counts are per
GPU: attention heads and dense MLPs are split over tp, routed experts over the stage's tp·dp GPUs.

Notation (scaling-book letters): T tokens, d model width, nq/nkv query/KV heads per rank, dh head
width, F MLP width, E experts, k top-k, V vocabulary; b_w/b_kv/b_a bytes of weights, KV cache and
activations. FLOP = 2 per multiply-add. RoPE and residual adds are fused into neighbouring kernels
and not charged separately.

Every count is affine in the phase's tokens (or pairs, cached tokens, sequences), whose tensors span
the grid, while the coefficients depend on a few axes (model, layout, dtype): coefficients are
formed first, in parentheses, so each term costs one grid-sized multiply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from tensorperf.engine.physics.layout import Layout, kv_elements_per_rank, kv_heads_per_rank, query_heads_per_rank

if TYPE_CHECKING:
    from tensorperf.catalog.specs import ModelSpec

NORM_FLOPS_PER_ELEMENT = 4  # RMSNorm: square, reduce, scale, gain (docs/model.md §3.3)
LOGIT_BYTES = 4  # fp32 logits


@dataclass(frozen=True)
class Phase:
    """What enters one layer on one replica-microbatch."""

    tokens: torch.Tensor  # T new tokens (prefill B_mb·S, decode B_mb)
    pairs: torch.Tensor  # query-key pairs of the attention core (summed over sequences)
    kv_read: torch.Tensor  # cached tokens read by the attention core
    sequences: torch.Tensor  # sequences (LM head positions)
    absorbed: bool  # MLA decode runs the absorbed path, prefill the naive one (§8.17)
    spread: torch.Tensor | float = 1.0  # cp ranks holding different tokens (prefill: cp; decode: 1)


@dataclass(frozen=True)
class Bytes:
    w: torch.Tensor
    kv: torch.Tensor
    a: torch.Tensor


def norm(m: ModelSpec, ph: Phase, b: Bytes) -> tuple[torch.Tensor, torch.Tensor]:
    """Pre-attention and pre-MLP norms: ≈4 FLOP per element for RMSNorm, ≈7 for LayerNorm with
    bias (LLMCompass layernorm.py); read and write the activations."""
    T, d = ph.tokens, m.d_model
    n = m.norms_per_layer
    per_element = NORM_FLOPS_PER_ELEMENT + 3 * m.norm_bias
    return T * (n * per_element * d), T * (n * 2 * d * b.a)


def qkv_weights(m: ModelSpec, lay: Layout) -> torch.Tensor:
    """QKV projection weights per TP rank (elements): d·(nq + 2·nkv)·dh (GQA); MLA's down-projections
    (replicated over tp, §8.15) plus its up-projections for the rank's nq heads."""
    d = m.d_model
    nq = query_heads_per_rank(m, lay)
    gqa = d * (nq + 2 * kv_heads_per_rank(m, lay)) * m.head_dim
    qk = m.qk_nope_head_dim + m.qk_rope_head_dim
    r_q, r_kv = m.q_lora_rank, m.kv_lora_rank
    q = torch.where(r_q > 0, d * r_q + r_q * nq * qk, d * nq * qk)
    mla = q + d * (r_kv + m.qk_rope_head_dim) + r_kv * nq * (m.qk_nope_head_dim + m.v_head_dim)
    return torch.where(r_kv > 0, mla, gqa)


def out_proj_weights(m: ModelSpec, lay: Layout) -> torch.Tensor:
    """Attention output projection weights per TP rank (elements): nq·dv·d."""
    dv = torch.where(m.kv_lora_rank > 0, m.v_head_dim, m.head_dim)
    return query_heads_per_rank(m, lay) * dv * m.d_model


def qkv(m: ModelSpec, lay: Layout, ph: Phase, b: Bytes) -> tuple[torch.Tensor, torch.Tensor]:
    """QKV projections: 2·T·(weights per rank) FLOP, i.e. 2·T·d·(nq + 2·nkv)·dh for GQA."""
    T, d = ph.tokens, m.d_model
    nq = query_heads_per_rank(m, lay)
    gqa_out = (nq + 2 * kv_heads_per_rank(m, lay)) * m.head_dim
    mla_out = nq * (m.qk_nope_head_dim + m.qk_rope_head_dim) + m.kv_lora_rank + m.qk_rope_head_dim
    out = torch.where(m.kv_lora_rank > 0, mla_out, gqa_out)
    w = qkv_weights(m, lay)
    return T * (2 * w), w * b.w + T * ((d + out) * b.a)


def attention_core(
    m: ModelSpec, lay: Layout, ph: Phase, b: Bytes, gqa: bool = True, mla: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores and context: 4·nq·dh FLOP per query-key pair (causal pairs, §3.3). MLA naive prefill:
    2·nq·(qk + dv) per pair; absorbed decode: 2·nq·(2·r_kv + d_rope) per key (§3.6).
    Bytes: Q read and O write, the cache read once (flash, ideal) and the new K/V written.

    ``gqa`` / ``mla``: whether the models may use that kind of attention; a kind no model uses is
    not computed (the other is then every model's, exactly)."""
    nq = query_heads_per_rank(m, lay)
    cache = kv_elements_per_rank(m, lay) * b.kv
    out = {}
    if gqa:
        out[False] = (ph.pairs * (4 * nq * m.head_dim), ph.tokens * (2 * nq * m.head_dim * b.a) + ph.kv_read * cache)
    if mla:
        qk = m.qk_nope_head_dim + m.qk_rope_head_dim
        if ph.absorbed:
            mla_flops = ph.pairs * (2 * nq * (2 * m.kv_lora_rank + m.qk_rope_head_dim))
            mla_read = ph.kv_read * cache
            mla_qo = ph.tokens * (nq * (m.kv_lora_rank + m.qk_rope_head_dim + m.kv_lora_rank) * b.a)
        else:
            mla_flops = ph.pairs * (2 * nq * (qk + m.v_head_dim))
            mla_read = ph.kv_read * (nq * (qk + m.v_head_dim) * b.a)  # materialized per-head K and V
            mla_qo = ph.tokens * (nq * (qk + m.v_head_dim) * b.a)
        out[True] = (mla_flops, mla_qo + mla_read)
    if len(out) == 2:
        is_mla = m.kv_lora_rank > 0
        flops, nbytes = (torch.where(is_mla, x, y) for x, y in zip(out[True], out[False]))
    else:
        ((flops, nbytes),) = out.values()
    return flops, nbytes + ph.tokens * cache  # + K/V append


def out_proj(m: ModelSpec, lay: Layout, ph: Phase, b: Bytes) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention output projection: 2·T·nq·dv·d."""
    w = out_proj_weights(m, lay)
    return ph.tokens * (2 * w), w * b.w + ph.tokens * ((w / m.d_model + m.d_model) * b.a)


def dense_mlp(m: ModelSpec, lay: Layout, ph: Phase, b: Bytes) -> tuple[torch.Tensor, torch.Tensor]:
    """Dense MLP: 2·T·d·F·n_mat / tp (n_mat = 3 gated, 2 plain)."""
    f = m.d_ff / lay.tp
    w = m.mlp_matrices * m.d_model * f
    return ph.tokens * (2 * w), w * b.w + ph.tokens * ((2 * m.d_model + m.mlp_matrices * f) * b.a)


def router(m: ModelSpec, ph: Phase, b: Bytes) -> tuple[torch.Tensor, torch.Tensor]:
    """Router GEMM 2·T·d·E (fp32 logits), then the score function (≈5 FLOP per logit) and top-k
    (≈ceil(log2 k) compares per logit), writing k (index, weight) pairs per token (§3.5).
    A model with one expert has no router."""
    on = m.num_experts > 1
    E, k = m.num_experts, m.experts_per_token
    compares = torch.ceil(torch.log2(torch.clamp(k, min=1)))
    flops = ph.tokens * ((2 * m.d_model * E + E * (5 + compares)) * on)
    per_token = m.d_model * b.a + 2 * E * LOGIT_BYTES + k * 2 * LOGIT_BYTES  # in, logits, k (index, weight)
    nbytes = (m.d_model * E * b.w) * on + ph.tokens * (per_token * on)
    return flops, nbytes


def expected_experts(E: torch.Tensor, k: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Distinct experts touched by `tokens` uniformly routed tokens: E·(1 − (1 − k/E)^T) (§3.5)."""
    safe_E = torch.where(E > 0, E, torch.ones_like(E))
    p = k / safe_E
    every = p >= 1  # every expert is chosen by each token
    # (1 − p)^T as exp(T·log1p(−p)): torch's vectorized float64 pow differs from its scalar path in the
    # last bit, so results would depend on a tensor's length (and a grid's chunking); exp and log1p agree
    miss = torch.exp(tokens * torch.log1p(-torch.where(every, torch.zeros_like(p), p)))
    return safe_E * (1 - torch.where(every & (tokens > 0), torch.zeros_like(miss), miss))


def critical_experts(
    E: torch.Tensor, k: torch.Tensor, tokens: torch.Tensor, imbalance: torch.Tensor, ep: torch.Tensor
) -> torch.Tensor:
    """The experts the slowest of the ep ranks reads when ``tokens`` uniformly routed tokens reach
    it λ = ``imbalance`` times as often as the mean, times ep (the scale of expected_experts, which
    routed_experts divides by ep): E·(1 − (1 − k/E)^(λ·T)), at least one expert per rank where a
    pair is routed (min(T·k, 1)·ep; where ep > 1 only, so that ep = 1 keeps expected_experts bit for
    bit). Against Monte-Carlo sampling of the max over ranks of the touched experts: within 6% for
    E = 8..256, k = 2..8, ep = 2..8, up to −16% at 32 ranks and a few pairs per rank (§3.5.1)."""
    first = torch.clamp(tokens * k, max=1) * torch.where(ep > 1, ep, torch.zeros_like(ep))
    return torch.maximum(expected_experts(E, k, tokens * imbalance), first)


def stage_tokens(lay: Layout, ph: Phase) -> torch.Tensor:
    """Tokens entering a layer on the whole stage (every dp replica and cp rank): what routes to experts."""
    return ph.tokens * (lay.dp * ph.spread)


def routed_experts(
    m: ModelSpec,
    lay: Layout,
    ph: Phase,
    b: Bytes,
    touched: torch.Tensor | None = None,
    imbalance: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Routed experts, dropless: 2·T·k·d·F_e·n_mat/tp FLOP per GPU when balanced. Weights read: the
    GPU's E/ep experts (its 1/etp shard) that at least one of the stage's dp·T tokens selects (T per
    GPU times the cp ranks holding different tokens). ``touched``: expected_experts of the stage's
    tokens, when the caller has it already.

    ``imbalance`` λ (§3.5.1): the step waits for the EP rank that receives the most token-expert
    pairs, λ times the mean: its expert GEMMs' FLOP and activations scale by λ, and it reads
    critical_experts (what ``touched`` then holds when given). None: balanced, λ = 1 (the same result
    bit for bit as λ = 1)."""
    E, k, d = m.num_experts, m.experts_per_token, m.d_model
    fe = m.d_ff_expert / lay.etp
    per_expert = m.mlp_matrices * d * fe
    if touched is None:
        tokens = stage_tokens(lay, ph)
        if imbalance is None:
            touched = expected_experts(E, k, tokens)
        else:
            touched = critical_experts(E, k, tokens, imbalance, lay.ep)
    # per token of this GPU: routed = k·dp·spread/ep token-expert pairs land on its ep slot (every
    # pair of its tokens where etp > 1: each expert-TP rank runs them all on its d_e/etp slice). Each
    # pair moves d activations four times, none of them split by etp (§3.5): the expand kernel
    # writes it in expert order, the first GEMM reads it, the second GEMM writes its d-wide output,
    # the finalize kernel reads it back; the token's own row is read once and written once
    # (TensorRT-LLM moe_kernels.cu expandInputRowsKernel / finalizeMoeRoutingKernel); the finalize
    # adds the k outputs, 2·d FLOP per pair. Nothing to permute with a single expert.
    routed = k * (lay.dp * ph.spread) / lay.ep
    multi = (E > 1).to(per_expert.dtype) if torch.is_tensor(E) else float(E > 1)
    pair_bytes = (2 * d * (1 + multi) + m.mlp_matrices * fe) * b.a  # one expert: a dense MLP's in and out
    own = 2 * d * multi * b.a
    if imbalance is None:
        flops = ph.tokens * (routed * (2 * per_expert + 2 * d * multi))
        moved = ph.tokens * (routed * pair_bytes + own)
    else:  # (x·λ + y is x + y, bit for bit, at λ = 1)
        flops = ph.tokens * (routed * (2 * per_expert + 2 * d * multi) * imbalance)
        moved = ph.tokens * ((routed * pair_bytes) * imbalance + own)
    return flops, touched * (per_expert * b.w / lay.ep) + moved


def shared_experts(m: ModelSpec, lay: Layout, ph: Phase, b: Bytes) -> tuple[torch.Tensor, torch.Tensor]:
    """Always-on shared experts, tensor-parallel over tp: 2·T·E_s·d·F_e·n_mat/tp (§8.15)."""
    w = m.num_shared_experts * m.mlp_matrices * m.d_model * m.d_ff_expert / lay.tp
    on = m.num_shared_experts > 0
    return ph.tokens * (2 * w), (w * b.w) * on + ph.tokens * ((2 * m.d_model * b.a) * on)


def embedding(m: ModelSpec, ph: Phase, b: Bytes) -> tuple[torch.Tensor, torch.Tensor]:
    """Embedding lookup: a gather of T rows, no FLOPs."""
    return ph.tokens.new_zeros(()), ph.tokens * (m.d_model * (b.w + b.a))


def lm_head(m: ModelSpec, lay: Layout, ph: Phase, b: Bytes) -> tuple[torch.Tensor, torch.Tensor]:
    """Final norm + vocab-parallel LM head at the last position of each sequence: 2·B·d·V/tp."""
    v = m.vocab_size / lay.tp
    flops = ph.sequences * (2 * m.d_model * v)
    return flops, m.d_model * v * b.w + ph.sequences * (m.d_model * b.a + v * LOGIT_BYTES)
