"""Memory per GPU: weights, KV cache, activations/workspace; fit and max batch (docs/model.md §3.11, §8.2).

Weights are counted on the worst pipeline stage. The KV cache is allocated for the whole request
(L_max = S + T_out, §8.19). Activations: inference keeps none for a backward pass; the workspace
is sized for one prefill step of at most ACTIVATION_TOKENS tokens (the engines' token budget per
iteration: vLLM max_num_batched_tokens and TensorRT-LLM max_num_tokens both default to 8192).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from tensorperf.engine.physics.layout import Layout, kv_elements_per_rank
from tensorperf.engine.physics.ops import out_proj_weights, qkv_weights
from tensorperf.engine.physics.pipeline import StageMix

if TYPE_CHECKING:
    from tensorperf.catalog.specs import ModelSpec

ACTIVATION_TOKENS = 8192
MEMORY_UTILIZATION = 0.9  # usable fraction of HBM (vLLM gpu_memory_utilization default)
ACTIVATION_WIDTHS = 4  # hidden-size buffers live at once (residual, norm out, attention out, MLP out)


def attention_weights_per_rank(m: ModelSpec, lay: Layout) -> torch.Tensor:
    """Attention weights held by one TP rank (elements): its QKV and output projections (physics.ops)."""
    return qkv_weights(m, lay) + out_proj_weights(m, lay)


def weight_bytes_per_gpu(m: ModelSpec, lay: Layout, mix: StageMix, b_w: torch.Tensor) -> torch.Tensor:
    """Worst candidate stage's resident weights (bytes)."""
    common = attention_weights_per_rank(m, lay) + m.norm_params_per_layer
    dense = common + m.dense_mlp_params / lay.tp
    moe = (
        common
        + m.num_experts * m.expert_params / lay.stage_gpus
        + m.num_shared_experts * m.expert_params / lay.tp
        + m.router_params * (m.num_experts > 1)
    )
    table = m.vocab_size * m.d_model / lay.tp
    head = table * (1 - m.tie_embeddings * (lay.pp == 1))  # a tied table is shared on one stage
    u = lambda t: t.unsqueeze(-1)  # noqa: E731
    per_stage = mix.dense * u(dense) + mix.moe * u(moe) + mix.first * u(table) + mix.last * u(head)
    return per_stage.amax(dim=-1) * b_w


def kv_bytes_per_sequence(
    m: ModelSpec, lay: Layout, cached_tokens: torch.Tensor, b_kv: torch.Tensor, layers: torch.Tensor
) -> torch.Tensor:
    """KV-cache bytes one sequence occupies on one GPU of a stage with `layers` layers (1/cp of its
    tokens under context parallelism)."""
    return layers * kv_elements_per_rank(m, lay) * cached_tokens * b_kv / lay.cp


def workspace_bytes_per_gpu(m: ModelSpec, lay: Layout, step_tokens: torch.Tensor, b_a: torch.Tensor) -> torch.Tensor:
    """Hidden buffers and the widest MLP intermediate of one forward step (capped token budget)."""
    tokens = torch.clamp(step_tokens, max=ACTIVATION_TOKENS)
    wide = torch.maximum(m.d_ff, m.experts_per_token * m.d_ff_expert) / lay.tp * (m.mlp_matrices - 1)
    return tokens * (ACTIVATION_WIDTHS * m.d_model + wide) * b_a


def logit_bytes_per_sequence(m: ModelSpec, lay: Layout) -> torch.Tensor:
    """fp32 logits of one sequence's last position on one vocab-parallel rank."""
    return m.vocab_size / lay.tp * 4


def activation_bytes_per_gpu(
    m: ModelSpec, lay: Layout, step_tokens: torch.Tensor, sequences: torch.Tensor, b_a: torch.Tensor
) -> torch.Tensor:
    """Workspace of one forward step plus the logits of its sequences."""
    return workspace_bytes_per_gpu(m, lay, step_tokens, b_a) + sequences * logit_bytes_per_sequence(m, lay)


def max_batch(
    capacity: torch.Tensor,
    weights: torch.Tensor,
    workspace: torch.Tensor,
    per_sequence: torch.Tensor,
    dp: torch.Tensor,
    micro: torch.Tensor | float = 1,
) -> torch.Tensor:
    """Requests in flight that fit: dp · m · floor((u·M − M_w − workspace) / (m · bytes per sequence))
    (§8.2; each GPU holds the B/dp sequences of its replica, a multiple of the m microbatches). Per
    sequence: its KV cache and its logits (counted as if every sequence were in one microbatch)."""
    free = torch.clamp(capacity - weights - workspace, min=0)
    return dp * micro * torch.floor(free / (per_sequence * micro))
