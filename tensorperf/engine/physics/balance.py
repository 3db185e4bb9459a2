"""Attention-DP context balancing: how long a new request waits for its prefill (docs/model.md §10.5).

TensorRT-LLM's PyTorch executor with ``attention_dp_config.enable_balance`` schedules the context
requests of the attention-DP ranks only once every rank has one (so the ranks prefill together), or
once ``timeout_iters`` steps have passed: each step that not every rank has one advances a counter,
which the flush resets (tensorrt_llm/_torch/pyexecutor/py_executor.py, ``_balance_adp_requests``,
called from ``_schedule`` every step). From a flush, each of the D ranks' next request comes after
X_i ~ Exp(λ) (Poisson arrivals of rate λ per rank), so the next flush comes after

    τ = min(max_i X_i, T_o),   P(τ > t) = 1 − (1 − e^{−λt})^D  (t < T_o),   T_o = timeout_iters · t_step,

and a request arriving at a uniform time of the cycle waits the rest of it: by renewal-reward, a mean
of W = E[τ²] / (2·E[τ]). W → T_o/2 as λ → 0 (the counter's phase), → 0 where D = 1.
"""

from __future__ import annotations

import numpy as np
import torch

# Gauss-Legendre nodes and weights on [0, 1] (16 points: the integrands are smooth and monotone)
_X, _W = np.polynomial.legendre.leggauss(16)
NODES = tuple(float(x) for x in (_X + 1) / 2)
WEIGHTS = tuple(float(w) for w in _W / 2)


def balance_wait(rate: torch.Tensor, ranks: torch.Tensor, timeout: torch.Tensor) -> torch.Tensor:
    """W above: ``rate`` = λ (requests/s per rank), ``ranks`` = D, ``timeout`` = T_o (s); 0 at D = 1."""
    first = torch.zeros_like(rate * ranks * timeout)  # E[τ]/T_o
    second = torch.zeros_like(first)  # E[τ²]/T_o²
    for x, w in zip(NODES, WEIGHTS):  # quadrature nodes, not grid points
        survive = 1 - torch.pow(-torch.expm1(-rate * (x * timeout)), ranks)  # P(τ > x·T_o)
        first = first + w * survive
        second = second + w * (2 * x) * survive
    wait = timeout * second / (2 * torch.clamp(first, min=1e-300))
    return torch.where(ranks > 1, wait, torch.zeros_like(wait))
