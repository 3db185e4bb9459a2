"""In-place elementwise results on a function's own temporaries.

The engine is bound by memory traffic: an out-of-place op reads its inputs, then reads and writes a
freshly allocated output; written into one of its inputs it saves the allocation and the extra read
(6-8% of a float64 evaluation, measured side by side). Only a temporary the calling function made
itself may take it, only when no autograd graph is being recorded (sensitivities differentiate the
same code), and only when it already has the result's broadcast shape. The values are the same
elementwise operations either way, so results are bitwise identical.
"""

from __future__ import annotations

import torch


def owned(t: torch.Tensor, *others: torch.Tensor) -> bool:
    """May ``t`` (a temporary of the caller's) receive the result of an op with ``others`` in place?"""
    return not torch.is_grad_enabled() and not t.requires_grad and all(_covers(t.shape, o.shape) for o in others)


def _covers(shape: tuple[int, ...], other: tuple[int, ...]) -> bool:
    """Whether broadcasting ``other`` against ``shape`` gives ``shape`` (each of its trailing-aligned
    sizes is 1 or equal); torch.broadcast_shapes answers the same at many times the cost."""
    if len(other) > len(shape):
        return False
    return all(o == 1 or o == s for s, o in zip(shape[len(shape) - len(other) :], other))


def maximum(t: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """max(t, other), into ``t`` when :func:`owned`."""
    return torch.maximum(t, other, out=t) if owned(t, other) else torch.maximum(t, other)
