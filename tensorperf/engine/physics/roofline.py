"""Time of one operation on one GPU: the roofline of its compute and memory times.

    t_c = FLOP / (eta_c · F_peak),  t_m = bytes / (eta_m · W_hbm)
    t   = max(t_c, t_m) + (1 − overlap) · min(t_c, t_m)

overlap = 1 is the standard roofline (lower bound; GenZ get_roofline, LLMCompass Matmul.roofline_model,
llm-analysis); overlap = 0 is the serial upper bound t_c + t_m (scaling book "Rooflines": max is the
lower bound, the sum the upper). Every value in between lies between the two bounds.
"""

from __future__ import annotations

import torch


def compute_time(flops: torch.Tensor, peak: torch.Tensor | float, efficiency: torch.Tensor) -> torch.Tensor:
    """FLOP / (eta · FLOP/s) -> s."""
    return flops / (efficiency * peak)


def memory_time(nbytes: torch.Tensor, bandwidth: torch.Tensor | float, efficiency: torch.Tensor) -> torch.Tensor:
    """bytes / (eta · B/s) -> s."""
    return nbytes / (efficiency * bandwidth)


def saturation(size: torch.Tensor, half: torch.Tensor) -> torch.Tensor:
    """size / (size + half): 0 -> 1 as size grows, 1/2 at size = half, exactly 1 when half = 0.

    The smooth form of a kernel's efficiency rising with its size (GEMM rows, tokens per expert,
    message bytes), fitted to measured kernels (tensorperf.analysis.kernel_fit)."""
    empty = size <= 0  # no work: any efficiency will do; 1 keeps 0/0 out of the times
    return torch.where(empty, 1.0, size / (size + half + empty))


def op_time(t_compute: torch.Tensor, t_memory: torch.Tensor, overlap: torch.Tensor | float | None) -> torch.Tensor:
    """Roofline with an overlap knob between the max (overlap=1) and the sum (overlap=0) bounds.

    ``overlap=None`` means overlap = 1 everywhere: the (1 − 1)·min term is an exact zero (both times
    are finite) and is left out, the same result bit for bit at a third of the work."""
    if overlap is None:
        return torch.maximum(t_compute, t_memory)
    return torch.maximum(t_compute, t_memory) + (1 - overlap) * torch.minimum(t_compute, t_memory)
