"""Power drawn by a GPU during a step, and all-in power per GPU (docs/model.md §9.2).

GPU power between idle and board power by how busy its compute and its HBM are: the linear
utilization model of Fan, Weber and Barroso ("Power provisioning for a warehouse-sized computer",
ISCA 2007: P(u) = P_idle + (P_busy − P_idle)·u), with the utilization of the two resources a step
keeps busy,

    P = P_idle + (P_board − P_idle) · min(1, u_compute + β · u_hbm),

u_compute = FLOP / (peak · η_compute · t) and u_hbm = bytes / (HBM bandwidth · η_memory · t) the share of
the step's time the GPU's compute units and HBM are busy at their achievable rates, and β
the share of the dynamic power that streaming HBM at full bandwidth draws (``hbm_power_fraction``):
compute-bound prefill runs at board power (power caps bind there), memory-bound decode well below it
(an H200 in decode at saturated HBM draws 137-300 W of its 700 W: Ma et al., "The illusion of power
capping in LLM decode", arXiv:2605.11999, 2026). The cap at 1 is the board limit (the clocks throttle
above it; the step time does not model that).

All-in power per GPU adds the node's non-GPU power per GPU (CPUs, NICs, switches, fans) and the data
centre's overhead: (P_gpu + P_host) · PUE.
"""

from __future__ import annotations

import torch


def gpu_power(idle: torch.Tensor, board: torch.Tensor, load: torch.Tensor) -> torch.Tensor:
    """W drawn by one GPU during a step whose load is u_compute + β·u_hbm (>= 0): idle plus the
    dynamic power in proportion, up to the board limit. A board power that is not given (0) gives
    NaN (formed on the few axes of the specs, before the grid-sized load)."""
    dynamic = torch.where(board > 0, board - idle, torch.nan)
    return idle + dynamic * torch.clamp(load, max=1.0)


def all_in_power(gpu: torch.Tensor, host_per_gpu: torch.Tensor, pue: torch.Tensor) -> torch.Tensor:
    """W per GPU at the utility meter: the GPU, its share of the node, and the facility overhead."""
    return (gpu + host_per_gpu) * pue
