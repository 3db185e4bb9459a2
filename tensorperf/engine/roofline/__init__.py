"""convention="roofline" (the default): the corrected inference model of docs/model.md §3 and §8.

Wires the pure physics modules together over the whole grid: per-op FLOPs and bytes
(physics.ops) -> per-op roofline times (physics.roofline) -> layer times with exposed collectives
(physics.comm) -> pipeline stages and schedules (physics.pipeline) -> TTFT, TPOT, throughput;
memory per GPU and the feasibility mask (physics.memory, masks).

Modules, one job each: ``values`` (Workload, Rates, Deployment, Shortcuts: frozen), ``build`` (grid ->
those values) with ``factors`` (efficiency tables and overrides) and ``resident`` (memory that does not
depend on the batch; batch='max'), ``per_op`` (the op axis, sums and stacks over ops), ``layer``
(per-op times of one layer), ``collectives`` (per-layer collectives), ``stages`` (layers -> pipeline
stages), ``phases`` and ``chunked`` (prefill, decode, the serving step), ``footprint`` (memory at the
batch), ``checks`` (feasibility), ``formulas`` (one per metric). :func:`evaluate` runs the passes the
wanted metrics need (:data:`~tensorperf.engine.metrics.METRICS` declares them) and assembles the
Evaluation.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Collection, Mapping
from typing import Any

import torch

from tensorperf.engine.grid import EVAL_ORDER, Grid
from tensorperf.engine.masks import Reason, combine
from tensorperf.engine.metrics import METRICS, ROOFLINE, Evaluation, Pass, produced_by
from tensorperf.engine.physics.speculative import METHOD_CODE
from tensorperf.engine.roofline import checks, load, phases
from tensorperf.engine.roofline.build import STRUCTURE_FIELDS, build
from tensorperf.engine.roofline.factors import BOUNDED_FACTORS, scaled_efficiency
from tensorperf.engine.roofline.formulas import FORMULAS, outcome
from tensorperf.engine.roofline.per_op import MOE_OPS, OPS
from tensorperf.engine.roofline.values import Deployment, Rates, Shortcuts, Workload

__all__ = [
    "BOUNDED_FACTORS",
    "EVAL_ORDER",
    "MOE_OPS",
    "OPS",
    "STRUCTURE_FIELDS",
    "Deployment",
    "Rates",
    "Shortcuts",
    "Workload",
    "evaluate",
    "plan",
    "scaled_efficiency",
]


def evaluate(
    grid: Grid,
    efficiency: Mapping[str, Any] | None = None,
    fields: Mapping[str, torch.Tensor] | None = None,
    breakdown: bool = True,
    metrics: Collection[str] | None = None,
) -> Evaluation:
    """Every metric over the grid. ``efficiency`` overrides Efficiency factors (numbers or tensors);
    ``fields`` replaces ModelSpec/HardwareSpec fields by tensors (used for sensitivities).
    ``breakdown=False`` skips the per-op variables (an ``op`` axis of 13 values per point); every
    other metric is the same, bit for bit. ``metrics``: the metrics wanted (default all); the passes
    no wanted metric needs (prefill, decode, the serving step) are skipped, and the metrics computed
    are the same, bit for bit (memory, counts and feasibility are always there).

    Without the breakdown the engine computes with its axes in :data:`~tensorperf.axes.EVAL_ORDER`
    and returns views in the grid's own order; tensors given in ``efficiency``/``fields`` on the
    grid's axes are taken in the grid's order. Every point's arithmetic is the same in any axis
    order. (The breakdown's op axis, 13 values per point, would then need a transposing copy; it is
    computed in the grid's order.)"""
    inner, back = grid.in_order(EVAL_ORDER)
    if breakdown or back == tuple(range(len(back))):
        return _evaluate(grid, efficiency, fields, breakdown, metrics)
    into = tuple(grid.dims.index(d) for d in inner.dims)
    given = [{k: _on_axes(_full_rank(v, len(into)), into) for k, v in (m or {}).items()} for m in (efficiency, fields)]
    ev = _evaluate(inner, *given, breakdown, metrics)
    return dataclasses.replace(
        ev, values={k: _on_axes(v, back) for k, v in ev.values.items()}, reason=_on_axes(ev.reason, back)
    )


def _full_rank(value: Any, n: int) -> Any:
    """An override as given: a number as it is; an array or tensor (broadcastable to the grid, its
    last axis on the grid's last) as a tensor with the grid's n axes, for :func:`_on_axes`."""
    if isinstance(value, numbers.Number) or (isinstance(value, torch.Tensor) and value.dim() == 0):
        return value
    t = torch.as_tensor(value)
    return t.reshape((1,) * (n - t.dim()) + tuple(t.shape)) if 0 < t.dim() < n else t


def _on_axes(t: Any, perm: tuple[int, ...]) -> Any:
    """A tensor on the grid's axes (plus trailing result axes) with its grid axes permuted; numbers
    and 0-d tensors as they are."""
    if not isinstance(t, torch.Tensor) or t.dim() == 0:
        return t
    if t.dim() < len(perm):
        raise ValueError(f"a tensor of shape {tuple(t.shape)} is not on the grid's {len(perm)} axes")
    return t.permute(perm + tuple(range(len(perm), t.dim())))


def plan(metrics: Collection[str] | None, breakdown: bool) -> tuple[frozenset[Pass], tuple[str, ...]]:
    """(the passes to run, the metrics to compute in the registry's order). Asked for: ``metrics``
    (default every roofline metric) and, with ``breakdown``, the per-op ones (only then); the passes
    run are those the asked-for metrics need. Computed: the asked-for metrics and those always
    computed, each where the passes it needs run."""
    roofline = produced_by(ROOFLINE)
    asked = [k for k in roofline if (breakdown if METRICS[k].per_op else metrics is None or k in metrics)]
    runs = frozenset().union(*(METRICS[k].passes for k in asked))
    return runs, tuple(k for k in roofline if METRICS[k].passes <= runs and (METRICS[k].always or k in asked))


def _evaluate(
    grid: Grid,
    efficiency: Mapping[str, Any] | None,
    fields: Mapping[str, torch.Tensor] | None,
    breakdown: bool,
    metrics: Collection[str] | None,
) -> Evaluation:
    w, r, d, s = build(grid, efficiency or {}, fields or {}, breakdown)
    runs, names = plan(metrics, breakdown)
    if w.serving.request_rate is not None:  # whether the rate overloads a point is always decided
        runs = runs | {Pass.SERVING}
    prefill = phases.prefill(w, r, d, s) if Pass.PREFILL in runs else None
    decode = phases.decode(w, r, d, s) if Pass.DECODE in runs else None
    serving = load.serving_load(w, r, d, s) if Pass.SERVING in runs else None
    o = outcome(w, r, d, prefill, decode, serving)
    values = {k: FORMULAS[k](o) for k in names}
    world = grid.axis("world_size", torch.float64) if "world_size" in grid.values else None
    ok = checks.feasibility(w, r, d, o.memory.total <= d.capacity, world)
    if serving is not None and serving.overloaded is not None:
        ok[Reason.OVERLOADED] = ~serving.overloaded
    if w.speculation is not None and "mtp" in w.speculation.methods:  # MTP needs the model's modules (§3.14)
        ok[Reason.NO_DRAFTER] = (w.speculation.method != METHOD_CODE["mtp"]) | (w.model.num_mtp_layers > 0)
    reason = combine(ok, grid.shape, grid.device)
    trailing = {k: ("op",) for k in values if METRICS[k].per_op}
    return Evaluation(values=values, reason=reason, trailing=trailing, trailing_coords={"op": OPS})
