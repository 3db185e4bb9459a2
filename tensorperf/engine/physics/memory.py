"""Memory per GPU: weights, KV cache, activations/workspace; fit and max batch (docs/model.md §3.11, §8.2).

Weights are counted on the worst pipeline stage. The KV cache is allocated for the whole request
(L_max = S + T_out, §8.19). Activations: inference keeps none for a backward pass; the workspace
is sized for one prefill step of at most ACTIVATION_TOKENS tokens (the engines' token budget per
iteration: vLLM max_num_batched_tokens and TensorRT-LLM max_num_tokens both default to 8192).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch

from tensorperf.engine.physics.layout import Layout, kv_elements_per_rank
from tensorperf.engine.physics.ops import out_proj_weights, qkv_weights
from tensorperf.engine.physics.pipeline import StageMix

if TYPE_CHECKING:
    from tensorperf.catalog.specs import ModelSpec

ACTIVATION_TOKENS = 8192
MEMORY_UTILIZATION = 0.9  # usable fraction of HBM (vLLM gpu_memory_utilization default; the ideal stack's)
ACTIVATION_WIDTHS = 4  # hidden-size buffers live at once (residual, norm out, attention out, MLP out)


def attention_weights_per_rank(m: ModelSpec, lay: Layout) -> torch.Tensor:
    """Attention weights held by one TP rank (elements): its QKV and output projections (physics.ops)."""
    return qkv_weights(m, lay) + out_proj_weights(m, lay)


def weight_bytes_per_gpu(
    m: ModelSpec, lay: Layout, mix: StageMix, b_w: torch.Tensor | Mapping[str, torch.Tensor]
) -> torch.Tensor:
    """Worst candidate stage's resident weights (bytes). ``b_w``: bytes per weight, one for every
    tensor group or a mapping group -> bytes (attention, mlp, experts, embeddings; the norms and the
    router count with attention, shared experts with the MLP: docs/model.md §3.13)."""
    if isinstance(b_w, Mapping):
        return _grouped_weight_bytes(m, lay, mix, b_w)
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


def _grouped_weight_bytes(m: ModelSpec, lay: Layout, mix: StageMix, b: Mapping[str, torch.Tensor]) -> torch.Tensor:
    common = (attention_weights_per_rank(m, lay) + m.norm_params_per_layer) * b["attention"]
    dense = common + m.dense_mlp_params / lay.tp * b["mlp"]
    moe = (
        common
        + m.num_experts * m.expert_params / lay.stage_gpus * b["experts"]
        + m.num_shared_experts * m.expert_params / lay.tp * b["mlp"]
        + m.router_params * (m.num_experts > 1) * b["attention"]
    )
    table = m.vocab_size * m.d_model / lay.tp * b["embeddings"]
    head = table * (1 - m.tie_embeddings * (lay.pp == 1))
    u = lambda t: t.unsqueeze(-1)  # noqa: E731
    per_stage = mix.dense * u(dense) + mix.moe * u(moe) + mix.first * u(table) + mix.last * u(head)
    return per_stage.amax(dim=-1)


def model_weight_bytes(m: ModelSpec, b: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Bytes of every weight of the model, each tensor group in its own format (§3.13)."""
    moe_layers, dense_layers = m.num_moe_layers, m.num_layers - m.num_moe_layers
    return (
        m.num_layers * (m.attention_params + m.norm_params_per_layer) * b["attention"]
        + dense_layers * m.dense_mlp_params * b["mlp"]
        + moe_layers * (m.num_experts * m.expert_params * b["experts"] + m.router_params * b["attention"])
        + moe_layers * m.num_shared_experts * m.expert_params * b["mlp"]
        + m.embedding_params * b["embeddings"]
    )


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


def usable_memory(
    hbm_capacity: torch.Tensor,
    weights: torch.Tensor,
    workspace: torch.Tensor,
    fraction: torch.Tensor | float,
    after_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Bytes per GPU the engine fills with the weights, the workspace and its KV-cache pool, by the
    serving stack's rule (docs/model.md §10.4); the KV budget is this less the weights and the
    workspace (:func:`max_batch`). The one place the rule is applied:

    - of the whole HBM (vLLM ``gpu_memory_utilization``, SGLang ``mem_fraction_static``): u·M;
    - after the weights (``after_weights`` true: TensorRT-LLM ``free_gpu_memory_fraction`` of the
      memory free once the weights and the runtime buffers are in place): W + ws + u·(M − W − ws).

    ``after_weights`` None: every point sizes of the whole HBM (u·M exactly, no other term)."""
    whole = fraction * hbm_capacity
    if after_weights is None:
        return whole
    resident = weights + workspace
    return torch.where(after_weights, resident + fraction * (hbm_capacity - resident), whole)


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
