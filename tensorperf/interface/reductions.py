"""Vectorized reductions of a sweep's Dataset: the best point per group under constraints, and the
Pareto frontier of two metrics per group.

No per-point Python: constraints become one boolean DataArray, the reduced dims are stacked into
one and the winner is an ``argmax`` along it; the frontier is a sort along the stacked dim and a
running maximum (``np.maximum.accumulate``).
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from tensorperf.axes import LAYOUT_AXES
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
POINT_DIM = "point"
_FALLBACK_POINT_DIM = "pareto_point"


# --------------------------------------------------------------------------- validation helpers


def _check_dataset(ds: Any) -> None:
    if not isinstance(ds, xr.Dataset):
        raise SpecError(f"ds = {ds!r} is not allowed: must be an xarray Dataset (a sweep's results)")


def _check_variable(ds: xr.Dataset, kind: str, name: Any) -> xr.DataArray:
    _check_dataset(ds)
    if not isinstance(name, str) or name not in ds.data_vars:
        raise unknown_name_error(kind, name, ds.data_vars)
    if ds[name].dtype.kind not in "biuf":
        raise SpecError(f"{kind} {name!r} is not numeric (dtype {ds[name].dtype}); choose a numeric variable")
    return ds[name]


def _dim_list(kind: str, dims: Any, available: Sequence[str]) -> list[str]:
    """A list of known, distinct dims (a bare string counts as one dim)."""
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
    return dims


def _threshold(value: Any) -> float | None:
    """A where-threshold as a float: a real number, not a bool, not NaN, within float range (±inf allowed)."""
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
        return None
    try:
        value = float(value)
    except (OverflowError, TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def _check_where(ds: xr.Dataset, where: Any, dims: Sequence[str] | None) -> dict[str, tuple[str, Any]]:
    if where is None:
        return {}
    if not isinstance(where, Mapping):
        raise SpecError(f"where = {where!r} is not allowed: must be a mapping {{variable: (comparison, value)}}")
    out = {}
    for name, cond in where.items():
        if not isinstance(name, str) or name not in ds.data_vars:
            raise unknown_name_error("variable in where", name, ds.data_vars)
        condition = check_condition(name, cond)
        if ds[name].dtype.kind not in "biuf":
            raise SpecError(f"where[{name!r}]: variable {name!r} is not numeric (dtype {ds[name].dtype})")
        if dims is not None:
            extra = [d for d in ds[name].dims if d not in dims]
            if extra:
                raise SpecError(
                    f"where[{name!r}]: variable {name!r} has dimension(s) {extra} that the "
                    f"reduced variables lack (they have {list(dims)})"
                )
        out[name] = condition
    return out


def check_condition(name: str, cond: Any) -> tuple[str, float]:
    """One ``where`` entry: (comparison, real number), the number as a float."""
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
            f"with comparison in {', '.join(COMPARISONS)} and a real number value (not NaN)"
        )
    return cond[0], _threshold(cond[1])


def constraint_mask(
    ds: xr.Dataset, where: Mapping[str, tuple[str, float]] | None, dims: Sequence[str] | None = None
) -> xr.DataArray:
    """feasible AND every ``variable (comparison) value`` in ``where`` (NaN never qualifies).

    A Dataset without a ``feasible`` variable counts as all feasible. With ``dims``, every variable
    in ``where`` must lie on those dims only (so the mask cannot add a dimension)."""
    _check_dataset(ds)
    where = _check_where(ds, where, dims)
    ok = ds["feasible"].astype(bool) if "feasible" in ds.data_vars else xr.DataArray(True)
    for name, (comparison, value) in where.items():
        ok = ok & COMPARISONS[comparison](ds[name], value)
    return ok


# --------------------------------------------------------------------------- best


def best(
    ds: xr.Dataset,
    objective: str,
    *,
    where: Mapping[str, tuple[str, float]] | None = None,
    keep: Sequence[str] = (),
    maximize: bool = True,
) -> xr.Dataset:
    """The point maximizing (or minimizing) ``objective`` among feasible points meeting ``where``,
    for each combination of the ``keep`` dims. Returns the winner's coordinates (``best_<dim>``, and
    ``best_<name>`` for inputs zipped on a reduced dim), its scalar metrics, and ``found`` (False
    where no point qualifies; metrics and numeric coordinates NaN there). Ties: the first point in
    the stacked (C) order of the reduced dims wins."""
    score = _check_variable(ds, "objective", objective)
    keep = _dim_list("keep", keep, score.dims)
    if not isinstance(maximize, (bool, np.bool_)):
        raise SpecError(f"maximize = {maximize!r} is not allowed: must be True or False")
    ok = constraint_mask(ds, where, score.dims)
    score = score.where(ok)
    reduce_dims = [d for d in score.dims if d not in keep]
    if not reduce_dims:
        raise SpecError(f"nothing to choose from: every dimension of {objective} is in keep={list(keep)}")
    flat = score.stack(_point=reduce_dims)
    fill = -np.inf if maximize else np.inf
    filled = flat.fillna(fill)
    index = filled.argmax("_point") if maximize else filled.argmin("_point")
    found = flat.notnull().any("_point")
    scalar_vars = [v for v in ds.data_vars if set(ds[v].dims) <= set(score.dims) and ds[v].dtype.kind in "fb"]
    picked = ds[scalar_vars].stack(_point=list(reduce_dims)).isel(_point=index)
    out = xr.Dataset({v: picked[v].where(found) for v in scalar_vars if picked[v].dtype.kind == "f"})
    for dim in reduce_dims:
        out[f"best_{dim}"] = picked[dim].where(found) if picked[dim].dtype.kind in "iuf" else picked[dim]
    # inputs zipped on a reduced dim (e.g. tp, pp on 'point') are coordinates of the winner too
    riders = [c for c in ds.coords if c not in ds.dims and ds[c].dims and set(ds[c].dims) <= set(reduce_dims)]
    for name in riders:
        out[f"best_{name}"] = picked[name].where(found) if picked[name].dtype.kind in "iuf" else picked[name]
    out["found"] = found
    out.attrs.update(objective=objective, maximize=str(maximize), where=repr(dict(where or {})))
    return out.drop_vars(["_point", *reduce_dims, *riders], errors="ignore")


def best_table(ds: xr.Dataset, objective: str, where: Any, keep: Sequence[str]) -> list[dict[str, Any]]:
    """Rows (dicts) of ``best`` for printing: one per combination of the kept dims."""
    res = best(ds, objective, where=where, keep=keep)
    frame = res.to_dataframe().reset_index()
    return frame.to_dict("records")


# --------------------------------------------------------------------------- pareto


def default_over(ds: xr.Dataset, dims: Sequence[str]) -> list[str]:
    """The layout and batch dims among ``dims``: those named in :data:`LAYOUT_DIMS` and those a
    layout input is zipped on (e.g. ``point`` when ``zipped=["tp", "pp"]``)."""
    over = []
    for dim in dims:
        riders = [c for c in ds.coords if c in LAYOUT_DIMS and ds[c].dims == (dim,)]
        if dim in LAYOUT_DIMS or riders:
            over.append(dim)
    return over


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


def pareto(
    ds: xr.Dataset,
    x: str = "tokens_per_s_per_user",
    y: str = "tokens_per_s_per_gpu",
    *,
    over: Sequence[str] | None = None,
    where: Mapping[str, tuple[str, float]] | None = None,
    maximize: tuple[bool, bool] = (True, True),
) -> xr.Dataset:
    """The Pareto frontier of ``x`` versus ``y`` over the ``over`` dims, for each combination of the
    other dims (the kept dims) of ``x`` and ``y``.

    Candidates are the feasible points meeting ``where``; a candidate is on the frontier when no
    other candidate of its group is at least as good in both metrics and better in one (``maximize``
    says, per metric, whether larger is better). Exact duplicates are all kept.

    ``over`` defaults to the layout and batch dims present (:data:`LAYOUT_DIMS`, plus a zipped dim
    carrying one of them). Returns a Dataset with dims ``(kept..., point)`` where ``point`` indexes
    the combinations of ``over`` in C order (named ``pareto_point`` if ``point`` is a kept dim),
    holding ``on_frontier``, ``eligible`` (the candidate mask), ``x`` and ``y`` under their own names,
    ``found`` (kept dims: the group has a candidate) and, as coordinates along ``point``, the
    ``over`` dims' labels and any input zipped on them (``tp``, ``pp``, ...)."""
    return _pareto(ds, x, y, over=over, where=where, maximize=maximize, extra=())


def _pareto(
    ds: xr.Dataset, x: str, y: str, *, over: Sequence[str] | None, where: Any, maximize: Any, extra: Sequence[str]
) -> xr.Dataset:
    xa = _check_variable(ds, "x", x)
    ya = _check_variable(ds, "y", y)
    if x == y:
        raise SpecError(f"x and y are both {x!r}; a frontier needs two different variables")
    if not (
        isinstance(maximize, (tuple, list))
        and len(maximize) == 2
        and all(isinstance(m, (bool, np.bool_)) for m in maximize)
    ):
        raise SpecError(f"maximize = {maximize!r} is not allowed: must be a pair of booleans (for x, y)")
    xa, ya = xr.broadcast(xa, ya)
    dims = list(xa.dims)
    if over is None:
        over = default_over(ds, dims)
        if not over:
            raise SpecError(
                f"no layout or batch dimension ({', '.join(LAYOUT_DIMS)}) is swept in "
                f"{x}/{y} (dims {dims}); pass over=[...]"
            )
    else:
        over = _dim_list("over", over, dims)
        if not over:
            raise SpecError("over is empty; name the dimensions to take the frontier over")
    extras = {}
    for name in extra:
        var = _check_variable(ds, "variable in extra", name)
        outside = [d for d in var.dims if d not in dims]
        if outside:
            raise SpecError(f"extra variable {name!r} has dimension(s) {outside} that {x}/{y} lack")
        if name not in (x, y):
            extras[name] = var.broadcast_like(xa)
    kept = [d for d in dims if d not in over]
    point = POINT_DIM if POINT_DIM not in kept else _FALLBACK_POINT_DIM
    ok = constraint_mask(ds, where, dims).broadcast_like(xa)

    order = kept + list(over)
    kept_shape = tuple(xa.sizes[d] for d in kept)
    grid_shape = tuple(xa.sizes[d] for d in over)
    n = int(np.prod(grid_shape))

    def flat(arr: xr.DataArray) -> np.ndarray:
        return arr.transpose(*order).values.reshape(kept_shape + (n,))

    xv, yv, okv = flat(xa), flat(ya), flat(ok).astype(bool)
    okv = okv & ~np.isnan(xv.astype(float)) & ~np.isnan(yv.astype(float))
    xs = np.where(okv, xv if maximize[0] else -xv, -np.inf).astype(float)
    ys = np.where(okv, yv if maximize[1] else -yv, -np.inf).astype(float)
    on = _frontier(xs, ys, okv)

    pdims = (*kept, point)
    coords: dict[str, Any] = {}
    template = xr.DataArray(np.empty(grid_shape), dims=over)
    for c in ds.coords:
        cdims = ds[c].dims
        if set(cdims) <= set(kept):  # scalar coords and labels of the kept dims
            coords[c] = ds[c].variable
        elif set(cdims) <= set(over) and c != point:  # labels of each point, flattened in C order
            coords[c] = (point, ds[c].broadcast_like(template).transpose(*over).values.reshape(n))
    data = {
        "on_frontier": (pdims, on),
        "eligible": (pdims, okv),
        x: (pdims, xv, dict(xa.attrs)),
        y: (pdims, yv, dict(ya.attrs)),
    }
    data.update({name: (pdims, flat(var), dict(var.attrs)) for name, var in extras.items()})
    data["found"] = (tuple(kept), okv.any(axis=-1))
    out = xr.Dataset(data, coords=coords)
    out.attrs.update(
        x=x,
        y=y,
        over=repr(list(over)),
        point_dim=point,
        maximize=repr(tuple(bool(m) for m in maximize)),
        where=repr(dict(where or {})),
    )
    return out


def pareto_table(
    ds: xr.Dataset,
    x: str = "tokens_per_s_per_user",
    y: str = "tokens_per_s_per_gpu",
    *,
    over: Sequence[str] | None = None,
    where: Mapping[str, tuple[str, float]] | None = None,
    maximize: tuple[bool, bool] = (True, True),
    extra: Sequence[str] = (),
) -> pd.DataFrame:
    """The frontier points of :func:`pareto` as a tidy table: one row per frontier point with the
    kept dims, the point's layout coordinates, ``x``, ``y`` and the ``extra`` variables (which must
    lie on the dims of ``x``/``y``), sorted by the kept dims and then by ``x`` ascending."""
    if isinstance(extra, str):
        extra = (extra,)
    if not isinstance(extra, (list, tuple)):
        raise SpecError(f"extra = {extra!r} is not allowed: must be a list of variable names")
    front = _pareto(ds, x, y, over=over, where=where, maximize=maximize, extra=tuple(extra))
    point = front.attrs["point_dim"]
    kept = [d for d in front["on_frontier"].dims if d != point]
    labels = [c for c in front.coords if front[c].dims == (point,)]
    values = [x, y, *(v for v in extra if v not in (x, y))]
    idx = np.nonzero(front["on_frontier"].values)
    data: dict[str, Any] = {}
    for axis, dim in enumerate(kept):
        ticks = front[dim].values if dim in front.coords else np.arange(front.sizes[dim])
        data[dim] = ticks[idx[axis]]
    for c in labels:
        data[c] = front[c].values[idx[-1]]
    for name in values:
        data[name] = front[name].values[idx]
    # rows in the Dataset's order of the kept dims, then by x ascending
    rows = np.lexsort((front[x].values[idx], *reversed(idx[:-1])))
    frame = pd.DataFrame({k: np.asarray(v)[rows] for k, v in data.items()}, columns=[*kept, *labels, *values])
    return frame
