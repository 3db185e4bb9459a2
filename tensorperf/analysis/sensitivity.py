"""Per-point sensitivities of any metric to efficiency factors and to model/hardware fields.

Reverse-mode autograd: every parameter becomes a leaf tensor expanded to the full grid, so each
grid point owns its copy and one backward pass of ``metric.sum()`` yields each point's own
derivative for all parameters at once (points never interact). Reverse mode costs one backward
pass per metric whatever the number of parameters; forward mode (jvp) would cost one pass per
parameter, so reverse is the faster choice for the usual handful-of-parameters question.
Elasticity = d ln y / d ln x = (x / y) · dy/dx.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from tensorperf.catalog.specs import HARDWARE_FIELDS, MODEL_FIELDS, Efficiency
from tensorperf.engine import roofline
from tensorperf.engine.grid import Grid
from tensorperf.engine.metrics import METRICS
from tensorperf.run.inputs import build_grid, check_efficiency
from tensorperf.validation import SpecError, unknown_name_error

EFFICIENCY_FIELDS = tuple(f.name for f in dataclasses.fields(Efficiency))
# the sweep inputs that are parameters too: the MoE routing imbalance and speculative decoding's
# acceptance (given, each travels with the field overrides to the engine)
INPUT_PARAMETERS = ("imbalance", "acceptance")
PARAMETERS = EFFICIENCY_FIELDS + HARDWARE_FIELDS + MODEL_FIELDS + INPUT_PARAMETERS


def _base_value(grid: Grid, name: str, efficiency: dict) -> torch.Tensor:
    if name in INPUT_PARAMETERS:
        if name not in grid.values:
            raise SpecError(
                f"wrt {name!r} needs a value of the {name} input (e.g. {name}="
                + (
                    "1.2): its default, uniform routing's, is a function of the tokens, not a parameter"
                    if name == "imbalance"
                    else "0.8): its default is the model preset's, not a sweep parameter"
                )
            )
        return grid.axis(name)
    if name in EFFICIENCY_FIELDS:
        if name in efficiency:
            return torch.as_tensor(float(efficiency[name]), dtype=grid.dtype, device=grid.device)
        return getattr(grid.spec("hardware", attr="efficiency"), name)
    return getattr(grid.spec("model" if name in MODEL_FIELDS else "hardware"), name)


@dataclass(frozen=True)
class Sensitivity:
    """Derivatives of metric ``of`` at every point of ``grid``: ``gradient`` and ``elasticity`` have
    the grid's shape plus a trailing axis over ``wrt``; ``value`` is the metric and ``feasible`` the
    feasibility mask (both at the grid's shape)."""

    grid: Grid
    of: str
    wrt: tuple[str, ...]
    gradient: torch.Tensor
    elasticity: torch.Tensor
    value: torch.Tensor
    feasible: torch.Tensor


def sensitivity(*, of: str, wrt: Sequence[str], efficiency: dict | None = None, **axes: Any) -> Sensitivity:
    """d ``of`` / d parameter and its elasticity at every grid point (roofline convention).

    ``wrt`` names Efficiency factors (compute, memory, ...), numeric ModelSpec/HardwareSpec fields
    (hbm_bandwidth, peak_flops_fp8, num_kv_heads, ...) and ``imbalance`` (when given in ``axes``).
    ``axes`` are :func:`tensorperf.sweep`'s inputs. Infeasible points keep finite derivatives of the
    formulas.
    """
    convention = axes.pop("convention", "roofline")
    if not isinstance(convention, str) or convention != "roofline":
        raise SpecError(
            f"convention = {convention!r} is not allowed: sensitivity needs convention='roofline' "
            "(the seed convention floors its times)"
        )
    scalar_metrics = [k for k in METRICS if k not in ("feasible", "infeasible_reason")]
    if not isinstance(of, str) or of not in scalar_metrics:
        raise unknown_name_error("metric (of)", of, scalar_metrics)
    if isinstance(wrt, str) or not isinstance(wrt, (list, tuple)) or not wrt:
        raise SpecError(f"wrt = {wrt!r} is not allowed: must be a non-empty list of parameter names")
    for name in wrt:
        if not isinstance(name, str) or name not in PARAMETERS:
            raise unknown_name_error("parameter in wrt", name, PARAMETERS)
    twice = next((name for name in wrt if list(wrt).count(name) > 1), None)
    if twice is not None:
        raise SpecError(f"wrt = {list(wrt)!r} names {twice!r} twice; list each parameter once")
    efficiency = check_efficiency(efficiency)
    grid = build_grid(**axes)
    leaves = {
        name: _base_value(grid, name, efficiency).detach().expand(grid.shape).clone().requires_grad_() for name in wrt
    }
    eff = dict(efficiency) | {n: t for n, t in leaves.items() if n in EFFICIENCY_FIELDS}
    fields = {n: t for n, t in leaves.items() if n not in EFFICIENCY_FIELDS}
    with torch.enable_grad():
        ev = roofline.evaluate(grid, eff, fields)
        if of in ev.trailing:
            raise SpecError(f"of = {of!r} has an 'op' dimension; choose a scalar metric")
        y = ev.values[of].expand(grid.shape)
        # a metric no parameter reaches (e.g. throughput at a given request rate) has zero gradients
        grads = (
            torch.autograd.grad(y.sum(), list(leaves.values()), allow_unused=True)
            if y.requires_grad
            else [None] * len(leaves)
        )
    grads = [torch.zeros(grid.shape, dtype=grid.dtype, device=grid.device) if g is None else g for g in grads]
    g = torch.stack([t.detach() for t in grads], dim=-1)
    x = torch.stack([t.detach() for t in leaves.values()], dim=-1)
    yv = y.detach().unsqueeze(-1)
    safe_y = torch.where(yv != 0, yv, torch.ones_like(yv))
    elasticity = torch.where(yv != 0, g * x / safe_y, torch.zeros_like(g))
    if not bool(torch.isfinite(g).all()):  # an internal error, never the user's
        raise FloatingPointError(f"non-finite sensitivity of {of}; please report the inputs")
    feasible = (ev.reason == 0).expand(grid.shape)
    return Sensitivity(grid, of, tuple(wrt), g, elasticity, yv.squeeze(-1), feasible)
