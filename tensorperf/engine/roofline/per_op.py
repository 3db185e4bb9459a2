"""Per-op quantities: the op axis, how often each op runs, and sums and stacks over ops.

A phase's ops are a dict op -> (FLOP, bytes, time, compute time − memory time) per GPU for one layer
(embed and lm_head: once per pass); the margin is None without the breakdown. Ops of a kind no model
of the grid has are absent (exact zeros).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch

from tensorperf.engine.metrics import OP_BOUNDS

OPS = (
    "embed",
    "norm",
    "qkv",
    "attn",
    "out_proj",
    "mlp",
    "router",
    "experts",
    "shared_experts",
    "lm_head",
    "tp_comm",
    "ep_comm",
    "pp_comm",
)
MOE_OPS = frozenset({"router", "experts", "shared_experts"})  # zero in dense models

PerOp = dict[str, tuple]  # op -> (FLOP, bytes, time, compute − memory time or None)


def left_sum(terms: Iterable[Any]) -> Any:
    """Left-to-right sum from the first term (Python's ``sum`` starts from 0: one more operation)."""
    return functools.reduce(operator.add, terms)


def each(fn: Callable[..., Any], *parts: tuple) -> tuple:
    """``fn`` applied to each quantity of per-op tuples (FLOP, bytes, time, margin); the margin is None
    without the breakdown, and stays None."""
    return tuple(None if any(p is None for p in ps) else fn(*ps) for ps in zip(*parts))


def counts(model: Any) -> dict[str, Any]:
    """How many times each op runs in one pass through the model (embedding and LM head once)."""
    n_moe = model.num_moe_layers
    n_dense = model.num_layers - n_moe
    return {
        "embed": 1,
        "norm": model.num_layers,
        "qkv": model.num_layers,
        "attn": model.num_layers,
        "out_proj": model.num_layers,
        "mlp": n_dense,
        "router": n_moe,
        "experts": n_moe,
        "shared_experts": n_moe,
        "lm_head": 1,
    }


def total(per_op: PerOp, counts: Mapping[str, Any], index: int) -> torch.Tensor:
    """Sum over the ops of ``counts · per_op[op][index]`` at the ops' own (broadcast) shapes, in a
    fixed order (so the result does not depend on which axes a grid or chunk sweeps): OPS's, with the
    attention core, the one term on every axis in decode, added last."""
    order = [k for k in OPS if k != "attn"] + ["attn"]
    return left_sum(counts[k] * per_op[k][index] for k in order if k in per_op)


def stack(per_op: PerOp, counts: Mapping[str, Any], index: int) -> torch.Tensor:
    """``counts · per_op[op][index]`` of every op (zero for absent ones and collectives), op axis last."""
    zero = per_op["qkv"][index].new_zeros(())
    cols = [counts[k] * per_op[k][index] if k in per_op else zero for k in OPS]
    return torch.stack(torch.broadcast_tensors(*cols), dim=-1)


def bound(margin: Mapping[str, torch.Tensor], times: torch.Tensor) -> torch.Tensor:
    """What bounds each op (op axis last; int8 codes, names in :data:`~tensorperf.engine.metrics.OP_BOUNDS`):
    compute where its compute time exceeds its memory time (``margin`` = t_compute − t_memory > 0),
    memory otherwise, communication for the collectives (``*_comm``), none where the op takes no
    time (no work, or no peer to talk to). Codes are built per op at its own (broadcast) shape and
    stacked as int8, so the grid-sized intermediate is one byte per point and op."""
    code = {name: torch.tensor(i, dtype=torch.int8, device=times.device) for i, name in enumerate(OP_BOUNDS)}
    cols = [
        torch.where(margin[k] > 0, code["compute"], code["memory"]) if k in margin else code["communication"]
        for k in OPS
    ]
    return torch.where(times > 0, torch.stack(torch.broadcast_tensors(*cols), dim=-1), code["none"])
