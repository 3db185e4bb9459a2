"""The reductions of a sweep's Dataset in memory (``ds.tperf.best`` / ``pareto`` / ``pareto_table``):
the streamed reductions of :mod:`tensorperf.run.reductions`, run on the Dataset taken as one chunk.

Only xarray glue lives here: the Dataset's variables become the chunk's tensors (views of their
arrays, :func:`chunk_of`), its dims and coordinates the :class:`~tensorperf.run.chunks.Labels` the
reductions report with, and the winners' other variables are read from the Dataset (not evaluated
again). The checks of the arguments, the choice of winners and of frontier points, and the order of
a frontier's rows are the streamed ones.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
import torch
import xarray as xr

from tensorperf.interface.dataset import as_counts, is_count, labelled_dataset
from tensorperf.run import reductions as run
from tensorperf.run.chunks import WHOLE, ChunkResult, Labels
from tensorperf.run.executors import execute_whole, merged
from tensorperf.run.reductions import COMPARISONS, LAYOUT_DIMS  # noqa: F401  (re-exported for the interface)
from tensorperf.validation import SpecError

POINT_DIM = "point"
_FALLBACK_POINT_DIM = "pareto_point"


# --------------------------------------------------------------------------- the Dataset as one chunk


def _check_dataset(ds: Any) -> None:
    if not isinstance(ds, xr.Dataset):
        raise SpecError(f"ds = {ds!r} is not allowed: must be an xarray Dataset (a sweep's results)")


def _variables(ds: xr.Dataset) -> run.Variables:
    """What a reduction of ``ds`` may name: every data variable, with its dims and dtype."""
    return MappingProxyType({name: (tuple(ds[name].dims), ds[name].dtype) for name in ds.data_vars})


def labels_of(ds: xr.Dataset, dims: Sequence[str]) -> Labels:
    """The Labels of ``ds`` on ``dims`` (in that order): the coordinates lying on those dims only."""
    coords = {c: (tuple(ds[c].dims), ds[c].values) for c in ds.coords if set(ds[c].dims) <= set(dims)}
    return Labels(tuple(dims), tuple(int(ds.sizes[d]) for d in dims), MappingProxyType(coords))


def _tensor(da: xr.DataArray, dims: Sequence[str]) -> torch.Tensor:
    """A variable's values as a tensor on ``dims`` (size 1 on the dims it lacks), a view when it can be."""
    arr = np.asarray(da.transpose(*(d for d in dims if d in da.dims)).values)
    arr = np.expand_dims(arr, tuple(i for i, d in enumerate(dims) if d not in da.dims))
    if not arr.dtype.isnative or any(s < 0 for s in arr.strides):
        arr = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("="))
    with warnings.catch_warnings():  # a read-only array (a file's) is only read here
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(arr)


def chunk_of(ds: xr.Dataset, dims: Sequence[str], names: Iterable[str]) -> ChunkResult:
    """``ds`` on ``dims`` as the one chunk of a reduction: the variables ``names`` as its values, and
    its feasibility from ``feasible`` (every point feasible without it)."""
    values = {name: _tensor(ds[name], dims) for name in dict.fromkeys(names)}
    if "feasible" in ds.data_vars:
        outside = [d for d in ds["feasible"].dims if d not in dims]
        if outside:
            raise SpecError(
                f"feasible has dimension(s) {outside} that the reduced variables lack (they have {list(dims)})"
            )
        reason = (~_tensor(ds["feasible"], dims).to(torch.bool)).to(torch.int64)
    else:
        reason = torch.zeros((1,) * len(dims), dtype=torch.int64)
    return ChunkResult(labels_of(ds, dims), WHOLE, MappingProxyType(values), reason)


def _reader(ds: xr.Dataset, names: Iterable[str]) -> Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]]:
    """``at(positions)``: the variables ``names`` at points given by their positions on each dim
    (integers as float64, as the engine computes them: the reductions keep float values)."""
    names = list(dict.fromkeys(names))

    def at(positions: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        k = len(next(iter(positions.values()))) if positions else 1
        out = {}
        for name in names:
            da = ds[name]
            picked = np.asarray(da.values[tuple(positions[d] for d in da.dims)])
            picked = picked.astype(np.float64) if picked.dtype.kind in "iu" else picked
            out[name] = np.broadcast_to(picked, (k,)) if picked.ndim == 0 else picked
        return out

    return at


def _with_attrs(out: xr.Dataset, ds: xr.Dataset) -> xr.Dataset:
    """The variables read from ``ds`` keep its attributes."""
    for name in out.data_vars:
        if name in ds.data_vars:
            out[name].attrs = dict(ds[name].attrs)
    return out


# --------------------------------------------------------------------------- entry points


def constraint_mask(
    ds: xr.Dataset, where: Mapping[str, tuple[str, float]] | None, dims: Sequence[str] | None = None
) -> xr.DataArray:
    """feasible AND every ``variable (comparison) value`` in ``where`` (NaN never qualifies).

    A Dataset without a ``feasible`` variable counts as all feasible. With ``dims``, every variable
    in ``where`` must lie on those dims only (so the mask cannot add a dimension)."""
    _check_dataset(ds)
    where = run.check_where(where, _variables(ds), dims)
    ok = ds["feasible"].astype(bool) if "feasible" in ds.data_vars else xr.DataArray(True)
    for name, comparison, value in run.conditions(where):
        ok = ok & COMPARISONS[comparison](ds[name], value)
    return ok


def best(
    ds: xr.Dataset,
    objective: str,
    *,
    where: Mapping[str, tuple[str, float]] | None = None,
    keep: Sequence[str] = (),
    maximize: bool | None = None,
) -> xr.Dataset:
    """The point maximizing (or minimizing) ``objective`` among feasible points meeting ``where``,
    for each combination of the ``keep`` dims (:class:`tensorperf.run.reductions.Best` on the
    Dataset). Returns the winner's coordinates (``best_<dim>``, and ``best_<name>`` for inputs zipped
    on a reduced dim), its float and count variables, and ``found`` (False where no point qualifies;
    float variables NaN there, integer ones 0: counts and integer coordinates are int64). Ties: the
    first point in the C order of the reduced dims."""
    _check_dataset(ds)
    objective, where, keep, maximize = run.check_best(_variables(ds), objective, where, keep, maximize)
    dims = ds[objective].dims
    chunk = chunk_of(ds, dims, [objective, *where])
    reduction = run.Best(objective, MappingProxyType(where), keep, maximize, run.kept_shape(chunk.grid, keep))
    reported = [v for v in ds.data_vars if set(ds[v].dims) <= set(dims) and (ds[v].dtype.kind == "f" or is_count(v))]
    return _with_attrs(labelled_dataset(execute_whole(reduction, chunk, _reader(ds, reported))), ds)


def default_over(ds: xr.Dataset, dims: Sequence[str]) -> list[str]:
    """The layout and batch dims among ``dims`` (:func:`tensorperf.run.reductions.default_over`):
    those named in :data:`LAYOUT_DIMS` and those a layout input is zipped on (``point``)."""
    return list(run.default_over(labels_of(ds, tuple(ds.sizes)), dims))


def _frontier_setup(ds: Any, x: Any, y: Any, over: Any, where: Any, maximize: Any, extra: Any = ()) -> tuple:
    """The checked arguments of a frontier of ``ds``, the kept dims, the point dim's name, and the
    Dataset as one chunk on the kept dims then the ``over`` dims (the point order)."""
    _check_dataset(ds)
    x, y, where, over, maximize, dims, extra = run.check_pareto(
        labels_of(ds, tuple(ds.sizes)), _variables(ds), x, y, where, over, maximize, extra
    )
    kept = [d for d in dims if d not in over]
    point = POINT_DIM if POINT_DIM not in kept else _FALLBACK_POINT_DIM
    chunk = chunk_of(ds, (*kept, *over), [x, y, *where])
    reduction = run.Pareto(x, y, over, MappingProxyType(where), maximize)
    return reduction, dims, kept, point, chunk, extra


def pareto(
    ds: xr.Dataset,
    x: str = "tokens_per_s_per_user",
    y: str = "tokens_per_s_per_gpu",
    *,
    over: Sequence[str] | None = None,
    where: Mapping[str, tuple[str, float]] | None = None,
    maximize: tuple[bool, bool] | None = None,
) -> xr.Dataset:
    """The Pareto frontier of ``x`` versus ``y`` over the ``over`` dims, for each combination of the
    other dims (the kept dims) of ``x`` and ``y`` (:class:`tensorperf.run.reductions.Pareto` on the
    Dataset).

    Candidates are the feasible points meeting ``where``; a candidate is on the frontier when no
    other candidate of its group is at least as good in both metrics and better in one (``maximize``
    says, per metric, whether larger is better). Exact duplicates are all kept.

    ``over`` defaults to the layout and batch dims present (:data:`LAYOUT_DIMS`, plus a zipped dim
    carrying one of them). Returns a Dataset with dims ``(kept..., point)`` where ``point`` indexes
    the combinations of ``over`` in C order (named ``pareto_point`` if ``point`` is a kept dim),
    holding ``on_frontier``, ``eligible`` (the candidate mask), ``x`` and ``y`` under their own names,
    ``found`` (kept dims: the group has a candidate) and, as coordinates along ``point``, the
    ``over`` dims' labels and any input zipped on them (``tp``, ``pp``, ...)."""
    reduction, dims, kept, point, chunk, _ = _frontier_setup(ds, x, y, over, where, maximize)
    x, y, over = reduction.x, reduction.y, list(reduction.over)
    shape = chunk.grid.shape
    kept_shape, grid_shape = shape[: len(kept)], shape[len(kept) :]
    n = int(np.prod(grid_shape))
    state = merged(reduction, chunk)
    on = np.zeros(shape, dtype=bool)
    if state["x"].size:
        on[tuple(state["positions"][d] for d in chunk.grid.dims)] = True
    okv = run.candidates(chunk, x, y, reduction.where).expand(shape).cpu().numpy().reshape(kept_shape + (n,))

    xa, ya = xr.broadcast(ds[x], ds[y])

    def flat(arr: xr.DataArray) -> np.ndarray:
        return arr.transpose(*chunk.grid.dims).values.reshape(kept_shape + (n,))

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
        "on_frontier": (pdims, on.reshape(kept_shape + (n,))),
        "eligible": (pdims, okv),
        x: (pdims, flat(xa), dict(xa.attrs)),
        y: (pdims, flat(ya), dict(ya.attrs)),
        "found": (tuple(kept), okv.any(axis=-1)),
    }
    out = xr.Dataset(data, coords=coords)
    out.attrs.update(
        x=x,
        y=y,
        over=repr(over),
        point_dim=point,
        maximize=repr(reduction.maximize),
        where=repr(dict(reduction.where)),
    )
    return out


def pareto_table(
    ds: xr.Dataset,
    x: str = "tokens_per_s_per_user",
    y: str = "tokens_per_s_per_gpu",
    *,
    over: Sequence[str] | None = None,
    where: Mapping[str, tuple[str, float]] | None = None,
    maximize: tuple[bool, bool] | None = None,
    extra: Sequence[str] = (),
) -> pd.DataFrame:
    """The frontier points of :func:`pareto` as a tidy table: one row per frontier point with the
    kept dims, the point's layout coordinates, ``x``, ``y`` and the ``extra`` variables (which must
    lie on the dims of ``x``/``y``), sorted by the kept dims and then by ``x`` ascending (then the
    points' order): the rows of the streamed :func:`tensorperf.pareto`."""
    reduction, dims, kept, point, chunk, extra = _frontier_setup(ds, x, y, over, where, maximize, extra)
    x, y = reduction.x, reduction.y
    values = [x, y, *(v for v in extra if v not in (x, y))]
    front = execute_whole(reduction, chunk, _reader(ds, values))
    labels = [c for c in ds.coords if ds[c].dims and set(ds[c].dims) <= set(reduction.over) and c != point]
    data: dict[str, Any] = {}
    for name in (*kept, *labels):
        data[name] = front.coords[name][1]
    for name in values:
        data[name] = front.data[name][1] if name in front.data else ds[name].values.reshape(-1)[:0]
        data[name] = as_counts(data[name]) if is_count(name) else data[name]
    return pd.DataFrame({k: np.asarray(v) for k, v in data.items()}, columns=[*kept, *labels, *values])
