"""Memory per GPU that does not depend on the batch (weights, KV bytes per sequence, workspace,
usable capacity), and the batch that fits next to it (batch='max') (docs/model.md §3.11, §8.2)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from tensorperf.engine.grid import Grid
from tensorperf.engine.physics import ops, pipeline
from tensorperf.engine.physics.attention import mean_cached_tokens
from tensorperf.engine.physics.layout import Layout
from tensorperf.engine.physics.memory import (
    ACTIVATION_TOKENS,
    kv_bytes_per_sequence,
    logit_bytes_per_sequence,
    max_batch,
    usable_memory,
    weight_bytes_per_gpu,
    workspace_bytes_per_gpu,
)


@dataclass(frozen=True)
class Resident:
    """Memory per GPU that does not depend on the batch, on a layout's shell (its degrees)."""

    mix: pipeline.StageMix
    weights: torch.Tensor
    kv_per_sequence: torch.Tensor
    per_sequence: torch.Tensor
    workspace_cap: torch.Tensor
    capacity: torch.Tensor


def resident_memory(
    grid: Grid,
    fields: Mapping[str, Any],
    model: Any,
    hardware: Any,
    shell: Layout,
    sizes: ops.Bytes,
    prompt: torch.Tensor,
    context: torch.Tensor,
    group_bytes: Mapping[str, torch.Tensor] | None = None,
    drafter: Any = None,
) -> Resident:
    """Weights, KV bytes per sequence at the longest context, workspace and usable capacity.
    ``group_bytes``: bytes per weight of each tensor group (None: every group in weight_dtype).
    ``drafter``: what speculative decoding's drafter adds (speculative.DrafterMemory; None: nothing)."""
    lead_dense = any(s.first_dense_layers > 0 for s in grid.values["model"]) or any(
        k.startswith("first_dense_layers") for k in (*grid.values, *fields)
    )
    mix = pipeline.stage_mix(model, shell.pp, lead_dense)
    weights = weight_bytes_per_gpu(model, shell, mix, sizes.w if group_bytes is None else group_bytes)
    kv_seq = kv_bytes_per_sequence(model, shell, mean_cached_tokens(model, context), sizes.kv, mix.layers.amax(dim=-1))
    logits = logit_bytes_per_sequence(model, shell)
    if drafter is not None:  # its weights and KV cache, and the verification's logits (docs/model.md §3.14)
        weights, kv_seq = weights + drafter.weights, kv_seq + drafter.kv_per_sequence
        logits = logits + drafter.logits_per_sequence
    workspace_cap = workspace_bytes_per_gpu(model, shell, torch.full_like(prompt, ACTIVATION_TOKENS), sizes.a)
    capacity = usable_memory(hardware.hbm_capacity, weights, workspace_cap, *kv_cache_rule(grid))
    return Resident(
        mix=mix,
        weights=weights,
        kv_per_sequence=kv_seq,
        per_sequence=kv_seq + logits,
        workspace_cap=workspace_cap,
        capacity=capacity,
    )


def kv_cache_rule(grid: Grid) -> tuple[torch.Tensor | float, torch.Tensor | None]:
    """(fraction, after the weights) of each point's serving stack's KV-cache sizing (docs/model.md
    §10.4): the fraction as a number where every stack of the grid shares it (the ideal stack's 0.9
    of the whole HBM: the same bits as before stacks had one), and None for the rule where no stack
    sizes after the weights."""
    specs = grid.values["stack"]
    fractions = {s.kv_cache_fraction for s in specs}
    after = any(s.kv_cache_after_weights for s in specs)
    view = grid.spec("stack") if after or len(fractions) > 1 else None
    fraction = next(iter(fractions)) if len(fractions) == 1 else view.kv_cache_fraction
    return fraction, (view.kv_cache_after_weights > 0 if after else None)


def batch(grid: Grid, resident: Resident, dp: torch.Tensor, micro: torch.Tensor | None) -> torch.Tensor:
    """Requests in flight (float64): the ``batch`` input, or for batch='max' the largest batch whose
    KV cache and logits fit next to the weights and a full workspace (capped by ``max_num_seqs``, kept
    a multiple of dp). ``dp``: float64 degrees; ``micro``: the given microbatches, if any."""
    if grid.values["batch"] != ("max",):
        return grid.axis("batch", torch.float64)
    f64 = torch.float64
    fits = max_batch(
        resident.capacity.to(f64),
        resident.weights.to(f64),
        resident.workspace_cap.to(f64),
        resident.per_sequence.to(f64),
        dp,
        micro if micro is not None else 1,
    )
    if "max_num_seqs" in grid.values:  # the scheduler's limit, kept a multiple of dp
        cap = grid.axis("max_num_seqs", f64)
        step = dp * (micro if micro is not None else 1)
        fits = torch.minimum(fits, torch.clamp(torch.floor(cap / step), min=1) * step)
    return torch.clamp(fits, min=1) * torch.ones_like(dp)
