"""Memory per GPU at the batch: resident weights, the KV cache of the replica's requests at the end
of generation, and the activations of one step (docs/model.md §3.11, §8.2)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tensorperf.engine.physics.attention import mean_cached_tokens
from tensorperf.engine.physics.memory import activation_bytes_per_gpu, model_weight_bytes
from tensorperf.engine.roofline.values import Deployment, Workload


@dataclass(frozen=True)
class Footprint:
    kv: torch.Tensor  # KV-cache bytes per GPU
    activations: torch.Tensor  # activation and workspace bytes per GPU
    total: torch.Tensor  # weights + KV cache + activations per GPU (worst stage)
    min_gpus: torch.Tensor  # GPUs whose capacity holds the weights and KV cache (a count: float64)


def footprint(w: Workload, d: Deployment) -> Footprint:
    """Per-GPU memory of the deployment at the workload's batch."""
    m, lay, b, S, bmb = w.model, d.layout, d.sizes, w.prompt, d.microbatch
    f64 = torch.float64
    kv = d.kv_per_sequence * d.replica_batch
    step_tokens = bmb * (torch.minimum(S, w.chunk_size) if w.chunk_size is not None else S)
    act = activation_bytes_per_gpu(m, lay, step_tokens / lay.cp, bmb, b.a)
    total = d.weights + kv + act
    kv_total = m.kv_elements_per_token_per_layer * m.num_layers * mean_cached_tokens(m, w.context) * b.kv
    groups = d.group_bytes
    weights_total = w.model_exact.num_params * b.w.to(f64) if groups is None else model_weight_bytes(m, groups)
    # weights and KV of the whole deployment over what each GPU has left after its workspace
    min_gpus = torch.ceil(
        (weights_total.to(f64) + w.batch_exact * kv_total.to(f64))
        / torch.clamp(d.capacity.to(f64) - act.to(f64), min=1.0)
    )
    return Footprint(kv=kv, activations=act, total=total, min_gpus=min_gpus)
