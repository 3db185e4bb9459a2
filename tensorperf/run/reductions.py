"""The reductions of a grid's metrics: the best point per group under constraints, the Pareto
frontier of two metrics per group, feasible counts, several at once, or any :class:`Reduction` a
user writes. The only implementation: :func:`tensorperf.best` / :func:`tensorperf.pareto` stream
them over a grid's chunks (:mod:`tensorperf.run.executors`), and ``Dataset.tperf.best`` /
``pareto`` / ``pareto_table`` run them on results in memory taken as one chunk.

A reduction is ``partial`` (one chunk -> something small), ``merge`` (fold the partials in chunk
order) and ``finish``. No per-point Python: a chunk's winners are one ``argmax``, its frontier one
sort and running maximum (:func:`_frontier`). The built-in reductions finish as :class:`Labelled`
(plain arrays with their dims and coordinates; the interface turns them into Datasets).

The checks of their arguments (:func:`check_best`, :func:`check_pareto`, :func:`check_where`) are
shared by every entry point, on a table of the variables a reduction may name (name -> dims, dtype).
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol

import numpy as np
import torch

from tensorperf.axes import LAYOUT_AXES
from tensorperf.engine.grid import Grid
from tensorperf.engine.metrics import METRICS, Evaluation
from tensorperf.run.chunks import ChunkResult, Labels
from tensorperf.validation import SpecError, unknown_name_error

COMPARISONS = MappingProxyType(
    {
        ">=": operator.ge,
        ">": operator.gt,
        "<=": operator.le,
        "<": operator.lt,
        "==": operator.eq,
    }
)

# The dims a frontier is taken over by default (those present): how a workload is laid out and
# batched. A dimension also counts when one of these inputs lies on it (a zipped ``point`` dim).
LAYOUT_DIMS = LAYOUT_AXES  # the layout and scheduling axes of the registry
# tp.disagg's dims (docs/model.md §3.15): a pool's own input gets its pool's prefix (prefill_tp,
# decode_batch, prefill_point where a pool zips its inputs), and the instance ratio is one more
POOL_PREFIXES = ("prefill_", "decode_")
RATIO_DIM = "ratio"

# One variable's where-condition: (comparison, value), or several such pairs, all to hold.
Condition = tuple[str, float] | tuple[tuple[str, float], ...]

# What a reduction may name: variable -> (its dims, its numpy dtype).
Variables = Mapping[str, tuple[tuple[str, ...], Any]]
VARIABLES_SEE = "docs/guide.md (Python API, 'Variables') lists them; in Python, a result's data_vars"


# --------------------------------------------------------------------------- checks


def _threshold(value: Any) -> float | None:
    """A where-threshold as a float: a real number, not a bool, not NaN, within float range (±inf allowed)."""
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
        return None
    try:
        value = float(value)
    except (OverflowError, TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def check_condition(name: str, cond: Any) -> Condition:
    """One ``where`` entry: (comparison, real number), the number as a float; or several such pairs
    on one variable (all must hold: a range such as ``((">=", 20), ("<=", 50))``)."""
    if isinstance(cond, (tuple, list)) and cond and all(isinstance(c, (tuple, list)) for c in cond):
        pairs = tuple(check_condition(name, c) for c in cond)
        return pairs[0] if len(pairs) == 1 else pairs
    ok = (
        isinstance(cond, (tuple, list))
        and len(cond) == 2
        and isinstance(cond[0], str)
        and cond[0] in COMPARISONS
        and _threshold(cond[1]) is not None
    )
    if not ok:
        raise SpecError(
            f"where[{name!r}] = {cond!r} is not allowed: must be (comparison, value) "
            f"with comparison in {', '.join(COMPARISONS)} and a real number value (not NaN), "
            "or a list of such pairs"
        )
    return cond[0], _threshold(cond[1])


def conditions(where: Mapping[str, Condition]) -> list[tuple[str, str, float]]:
    """Every (variable, comparison, value) of a checked ``where``, a variable's several conditions each."""
    out = []
    for name, cond in where.items():
        for comparison, value in cond if isinstance(cond[0], tuple) else (cond,):
            out.append((name, comparison, value))
    return out


def check_dims(kind: str, dims: Any, available: Sequence[str]) -> tuple[str, ...]:
    """Known, distinct dims (a bare string counts as one dim)."""
    if isinstance(dims, str):
        dims = (dims,)
    try:
        dims = list(dims)
    except TypeError:
        raise SpecError(f"{kind} = {dims!r} is not allowed: must be a list of dimension names") from None
    for dim in dims:
        if dim not in available:
            raise unknown_name_error(f"dimension in {kind}", dim, available)
    if len(set(dims)) != len(dims):
        raise SpecError(f"{kind} = {dims!r} lists a dimension twice")
    return tuple(dims)


def check_variable(kind: str, name: Any, variables: Variables) -> str:
    """A known, numeric variable."""
    if not isinstance(name, str) or name not in variables:
        raise unknown_name_error(kind, name, variables, see=VARIABLES_SEE)
    dtype = variables[name][1]
    if np.dtype(dtype).kind not in "biuf":
        raise SpecError(f"{kind} {name!r} is not numeric (dtype {dtype}); choose a numeric variable")
    return name


def check_where(where: Any, variables: Variables, dims: Collection[str] | None = None) -> dict[str, Condition]:
    """``{variable: (comparison, value)}`` (or several pairs on one variable, all to hold): known numeric
    variables (lying on ``dims`` only, when given: a condition cannot add a dimension to what is
    reduced), comparisons of real numbers."""
    if where is None:
        return {}
    if not isinstance(where, Mapping):
        raise SpecError(f"where = {where!r} is not allowed: must be a mapping {{variable: (comparison, value)}}")
    out = {}
    for name, cond in where.items():
        if not isinstance(name, str) or name not in variables:
            raise unknown_name_error("variable in where", name, variables, see=VARIABLES_SEE)
        condition = check_condition(name, cond)
        vdims, dtype = variables[name]
        if np.dtype(dtype).kind not in "biuf":
            raise SpecError(f"where[{name!r}]: variable {name!r} is not numeric (dtype {dtype})")
        if dims is not None:
            extra = [d for d in vdims if d not in dims]
            if extra:
                raise SpecError(
                    f"where[{name!r}]: variable {name!r} has dimension(s) {extra} that the "
                    f"reduced variables lack (they have {list(dims)})"
                )
        out[name] = condition
    return out


def higher_is_better(name: str) -> bool:
    """The default direction of a search over ``name``: the registry's (a variable it does not
    declare, e.g. one a user added to a Dataset: larger is better)."""
    return METRICS[name].higher_is_better if name in METRICS else True


def check_best(
    variables: Variables, objective: Any, where: Any, keep: Any, maximize: Any
) -> tuple[str, dict[str, tuple[str, float]], tuple[str, ...], bool]:
    """The arguments of a best-point search, checked: (objective, where, keep, maximize). The dims
    are the objective's; ``keep`` must leave one of them to choose along."""
    objective = check_variable("objective", objective, variables)
    dims = variables[objective][0]
    keep = check_dims("keep", keep, dims)
    if maximize is None:  # the metric's own direction (higher is better unless the registry says)
        maximize = higher_is_better(objective)
    if not isinstance(maximize, (bool, np.bool_)):
        raise SpecError(f"maximize = {maximize!r} is not allowed: must be True, False or None (the metric's own)")
    where = check_where(where, variables, dims)
    if not dims:
        raise SpecError(
            f"nothing to choose from: {objective} has no swept dimension (every input is one value); "
            "give some input several values, e.g. tp=[1, 2, 4, 8] or batch=[1, 64, 256]"
        )
    if not [d for d in dims if d not in keep]:
        raise SpecError(f"nothing to choose from: every dimension of {objective} is in keep={list(keep)}")
    return objective, where, keep, bool(maximize)


def check_pareto(
    labels: Labels, variables: Variables, x: Any, y: Any, where: Any, over: Any, maximize: Any, extra: Any = ()
) -> tuple[str, str, dict[str, tuple[str, float]], tuple[str, ...], tuple[bool, bool], tuple[str, ...], tuple]:
    """The arguments of a frontier, checked: (x, y, where, over, maximize, dims, extra). The dims are
    those of ``x`` and ``y`` together; ``over`` defaults to the layout and batch dims among them
    (:func:`default_over` of ``labels``); ``extra`` variables (reported with each frontier point)
    must lie on those dims."""
    if isinstance(extra, str):
        extra = (extra,)
    if not isinstance(extra, (list, tuple)):
        raise SpecError(f"extra = {extra!r} is not allowed: must be a list of variable names")
    x = check_variable("x", x, variables)
    y = check_variable("y", y, variables)
    if x == y:
        raise SpecError(f"x and y are both {x!r}; a frontier needs two different variables")
    if maximize is None:  # each metric's own direction
        maximize = (higher_is_better(x), higher_is_better(y))
    if not (
        isinstance(maximize, (tuple, list))
        and len(maximize) == 2
        and all(isinstance(m, (bool, np.bool_)) for m in maximize)
    ):
        raise SpecError(f"maximize = {maximize!r} is not allowed: must be a pair of booleans (for x, y)")
    xdims = variables[x][0]
    dims = (*xdims, *(d for d in variables[y][0] if d not in xdims))
    if over is None:
        over = default_over(labels, dims)
        if not over:
            raise SpecError(
                f"no layout or batch dimension ({', '.join(LAYOUT_DIMS)}) is swept in "
                f"{x}/{y} (dims {list(dims)}); pass over=[...]"
            )
    else:
        over = check_dims("over", over, dims)
        if not over:
            raise SpecError("over is empty; name the dimensions to take the frontier over")
    for name in extra:
        check_variable("variable in extra", name, variables)
        outside = [d for d in variables[name][0] if d not in dims]
        if outside:
            raise SpecError(f"extra variable {name!r} has dimension(s) {outside} that {x}/{y} lack")
    where = check_where(where, variables, dims)
    return x, y, where, tuple(over), (bool(maximize[0]), bool(maximize[1])), dims, tuple(extra)


def is_layout_name(name: str) -> bool:
    """A layout or batch input's name: one of :data:`LAYOUT_DIMS`, or one with a disaggregated
    pool's prefix (``prefill_tp``, ``decode_batch``), or the pools' ``ratio``."""
    base = next((name[len(p) :] for p in POOL_PREFIXES if name.startswith(p)), name)
    return base in LAYOUT_DIMS or name == RATIO_DIM


def default_over(grid: Grid | Labels, dims: Sequence[str] | None = None) -> tuple[str, ...]:
    """The layout and batch dims of a grid (among ``dims``): those :func:`is_layout_name` names, and
    a dim one of those inputs lies on (``point`` when ``zipped=["tp", "pp"]``; ``decode_point`` when
    a disaggregated decode pool zips its own)."""
    labels = Labels.of(grid)
    riders = {c: d for c, (d, _) in labels.coords.items() if is_layout_name(c)}
    return tuple(d for d in (labels.dims if dims is None else dims) if is_layout_name(d) or (d,) in riders.values())


# --------------------------------------------------------------------------- masks


def where_mask(result: ChunkResult, where: Mapping[str, tuple[str, float]]) -> torch.Tensor:
    """Feasible and meeting every condition. Conditions are compared on the metrics' own broadcast
    shapes, unmasked: where a metric is masked (NaN) the point is infeasible, so the AND is the same."""
    ok = result.feasible
    for name, comparison, value in conditions(where):
        raw = result.values.get(name)
        ok = ok & COMPARISONS[comparison](result.metric(name) if raw is None else raw, value)
    return ok


def candidates(result: ChunkResult, x: str, y: str, where: Mapping[str, tuple[str, float]]) -> torch.Tensor:
    """The points a frontier of ``x`` versus ``y`` is taken among: feasible, meeting ``where``,
    neither value NaN (a broadcastable boolean tensor)."""
    ok = where_mask(result, where)
    for name in (x, y):
        raw = result.values.get(name)
        value = result.metric(name) if raw is None else raw
        ok = ok & (value == value)  # (not NaN)
    return ok


def _frontier(xs: np.ndarray, ys: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Non-dominated mask along the last axis (both objectives maximized; ``ok`` marks candidates).

    A candidate p is dominated when another candidate q has x_q >= x_p and y_q >= y_p with one of
    them strict; exact duplicates do not dominate each other (all are kept). Sort by (candidate
    first, x descending, y descending); a point is on the frontier when its y is the best of its
    x-tie group and exceeds the running max of y over every point with a strictly larger x."""
    n = xs.shape[-1]
    order = np.lexsort((-ys, -xs, ~ok), axis=-1)
    xs_s = np.take_along_axis(xs, order, axis=-1)
    ys_s = np.take_along_axis(ys, order, axis=-1)
    ok_s = np.take_along_axis(ok, order, axis=-1)
    # first index of each run of equal (ok, x): its y is the best y of the run
    new_run = np.ones(xs.shape, dtype=bool)
    new_run[..., 1:] = (xs_s[..., 1:] != xs_s[..., :-1]) | (ok_s[..., 1:] != ok_s[..., :-1])
    start = np.maximum.accumulate(np.where(new_run, np.arange(n), 0), axis=-1)
    # running max of y over all earlier points (exclusive), read at the start of each run: the
    # best y among points with a strictly larger x
    before = np.full(xs.shape, -np.inf)
    before[..., 1:] = np.maximum.accumulate(ys_s, axis=-1)[..., :-1]
    larger_x_max = np.take_along_axis(before, start, axis=-1)
    run_best = np.take_along_axis(ys_s, start, axis=-1)
    on_s = ok_s & (ys_s == run_best) & (ys_s > larger_x_max)
    on = np.empty_like(on_s)
    np.put_along_axis(on, order, on_s, axis=-1)
    return on


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Labelled:
    """A built-in reduction's result as plain arrays, labelled as a Dataset would be
    (:func:`tensorperf.interface.dataset.labelled_dataset` turns it into one): ``data[name] =
    (dims, values, attrs)``, ``coords[name] = (dims, values)`` (``dims == ()``: a scalar value), and
    the result's ``attrs``."""

    data: Mapping[str, tuple[tuple[str, ...], np.ndarray, Mapping[str, str]]]
    coords: Mapping[str, tuple[tuple[str, ...], Any]]
    attrs: Mapping[str, str]


def _metric_attrs(name: str) -> dict[str, str]:
    meta = METRICS.get(name)
    return {"units": meta.units, "long_name": meta.long_name} if meta is not None else {}


# --------------------------------------------------------------------------- reductions


class Reduction(Protocol):
    """A streaming reduction. ``partial`` runs once per chunk (in this process or on a dask worker)
    and returns something small; ``merge`` folds partials into the state in chunk (C) order, starting
    from ``None``; ``finish`` turns the final state into the result. Implement these three methods
    (on a picklable object, for dask) to stream any reduction.

    Optional: a ``metrics`` attribute (a tuple of names) limits what each chunk computes to those
    metrics (memory, counts and feasibility always come; without it, every metric does); a true
    ``breakdown`` attribute adds the per-op variables to each chunk (what :class:`Gather` needs);
    and ``complete(state, grid, at)`` runs before ``finish`` with ``at(positions)`` =
    :func:`~tensorperf.run.chunks.metrics_at`, every metric at the given points (how Best and Pareto
    report their winners' full metrics after choosing them on a few)."""

    def partial(self, result: ChunkResult) -> Any: ...

    def merge(self, state: Any, partial: Any) -> Any: ...

    def finish(self, state: Any, grid: Grid) -> Any: ...


def _completed(reduction: Any, state: dict) -> None:
    """Best and Pareto choose on a few metrics per chunk; ``complete`` adds their winners' others."""
    if "values" not in state:
        raise SpecError(
            f"{type(reduction).__name__}.finish() needs complete(state, grid, at) first (its winners' "
            "metrics); tensorperf.reduce / best / pareto call it"
        )


def _needed(*names: str) -> tuple[str, ...]:
    """The engine metrics among ``names`` (``feasible`` and ``infeasible_reason`` come with every chunk)."""
    return tuple(dict.fromkeys(n for n in names if n not in ("feasible", "infeasible_reason")))


def kept_shape(grid: Grid | Labels, keep: Sequence[str]) -> tuple[int, ...]:
    """The shape of the ``keep`` dims of a grid (in grid order): the state shape of Best and Count."""
    return tuple(n for d, n in zip(grid.dims, grid.shape) if d in keep)


def _split_dims(grid: Grid | Labels, keep: Sequence[str]) -> tuple[list[str], list[str]]:
    return [d for d in grid.dims if d in keep], [d for d in grid.dims if d not in keep]


def _flatten(t: torch.Tensor, grid: Grid | Labels, first: Sequence[str], second: Sequence[str]) -> torch.Tensor:
    """A chunk-shaped tensor as (prod of ``first`` dims, prod of ``second`` dims), C order each."""
    perm = [grid.dims.index(d) for d in (*first, *second)]
    n_first = math.prod(grid.shape[grid.dims.index(d)] for d in first)
    return t.permute(perm).reshape(n_first, -1)


def _scalar_coords(labels: Labels) -> dict[str, tuple[tuple[str, ...], Any]]:
    return {n: c for n, c in labels.coords.items() if not c[0]}


@dataclass(frozen=True)
class Best:
    """The point maximizing (or minimizing) ``objective`` among feasible points meeting ``where``, per
    combination of the ``keep`` dims; ``kshape`` is the shape of the kept dims over the whole grid
    (the state's shape). Ties go to the first point in C order; a group without a candidate reports
    ``found`` False and NaN metrics (and numeric coordinates).

    Finishes as the winners' coordinates (``best_<dim>`` for each reduced dim, ``best_<input>`` for
    inputs lying on reduced dims), their float metrics and ``found``, on the kept dims."""

    objective: str
    where: Mapping[str, tuple[str, float]]
    keep: tuple[str, ...]
    maximize: bool
    kshape: tuple[int, ...]

    @property
    def metrics(self) -> tuple[str, ...]:
        """What a chunk must compute to choose (the winners' other metrics come at the end: complete)."""
        return _needed(self.objective, *self.where)

    def partial(self, result: ChunkResult) -> dict:
        grid = result.grid
        kdims, rdims = _split_dims(grid, self.keep)
        raw = result.values.get(self.objective)
        value = result.metric(self.objective) if raw is None else raw
        value = value if value.is_floating_point() else value.to(torch.float64)  # (feasible, infeasible_reason)
        fill = -math.inf if self.maximize else math.inf
        score = torch.where(
            where_mask(result, self.where), value, torch.full((), fill, dtype=value.dtype, device=value.device)
        )
        score = torch.nan_to_num_(
            score.expand(grid.shape).contiguous(), nan=fill, posinf=math.inf, neginf=-math.inf
        )  # a NaN never wins; infinities stay
        flat = _flatten(score, grid, kdims, rdims)
        index = flat.argmax(dim=1) if self.maximize else flat.argmin(dim=1)  # the first extremum in C order
        best = flat.gather(1, index[:, None])[:, 0].cpu().numpy()
        best = best if self.maximize else -best  # scores are compared as "larger wins" across chunks
        kshape = tuple(grid.shape[grid.dims.index(d)] for d in kdims)
        rshape = tuple(grid.shape[grid.dims.index(d)] for d in rdims)
        kpos = np.unravel_index(np.arange(flat.shape[0]), kshape) if kdims else ()
        local = dict(zip(kdims, kpos)) | dict(zip(rdims, np.unravel_index(index.cpu().numpy(), rshape)))
        return {
            "block": tuple(slice(*result.chunk.ranges.get(d, (0, n))) for d, n in zip(kdims, self.kshape)),
            "score": best.reshape(kshape),
            "positions": {d: result.global_positions(d, local[d]).reshape(kshape) for d in rdims},
        }

    def merge(self, state: dict | None, part: dict) -> dict:
        if state is None:
            state = {
                "score": np.full(self.kshape, -math.inf),
                "positions": {d: np.zeros(self.kshape, dtype=np.int64) for d in part["positions"]},
            }
        sub = part["block"]
        better = part["score"] > state["score"][sub]  # strictly: an earlier chunk keeps its tie
        state["score"][sub] = np.where(better, part["score"], state["score"][sub])
        for d, p in part["positions"].items():
            state["positions"][d][sub] = np.where(better, p, state["positions"][d][sub])
        return state

    def complete(
        self, state: dict | None, grid: Grid | Labels, at: Callable[..., dict[str, np.ndarray]]
    ) -> dict | None:
        """Every metric of the winners (``at``: their values at given positions), NaN where none was found."""
        if state is None:
            return None
        found = state["score"] > -math.inf
        kdims, _ = _split_dims(grid, self.keep)
        kept = dict(zip(kdims, np.indices(self.kshape, dtype=np.int64)))
        where = {d: p[found] for d, p in (kept | state["positions"]).items()}
        values = {}
        for name, v in at(where).items():
            full = np.full(self.kshape, np.nan if v.dtype.kind == "f" else 0, dtype=v.dtype)
            full[found] = v
            values[name] = full
        return state | {"values": values}

    def finish(self, state: dict, grid: Grid | Labels) -> Labelled:
        _completed(self, state)
        labels = Labels.of(grid)
        kdims, rdims = _split_dims(labels, self.keep)
        kdims = tuple(kdims)
        positions, found = state["positions"], state["score"] > -math.inf
        data: dict[str, Any] = {}
        for name, v in state["values"].items():
            if v.dtype.kind == "f":
                data[name] = (kdims, np.where(found, v, np.nan).astype(v.dtype), _metric_attrs(name))
        for dim in rdims:  # a dim without labels (a zipped 'point') reports the position
            best = labels.at(dim, positions, found) if labels.labelled(dim) else np.where(found, positions[dim], np.nan)
            data[f"best_{dim}"] = (kdims, best, {})
        for name in labels.riders(rdims):  # inputs lying on reduced dims (zipped ones): the winner's values
            data[f"best_{name}"] = (kdims, labels.at(name, positions, found), {})
        data["found"] = (kdims, found, {})
        coords = {n: labels.coords[n] for n in labels.on(kdims)}
        attrs = {"objective": self.objective, "maximize": str(self.maximize), "where": repr(dict(self.where))}
        return Labelled(MappingProxyType(data), MappingProxyType(coords), MappingProxyType(attrs))


@dataclass(frozen=True)
class Pareto:
    """The Pareto frontier of ``x`` versus ``y`` over the ``over`` dims, per combination of the other
    dims (the kept dims). Candidates are the feasible points meeting ``where``; a candidate is on the
    frontier when no other candidate of its group is at least as good in both metrics and better in
    one (``maximize`` says, per metric, whether larger is better); exact duplicates are all kept.

    Finishes as the frontier points along a ``frontier`` dim with their kept-dim and ``over``
    coordinates and their metrics, sorted by the kept dims, then ``x`` ascending, then the C order
    of the ``over`` dims."""

    x: str
    y: str
    over: tuple[str, ...]
    where: Mapping[str, tuple[str, float]]
    maximize: tuple[bool, bool]

    @property
    def metrics(self) -> tuple[str, ...]:
        """What a chunk must compute to choose (the frontier's other metrics come at the end: complete)."""
        return _needed(self.x, self.y, *self.where)

    def partial(self, result: ChunkResult) -> dict:
        """The chunk's frontier points: the candidates (feasible, meeting ``where``) are picked first,
        so only they are gathered and sorted."""
        grid = result.grid
        ok = candidates(result, self.x, self.y, self.where)
        local = np.nonzero(ok.expand(grid.shape).cpu().numpy())  # C order
        index_all = list(local)
        xv = self._value(result, self.x, index_all)
        yv = self._value(result, self.y, index_all)
        pts = {"positions": {d: result.global_positions(d, p) for d, p in zip(grid.dims, local)}, "x": xv, "y": yv}
        keep = self._on_frontier(pts)
        return {"positions": {d: p[keep] for d, p in pts["positions"].items()}, "x": xv[keep], "y": yv[keep]}

    @staticmethod
    def _value(result: ChunkResult, name: str, index: list[np.ndarray]) -> np.ndarray:
        if name in result.values:
            return result.at(name, index).astype(float)
        t = result.metric(name)
        return t[tuple(torch.as_tensor(i, device=t.device) for i in index)].cpu().numpy().astype(float)

    def merge(self, state: dict | None, part: dict) -> dict:
        if state is None:
            return part
        joined = {
            "positions": {d: np.concatenate([state["positions"][d], p]) for d, p in part["positions"].items()},
            "x": np.concatenate([state["x"], part["x"]]),
            "y": np.concatenate([state["y"], part["y"]]),
        }
        keep = self._on_frontier(joined)
        return {
            "positions": {d: p[keep] for d, p in joined["positions"].items()},
            "x": joined["x"][keep],
            "y": joined["y"][keep],
        }

    def complete(
        self, state: dict | None, grid: Grid | Labels, at: Callable[..., dict[str, np.ndarray]]
    ) -> dict | None:
        """Every metric of the frontier points (``at``: their values at given positions)."""
        return None if state is None or not len(state["x"]) else state | {"values": at(state["positions"])}

    def _on_frontier(self, pts: dict) -> np.ndarray:
        """Which points lie on their group's frontier (groups = the kept dims' positions); the points
        are packed per group into a padded (groups, points) array for the vectorized frontier."""
        n = len(pts["x"])
        if n == 0:
            return np.zeros(0, dtype=bool)
        kdims = [d for d in pts["positions"] if d not in self.over]
        rows = [pts["positions"][d] for d in kdims]
        key = (
            np.ravel_multi_index(rows, [int(r.max()) + 1 for r in rows]) if kdims else np.zeros(n, dtype=np.int64)
        )  # one integer per group
        _, gid = np.unique(key, return_inverse=True)
        gid = gid.reshape(-1)
        order = np.argsort(gid, kind="stable")
        counts = np.bincount(gid)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        col = np.arange(n) - starts[gid[order]]
        shape = (len(counts), int(counts.max()))
        xs, ys = np.full(shape, -np.inf), np.full(shape, -np.inf)
        ok = np.zeros(shape, dtype=bool)
        sx = pts["x"] if self.maximize[0] else -pts["x"]
        sy = pts["y"] if self.maximize[1] else -pts["y"]
        xs[gid[order], col], ys[gid[order], col], ok[gid[order], col] = sx[order], sy[order], True
        on = _frontier(xs, ys, ok)
        keep = np.zeros(n, dtype=bool)
        keep[order] = on[gid[order], col]
        return keep

    def finish(self, state: dict | None, grid: Grid | Labels) -> Labelled:
        labels = Labels.of(grid)
        kdims = [d for d in labels.dims if d not in self.over]
        odims = [d for d in labels.dims if d in self.over]
        if state is None:  # no chunk had a candidate
            state = {
                "positions": {d: np.zeros(0, dtype=np.int64) for d in labels.dims},
                "x": np.zeros(0),
                "y": np.zeros(0),
                "values": {},
            }
        _completed(self, state)
        pos = state["positions"]
        oflat = (
            np.ravel_multi_index([pos[d] for d in odims], [labels.shape[labels.dims.index(d)] for d in odims])
            if odims
            else np.zeros(len(state["x"]), dtype=np.int64)
        )
        # rows: by the kept dims (C order), then x ascending, then the point's C order over the over dims
        rows = np.lexsort([oflat, state["x"], *reversed([pos[d] for d in kdims])])
        front = {d: p[rows] for d, p in pos.items()}
        coords: dict[str, tuple[tuple[str, ...], Any]] = {}
        for d in (*kdims, *odims):
            if labels.labelled(d):
                coords[d] = (("frontier",), labels.at(d, front))
            elif d in kdims:  # a kept dim without labels (a zipped 'point'): its position
                coords[d] = (("frontier",), front[d])
            for name in labels.riders((d,)):  # inputs lying on the dim (zipped ones) ride along
                coords[name] = (("frontier",), labels.at(name, front))
        for name in labels.riders(labels.dims):  # inputs lying on several dims
            coords.setdefault(name, (("frontier",), labels.at(name, front)))
        data = {name: (("frontier",), v[rows], _metric_attrs(name)) for name, v in state["values"].items()}
        attrs = {
            "x": self.x,
            "y": self.y,
            "over": repr(list(odims)),
            "maximize": repr(self.maximize),
            "where": repr(dict(self.where)),
        }
        return Labelled(
            MappingProxyType(data), MappingProxyType(coords | _scalar_coords(labels)), MappingProxyType(attrs)
        )


@dataclass(frozen=True)
class Count:
    """Points and feasible points (meeting ``where``) per combination of the ``keep`` dims; ``kshape``
    is the kept dims' shape over the whole grid. Finishes as ``points`` and ``feasible``."""

    where: Mapping[str, tuple[str, float]]
    keep: tuple[str, ...]
    kshape: tuple[int, ...]

    @property
    def metrics(self) -> tuple[str, ...]:
        return _needed(*self.where)

    def partial(self, result: ChunkResult) -> dict:
        grid = result.grid
        kdims, rdims = _split_dims(grid, self.keep)
        ok = _flatten(where_mask(result, self.where).expand(grid.shape), grid, kdims, rdims)
        kshape = tuple(grid.shape[grid.dims.index(d)] for d in kdims)
        return {
            "block": tuple(slice(*result.chunk.ranges.get(d, (0, n))) for d, n in zip(kdims, self.kshape)),
            "points": np.full(kshape, ok.shape[1], dtype=np.int64),
            "feasible": ok.sum(dim=1).cpu().numpy().reshape(kshape),
        }

    def merge(self, state: dict | None, part: dict) -> dict:
        if state is None:
            state = {"points": np.zeros(self.kshape, dtype=np.int64), "feasible": np.zeros(self.kshape, np.int64)}
        for k in ("points", "feasible"):
            state[k][part["block"]] += part[k]
        return state

    def finish(self, state: dict, grid: Grid | Labels) -> Labelled:
        labels = Labels.of(grid)
        kdims = tuple(d for d in labels.dims if d in self.keep)
        coords = {d: labels.coords[d] for d in kdims if labels.labelled(d)}
        data = {"points": (kdims, state["points"], {}), "feasible": (kdims, state["feasible"], {})}
        return Labelled(MappingProxyType(data), MappingProxyType(coords), MappingProxyType({}))


@dataclass(frozen=True)
class Combined:
    """Several reductions in one pass over the grid (each chunk evaluated once); finishes as a tuple."""

    parts: tuple[Any, ...]

    @property
    def metrics(self) -> tuple[str, ...] | None:
        """Every part's metrics (None, all of them, when a part does not say)."""
        needs = [getattr(r, "metrics", None) for r in self.parts]
        return None if any(n is None for n in needs) else _needed(*(m for n in needs for m in n))

    def complete(
        self, state: tuple | None, grid: Grid | Labels, at: Callable[..., dict[str, np.ndarray]]
    ) -> tuple | None:
        if state is None:
            return None
        return tuple(
            r.complete(s, grid, at) if callable(getattr(r, "complete", None)) else s for r, s in zip(self.parts, state)
        )

    def partial(self, result: ChunkResult) -> tuple:
        return tuple(r.partial(result) for r in self.parts)

    def merge(self, state: tuple | None, part: tuple) -> tuple:
        state = state if state is not None else (None,) * len(self.parts)
        return tuple(r.merge(s, p) for r, s, p in zip(self.parts, state, part))

    def finish(self, state: tuple, grid: Grid | Labels) -> tuple:
        return tuple(r.finish(s, grid) for r, s in zip(self.parts, state))


@dataclass(frozen=True)
class Gather:
    """Every variable of every point, as :func:`tensorperf.sweep` returns them (``breakdown``: with
    the per-op variables): each chunk's raw values and reasons, written into whole-grid arrays on the
    merging side. A sweep's chunks evaluated elsewhere (dask workers); finishes as an Evaluation."""

    shape: tuple[int, ...]
    breakdown: bool = False

    def partial(self, result: ChunkResult) -> dict:
        grid = result.grid
        extra = {k: tuple(len(result.trailing_coords[d]) for d in dims) for k, dims in result.trailing.items()}
        return {
            "block": tuple(slice(*result.chunk.ranges.get(d, (0, n))) for d, n in zip(grid.dims, self.shape)),
            "values": {
                k: v.detach().expand(grid.shape + extra.get(k, ())).cpu().numpy() for k, v in result.values.items()
            },
            "reason": result.reason.cpu().numpy(),
            "trailing": dict(result.trailing),
            "trailing_coords": dict(result.trailing_coords),
        }

    def merge(self, state: dict | None, part: dict) -> dict:
        if state is None:
            state = {
                "values": {
                    k: np.empty(self.shape + v.shape[len(self.shape) :], dtype=v.dtype)
                    for k, v in part["values"].items()
                },
                "reason": np.empty(self.shape, dtype=part["reason"].dtype),
                "trailing": part["trailing"],
                "trailing_coords": part["trailing_coords"],
            }
        block = part["block"]
        for k, v in part["values"].items():
            state["values"][k][block] = v
        state["reason"][block] = part["reason"]
        return state

    def finish(self, state: dict, grid: Grid) -> Evaluation:
        return Evaluation(
            values={k: torch.from_numpy(v) for k, v in state["values"].items()},
            reason=torch.from_numpy(state["reason"]),
            trailing=state["trailing"],
            trailing_coords=state["trailing_coords"],
        )


__all__ = [
    "COMPARISONS",
    "Condition",
    "LAYOUT_DIMS",
    "Best",
    "Combined",
    "Count",
    "Gather",
    "Labelled",
    "Pareto",
    "Reduction",
    "Variables",
    "candidates",
    "check_best",
    "check_condition",
    "check_dims",
    "check_pareto",
    "check_variable",
    "check_where",
    "conditions",
    "default_over",
    "kept_shape",
    "where_mask",
]
