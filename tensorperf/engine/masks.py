"""Why a grid point is infeasible: one bit per reason, combined into ``infeasible_reason``.

Infeasibility is data, never an exception: every check is a boolean tensor over the grid and the
reasons are OR-ed into one integer code (0 = feasible).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

import torch


class Reason(enum.IntFlag):
    WORLD_SIZE = 1  # the layout's GPU count does not match the required world size
    DIVISIBILITY = 2  # heads, experts, widths or layers do not split over the degrees
    MEMORY = 4  # weights + KV cache + activations exceed the usable memory per GPU
    DTYPE = 8  # the hardware has no math rate for the weight format
    PLACEMENT = 16  # a parallel group does not fit the scale-up domain where it must
    PIPELINE = 32  # more pipeline stages than layers
    BATCH = 64  # the batch does not split over the data-parallel replicas / microbatches
    INCONSISTENT = 128  # what-if fields contradict each other or leave their range (heads vs KV heads,
    # idle above board power, a PUE below 1: rules a *_scale input or two inputs can break together)
    OVERLOADED = 256  # the request rate reaches the deployment's capacity (no steady state: queues grow)
    NO_DRAFTER = 512  # speculative="mtp" on a model without MTP modules (num_mtp_layers = 0)


def describe(code: int) -> str:
    """Human-readable list of the reasons in a code ('feasible' for 0)."""
    if not code:
        return "feasible"
    return ", ".join(r.name.lower().replace("_", " ") for r in Reason if code & r)


def combine(checks: Mapping[Reason, torch.Tensor], shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """OR the bits of the reasons whose check is False (checks are 'ok' booleans). Bits are OR-ed at
    the checks' own broadcast shapes (most depend on a few axes); the result is a view expanded to the
    grid's shape (consumers copy it when they need it materialized)."""
    code = torch.zeros((), dtype=torch.int64, device=device)
    for reason, ok in checks.items():  # a handful of reasons, not grid points
        code = code | torch.where(ok, 0, int(reason))
    return code.expand(shape)
