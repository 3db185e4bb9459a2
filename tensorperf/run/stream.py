"""Streaming reductions over grids larger than memory: the grid is evaluated chunk by chunk and only
a running reduction is kept (the best point per group, a Pareto frontier, or any :class:`Reduction`
a user writes), so the full grid never exists.

A chunk is a Cartesian block that is also a contiguous range of the grid's C-order flat index (the
trailing dims whole, one dim split into ranges, each leading dim one position at a time). Chunks
come in C order and every point's metrics are computed by the same elementwise arithmetic whatever
the chunk around it (the engine has no cross-point sums), so a reduction merged in chunk order sees
the same numbers in the same order as the unchunked one: ties resolve alike and results are equal
bit for bit, for any chunk size.

Chunks run in this process, or on a dask.distributed cluster (``client=``: a ``Client`` or a
scheduler address): workers evaluate and reduce chunks, the client merges the small partial results
in chunk order, so a cluster gives exactly the single-process result.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import numbers
import re
import sys
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol

import numpy as np
import torch
import xarray as xr

from tensorperf.engine.conventions import CONVENTIONS
from tensorperf.engine.grid import ZIP_DIM, Grid
from tensorperf.engine.metrics import METRICS, Evaluation
from tensorperf.interface.reductions import COMPARISONS, LAYOUT_DIMS, _dim_list, _frontier, check_condition
from tensorperf.run.allocator import keep_freed_memory
from tensorperf.run.inputs import build_grid, check_efficiency
from tensorperf.validation import SpecError, unknown_name_error

# Peak working memory of the engine per grid point of a chunk (breakdown off): measured 413 B (float64)
# and 166 B (float32) of peak RSS growth on a 1.1M-point evaluation (benchmarks/scale.py); about 2x margin.
BYTES_PER_POINT = MappingProxyType({torch.float64: 800, torch.float32: 450})
DEFAULT_MEMORY = 2 * 2**30  # bytes of working memory per chunk
# Chunks are also capped at 16 MiB per grid-sized tensor (2^21 points in float64, 2^22 in float32): the
# fastest size measured (benchmarks/README.md); larger tensors pass glibc's 32 MiB mmap limit and fault
# their pages in on every allocation.
FAST_CHUNK_BYTES = 16 * 2**20
_UNITS = MappingProxyType(
    {
        "": 1,
        "B": 1,
        "KB": 10**3,
        "MB": 10**6,
        "GB": 10**9,
        "TB": 10**12,
        "KIB": 2**10,
        "MIB": 2**20,
        "GIB": 2**30,
        "TIB": 2**40,
    }
)


# --------------------------------------------------------------------------- chunks


@dataclass(frozen=True)
class Chunk:
    """Positions ``start:stop`` of the dims in ``ranges`` (the other dims whole); ``index`` is the
    chunk's rank in C order."""

    index: int
    ranges: Mapping[str, tuple[int, int]]


def points_for_memory(memory: Any, dtype: torch.dtype) -> int:
    """Grid points per chunk that fit a working-memory budget (bytes, or a string such as '2GB')."""
    nbytes = memory
    if isinstance(memory, str):
        match = re.fullmatch(r"\s*([0-9.eE+]+)\s*([A-Za-z]*)\s*", memory)
        unit = match.group(2).upper() if match else None
        if not match or unit not in _UNITS:
            raise SpecError(
                f"memory = {memory!r} is not allowed: must be a number of bytes or a size such as "
                f"'512MB' or '2GiB' (units {', '.join(u for u in _UNITS if u)})"
            )
        try:
            nbytes = float(match.group(1)) * _UNITS[unit]
        except ValueError:
            raise SpecError(f"memory = {memory!r} is not allowed: {match.group(1)!r} is not a number") from None
    if isinstance(nbytes, bool) or not isinstance(nbytes, numbers.Real) or not math.isfinite(nbytes) or nbytes <= 0:
        raise SpecError(
            f"memory = {memory!r} is not allowed: must be a positive number of bytes or a size such as '2GB'"
        )
    itemsize = torch.empty((), dtype=dtype).element_size()
    return max(1, min(int(nbytes // BYTES_PER_POINT[dtype]), FAST_CHUNK_BYTES // itemsize))


def plan(grid: Grid, max_points: int) -> tuple[int, Iterator[Chunk]]:
    """(number of chunks, the chunks in C order), each at most ``max_points`` points."""
    if isinstance(max_points, bool) or not isinstance(max_points, numbers.Integral) or max_points < 1:
        raise SpecError(f"chunk_points = {max_points!r} is not allowed: must be an integer >= 1")
    dims, shape = grid.dims, grid.shape
    k, inner = len(dims), 1
    while k > 0 and inner * shape[k - 1] <= max_points:  # trailing dims that fit whole
        inner *= shape[k - 1]
        k -= 1
    if k == 0:
        return 1, iter([Chunk(0, MappingProxyType({}))])
    split = k - 1
    step = max(1, int(max_points) // inner)
    starts = range(0, shape[split], step)
    count = math.prod(shape[:split]) * len(starts)

    def chunks() -> Iterator[Chunk]:
        outer = itertools.product(*(range(n) for n in shape[:split]))
        for i, (pos, start) in enumerate(itertools.product(outer, starts)):
            ranges = {d: (p, p + 1) for d, p in zip(dims[:split], pos)}
            ranges[dims[split]] = (start, min(start + step, shape[split]))
            yield Chunk(i, MappingProxyType(ranges))

    return count, chunks()


# --------------------------------------------------------------------------- one chunk's metrics


@dataclass(frozen=True)
class ChunkResult:
    """The scalar metrics of one chunk (tensors broadcastable to ``grid.shape``) and its reasons; with
    ``trailing`` (a reduction that asks for the breakdown), the per-op variables too, whose trailing
    result dims (name -> dims) follow the grid's."""

    grid: Grid  # the chunk's own grid
    chunk: Chunk
    values: Mapping[str, torch.Tensor]
    reason: torch.Tensor
    trailing: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    trailing_coords: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)

    @property
    def feasible(self) -> torch.Tensor:
        return self.reason == 0

    def metric(self, name: str) -> torch.Tensor:
        """A metric at the chunk's full shape, NaN where infeasible for masked metrics (as in sweep)."""
        if name == "feasible":
            return self.feasible
        if name == "infeasible_reason":
            return self.reason
        t = self.values[name].expand(self.grid.shape)
        if METRICS[name].masked:
            t = torch.where(self.feasible, t, torch.full((), math.nan, dtype=t.dtype, device=t.device))
        return t

    def at(self, name: str, index: Sequence[np.ndarray]) -> np.ndarray:
        """Values of a metric at chunk-local positions (one index array per dim) without expanding it
        to the chunk's shape: a broadcast (size-1) axis is indexed at 0."""
        t = self.values[name]
        t = t.reshape((1,) * (len(index) - t.dim()) + tuple(t.shape))  # (a metric may have fewer dims)
        idx = tuple(torch.as_tensor(i if n > 1 else np.zeros_like(i), device=t.device) for i, n in zip(index, t.shape))
        return t[idx].cpu().numpy()

    def global_positions(self, dim: str, local: np.ndarray) -> np.ndarray:
        return local + self.chunk.ranges.get(dim, (0, 0))[0]


def evaluate_chunk(
    grid: Grid,
    chunk: Chunk,
    convention: str,
    overrides: Mapping[str, float],
    metrics: Collection[str] | None = None,
    breakdown: bool = False,
) -> ChunkResult:
    """Evaluate one chunk of ``grid`` (scalar metrics; the per-op breakdown too with ``breakdown``);
    ``metrics``: the ones a reduction needs (default all; the engine skips the passes none of them
    needs)."""
    sub = grid.block(chunk.ranges)
    with torch.no_grad():
        ev = CONVENTIONS[convention](sub, overrides, breakdown=breakdown, metrics=metrics)
    if not breakdown:
        values = {k: v for k, v in ev.values.items() if k not in ev.trailing}
        return ChunkResult(sub, chunk, MappingProxyType(values), ev.reason.expand(sub.shape))
    return ChunkResult(
        sub,
        chunk,
        MappingProxyType(dict(ev.values)),
        ev.reason.expand(sub.shape),
        MappingProxyType(dict(ev.trailing)),
        MappingProxyType(dict(ev.trailing_coords)),
    )


def metrics_at(
    grid: Grid, positions: Mapping[str, np.ndarray], convention: str, overrides: Mapping[str, float]
) -> dict[str, np.ndarray]:
    """Every scalar metric at K points of ``grid`` (``positions[dim]``: their K positions on each dim),
    evaluated as one grid of K zipped points: the winners of a reduction that chose them on a few
    metrics. Each point goes through the same elementwise arithmetic as in any chunk, so its metrics
    equal the chunk's bit for bit. K = 0 gives empty arrays (of every metric's dtype)."""
    k = len(positions[grid.dims[0]]) if grid.dims else 1
    take = {d: np.asarray(positions[d], dtype=np.int64) if k else np.zeros(1, dtype=np.int64) for d in grid.dims}
    values, labels, zipped = dict(grid.values), dict(grid.labels), []
    for name in grid.values:
        dim = grid.dim_of(name)
        if dim is not None:
            values[name] = tuple(grid.values[name][i] for i in take[dim])
            labels[name] = tuple(grid.labels[name][i] for i in take[dim])
            zipped.append(name)
    points = dataclasses.replace(
        grid,
        values=MappingProxyType(values),
        labels=MappingProxyType(labels),
        dims=(ZIP_DIM,) if zipped else (),
        zipped=tuple(zipped),
    )
    with torch.no_grad():
        ev = CONVENTIONS[convention](points, overrides, breakdown=False)
    return {
        n: v.expand(points.shape).reshape(-1).cpu().numpy()[:k] for n, v in ev.values.items() if n not in ev.trailing
    }


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
    :func:`metrics_at`, every metric at the given points (how Best and Pareto report their winners'
    full metrics after choosing them on a few)."""

    def partial(self, result: ChunkResult) -> Any: ...

    def merge(self, state: Any, partial: Any) -> Any: ...

    def finish(self, state: Any, grid: Grid) -> Any: ...


def _where_mask(result: ChunkResult, where: Mapping[str, tuple[str, float]]) -> torch.Tensor:
    """Feasible and meeting every condition. Conditions are compared on the metrics' own broadcast
    shapes, unmasked: where a metric is masked (NaN) the point is infeasible, so the AND is the same."""
    ok = result.feasible
    for name, (comparison, value) in where.items():
        raw = result.values.get(name)
        ok = ok & COMPARISONS[comparison](result.metric(name) if raw is None else raw, value)
    return ok


def kept_shape(grid: Grid, keep: Sequence[str]) -> tuple[int, ...]:
    """The shape of the ``keep`` dims of a grid (in grid order): the state shape of Best and Count."""
    return tuple(n for d, n in zip(grid.dims, grid.shape) if d in keep)


def _split_dims(grid: Grid, keep: Sequence[str]) -> tuple[list[str], list[str]]:
    return [d for d in grid.dims if d in keep], [d for d in grid.dims if d not in keep]


def _flatten(t: torch.Tensor, grid: Grid, first: Sequence[str], second: Sequence[str]) -> torch.Tensor:
    """A chunk-shaped tensor as (prod of ``first`` dims, prod of ``second`` dims), C order each."""
    perm = [grid.dims.index(d) for d in (*first, *second)]
    n_first = math.prod(grid.shape[grid.dims.index(d)] for d in first)
    return t.permute(perm).reshape(n_first, -1)


def _scalar_coords(grid: Grid) -> dict[str, Any]:
    return {n: lab[0] for n, lab in grid.labels.items() if grid.dim_of(n) is None}


def _label(grid: Grid, name: str, pos: np.ndarray, found: np.ndarray | None = None) -> np.ndarray:
    labels = np.asarray(grid.labels[name])
    out = labels[pos]
    if found is not None and out.dtype.kind in "iuf":
        out = np.where(found, out, np.nan)
    return out


@dataclass(frozen=True)
class Best:
    """The point maximizing (or minimizing) ``objective`` among feasible points meeting ``where``, per
    combination of the ``keep`` dims (semantics of :func:`tensorperf.reductions.best`); ``kshape`` is
    the shape of the kept dims over the whole grid (the state's shape)."""

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
            _where_mask(result, self.where), value, torch.full((), fill, dtype=value.dtype, device=value.device)
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

    def complete(self, state: dict | None, grid: Grid, at: Callable[..., dict[str, np.ndarray]]) -> dict | None:
        """Every metric of the winners (``at``: :func:`metrics_at` on ``grid``), NaN where none was found."""
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

    def finish(self, state: dict, grid: Grid) -> xr.Dataset:
        _completed(self, state)
        kdims, rdims = _split_dims(grid, self.keep)
        positions, found = state["positions"], state["score"] > -math.inf
        data: dict[str, Any] = {}
        for name, v in state["values"].items():
            if v.dtype.kind == "f":
                meta = METRICS[name]
                data[name] = (
                    kdims,
                    np.where(found, v, np.nan).astype(v.dtype),
                    {"units": meta.units, "long_name": meta.long_name},
                )
        for dim in rdims:  # a dim without labels (a zipped 'point') reports the position
            data[f"best_{dim}"] = (
                kdims,
                _label(grid, dim, positions[dim], found)
                if dim in grid.labels
                else np.where(found, positions[dim], np.nan),
            )
        for name in grid.zipped:  # inputs zipped on a reduced dim: the winner's values
            if grid.dim_of(name) in rdims:
                data[f"best_{name}"] = (kdims, _label(grid, name, positions[grid.dim_of(name)], found))
        data["found"] = (kdims, found)
        coords = {d: list(grid.labels[d]) for d in kdims if d in grid.labels} | _scalar_coords(grid)
        out = xr.Dataset(data, coords=coords)
        out.attrs.update(objective=self.objective, maximize=str(self.maximize), where=repr(dict(self.where)))
        return out


@dataclass(frozen=True)
class Pareto:
    """The Pareto frontier of ``x`` versus ``y`` over the ``over`` dims, per combination of the other
    dims (semantics of :func:`tensorperf.reductions.pareto`; the result is the frontier points only,
    in the order of :func:`tensorperf.reductions.pareto_table`)."""

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
        ok = _where_mask(result, self.where)
        for name in (self.x, self.y):
            raw = result.values.get(name)
            value = result.metric(name) if raw is None else raw
            ok = ok & (value == value)  # (not NaN)
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

    def complete(self, state: dict | None, grid: Grid, at: Callable[..., dict[str, np.ndarray]]) -> dict | None:
        """Every metric of the frontier points (``at``: :func:`metrics_at` on ``grid``)."""
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

    def finish(self, state: dict | None, grid: Grid) -> xr.Dataset:
        kdims = [d for d in grid.dims if d not in self.over]
        odims = [d for d in grid.dims if d in self.over]
        if state is None:  # no chunk had a candidate
            state = {
                "positions": {d: np.zeros(0, dtype=np.int64) for d in grid.dims},
                "x": np.zeros(0),
                "y": np.zeros(0),
                "values": {},
            }
        _completed(self, state)
        pos = state["positions"]
        oflat = (
            np.ravel_multi_index([pos[d] for d in odims], [grid.shape[grid.dims.index(d)] for d in odims])
            if odims
            else np.zeros(len(state["x"]), dtype=np.int64)
        )
        # rows: by the kept dims (C order), then x ascending, then the point's C order over the over dims
        rows = np.lexsort([oflat, state["x"], *reversed([pos[d] for d in kdims])])
        coords: dict[str, Any] = {}
        for d in (*kdims, *odims):
            if d in grid.labels:
                coords[d] = ("frontier", _label(grid, d, pos[d][rows]))
            elif d in kdims:  # a kept dim without labels (a zipped 'point'): its position
                coords[d] = ("frontier", pos[d][rows])
            for name in grid.zipped if d == ZIP_DIM else ():  # inputs zipped on the dim ride along
                coords[name] = ("frontier", _label(grid, name, pos[d][rows]))
        data = {
            name: ("frontier", v[rows], {"units": METRICS[name].units, "long_name": METRICS[name].long_name})
            for name, v in state["values"].items()
            if v.dtype.kind == "f"
        }
        out = xr.Dataset(data, coords=coords | _scalar_coords(grid))
        out.attrs.update(
            x=self.x, y=self.y, over=repr(list(odims)), maximize=repr(self.maximize), where=repr(dict(self.where))
        )
        return out


@dataclass(frozen=True)
class Count:
    """Points and feasible points (meeting ``where``) per combination of the ``keep`` dims; ``kshape``
    is the kept dims' shape over the whole grid. Finishes as a Dataset of ``points`` and ``feasible``."""

    where: Mapping[str, tuple[str, float]]
    keep: tuple[str, ...]
    kshape: tuple[int, ...]

    @property
    def metrics(self) -> tuple[str, ...]:
        return _needed(*self.where)

    def partial(self, result: ChunkResult) -> dict:
        grid = result.grid
        kdims, rdims = _split_dims(grid, self.keep)
        ok = _flatten(_where_mask(result, self.where).expand(grid.shape), grid, kdims, rdims)
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

    def finish(self, state: dict, grid: Grid) -> xr.Dataset:
        kdims, _ = _split_dims(grid, self.keep)
        coords = {d: list(grid.labels[d]) for d in kdims if d in grid.labels}
        return xr.Dataset({"points": (kdims, state["points"]), "feasible": (kdims, state["feasible"])}, coords=coords)


@dataclass(frozen=True)
class Combined:
    """Several reductions in one pass over the grid (each chunk evaluated once); finishes as a tuple."""

    parts: tuple[Any, ...]

    @property
    def metrics(self) -> tuple[str, ...] | None:
        """Every part's metrics (None, all of them, when a part does not say)."""
        needs = [getattr(r, "metrics", None) for r in self.parts]
        return None if any(n is None for n in needs) else _needed(*(m for n in needs for m in n))

    def complete(self, state: tuple | None, grid: Grid, at: Callable[..., dict[str, np.ndarray]]) -> tuple | None:
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

    def finish(self, state: tuple, grid: Grid) -> tuple:
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


def gather(
    grid: Grid,
    convention: str,
    overrides: Mapping[str, float],
    breakdown: bool,
    chunk_points: int | None,
    client: Any,
    progress: bool | None = None,
) -> Evaluation:
    """A whole sweep's Evaluation (on the CPU), its chunks evaluated here or on a dask cluster
    (``client``) and assembled in order: the same values as one evaluation, bit for bit."""
    if chunk_points is None:  # the per-op breakdown needs about 3x the working memory per point
        chunk_points = max(1, points_for_memory(DEFAULT_MEMORY, grid.dtype) // (3 if breakdown else 1))
    setup = _Setup(grid, convention, MappingProxyType(dict(overrides)), ())
    return _execute(
        setup, Gather(grid.shape, breakdown), _max_points(setup, None, chunk_points), progress, client, "sweep"
    )


# --------------------------------------------------------------------------- drivers


def _check_metric(kind: str, name: Any, available: Sequence[str]) -> str:
    if not isinstance(name, str) or name not in available:
        raise unknown_name_error(kind, name, available)
    return name


def _check_where(where: Any, available: Sequence[str]) -> dict[str, tuple[str, float]]:
    if where is None:
        return {}
    if not isinstance(where, Mapping):
        raise SpecError(f"where = {where!r} is not allowed: must be a mapping {{variable: (comparison, value)}}")
    out = {}
    for name, cond in where.items():
        _check_metric("variable in where", name, available)
        out[name] = check_condition(name, cond)
    return out


def _dims(kind: str, dims: Any, grid: Grid) -> tuple[str, ...]:
    return tuple(_dim_list(kind, dims, grid.dims))


@dataclass(frozen=True)
class _Setup:
    grid: Grid
    convention: str
    overrides: Mapping[str, float]
    metrics: tuple[str, ...]  # the scalar metrics this convention produces (plus feasible, reason)


def _setup(convention: Any, efficiency: Any, axes: Mapping[str, Any]) -> _Setup:
    if not isinstance(convention, str) or convention not in CONVENTIONS:
        raise unknown_name_error("convention", convention, CONVENTIONS)
    grid = build_grid(**axes)
    overrides = check_efficiency(efficiency)
    probe = evaluate_chunk(grid, Chunk(0, MappingProxyType({d: (0, 1) for d in grid.dims})), convention, overrides)
    return _Setup(grid, convention, MappingProxyType(overrides), (*probe.values, "feasible", "infeasible_reason"))


def _progress(total: int, progress: Any, desc: str):
    if progress is None:
        progress = sys.stderr.isatty()
    if not isinstance(progress, (bool, np.bool_)):
        raise SpecError(f"progress = {progress!r} is not allowed: must be True, False or None (auto: on a terminal)")
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="chunk", disable=not progress, delay=1.0, file=sys.stderr)


def _run_chunk(grid: Grid, chunk: Chunk, convention: str, overrides: Mapping[str, float], reduction: Any) -> Any:
    """One chunk on a worker: evaluate, reduce, return the small partial result."""
    keep_freed_memory()  # once per process (here for dask workers)
    return reduction.partial(
        evaluate_chunk(
            grid,
            chunk,
            convention,
            overrides,
            getattr(reduction, "metrics", None),
            bool(getattr(reduction, "breakdown", False)),
        )
    )


def _execute(setup: _Setup, reduction: Any, max_points: int, progress: Any, client: Any, desc: str) -> Any:
    grid = setup.grid
    total, chunks = plan(grid, max_points)
    state = None
    with _progress(total, progress, desc) as bar:
        if client is None:
            for chunk in chunks:
                state = reduction.merge(state, _run_chunk(grid, chunk, setup.convention, setup.overrides, reduction))
                bar.update(1)
        else:
            state = _execute_dask(setup, reduction, chunks, client, bar)
    if callable(getattr(reduction, "complete", None)):  # the winners' every metric, from their positions
        state = reduction.complete(
            state, grid, lambda positions: metrics_at(grid, positions, setup.convention, setup.overrides)
        )
    return reduction.finish(state, grid)


def _execute_dask(setup: _Setup, reduction: Any, chunks: Iterator[Chunk], client: Any, bar) -> Any:
    """Chunks evaluated on the cluster's workers, a bounded window in flight, merged in chunk order."""
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - depends on the environment
        raise SpecError("client= needs dask.distributed: pip install 'tensorperf[distributed]'") from None
    own = isinstance(client, str)
    if own:
        try:
            client = Client(client, timeout="5s")
        except (OSError, TimeoutError, ValueError) as e:
            raise SpecError(f"client = {client!r}: cannot reach a dask scheduler there ({e})") from None
    elif not isinstance(client, Client):
        raise SpecError(
            f"client = {client!r} is not allowed: must be a dask.distributed Client or a "
            "scheduler address such as 'tcp://host:8786'"
        )
    try:
        grid = client.scatter(setup.grid, broadcast=True)
        window = max(4, 2 * sum(client.nthreads().values()))
        pending: list = []
        state = None
        for chunk in itertools.chain(chunks, [None]):
            if chunk is not None:
                pending.append(
                    client.submit(
                        _run_chunk, grid, chunk, setup.convention, dict(setup.overrides), reduction, pure=False
                    )
                )
            while pending and (chunk is None or len(pending) >= window):
                state = reduction.merge(state, pending.pop(0).result())  # in chunk order
                bar.update(1)
        return state
    finally:
        if own:
            client.close()


def _max_points(setup: _Setup, memory: Any, chunk_points: Any) -> int:
    if chunk_points is not None:
        if isinstance(chunk_points, bool) or not isinstance(chunk_points, numbers.Integral) or chunk_points < 1:
            raise SpecError(f"chunk_points = {chunk_points!r} is not allowed: must be an integer >= 1")
        return int(chunk_points)
    return points_for_memory(memory, setup.grid.dtype)


def best(
    objective: str = "tokens_per_s_per_gpu",
    *,
    where: Mapping[str, tuple[str, float]] | None = None,
    keep: Sequence[str] = (),
    maximize: bool = True,
    memory: Any = DEFAULT_MEMORY,
    chunk_points: int | None = None,
    progress: bool | None = None,
    client: Any = None,
    convention: str = "roofline",
    efficiency: Mapping[str, float] | None = None,
    **axes: Any,
) -> xr.Dataset:
    """The best point of a grid, streamed: :func:`tensorperf.sweep`'s inputs (``**axes``) span the
    grid, which is evaluated in chunks of at most ``memory`` working bytes (or ``chunk_points``
    points) keeping only the running best, so grids far larger than memory fit.

    ``where`` maps a metric to ``(comparison, value)``, e.g. ``{"tokens_per_s_per_user": (">=", 20),
    "ttft": ("<=", 2.0)}`` (comparisons ``>=, >, <=, <, ==``); only feasible points meeting every
    condition qualify. ``keep`` lists dims to keep (one winner per combination of them; default
    none: one winner). Returns a small Dataset: the winner's metrics, ``best_<dim>`` for each reduced
    dim (and ``best_<input>`` for inputs zipped on one) and ``found``; equal, bit for bit, to
    ``sweep(**axes).tperf.best(objective, where=where, keep=keep)`` for any chunk size. Ties go to
    the first point in C order. ``progress`` shows a bar (default: on a terminal, after 1 s);
    ``client`` runs the chunks on a dask.distributed cluster (a ``Client`` or scheduler address)."""
    setup = _setup(convention, efficiency, axes)
    objective = _check_metric("objective", objective, setup.metrics)
    where = _check_where(where, setup.metrics)
    keep = _dims("keep", keep, setup.grid)
    if not isinstance(maximize, (bool, np.bool_)):
        raise SpecError(f"maximize = {maximize!r} is not allowed: must be True or False")
    if set(keep) == set(setup.grid.dims):
        raise SpecError(f"nothing to choose from: every dimension is in keep={list(keep)}")
    reduction = Best(objective, MappingProxyType(where), keep, bool(maximize), kept_shape(setup.grid, keep))
    return _execute(setup, reduction, _max_points(setup, memory, chunk_points), progress, client, "best")


def default_over(grid: Grid) -> tuple[str, ...]:
    """The layout and batch dims of a grid (:data:`~tensorperf.reductions.LAYOUT_DIMS`, and a zipped
    dim carrying one of those inputs)."""
    return tuple(
        d for d in grid.dims if d in LAYOUT_DIMS or any(grid.dim_of(n) == d for n in LAYOUT_DIMS if n in grid.values)
    )


def pareto(
    x: str = "tokens_per_s_per_user",
    y: str = "tokens_per_s_per_gpu",
    *,
    where: Mapping[str, tuple[str, float]] | None = None,
    over: Sequence[str] | None = None,
    maximize: tuple[bool, bool] = (True, True),
    memory: Any = DEFAULT_MEMORY,
    chunk_points: int | None = None,
    progress: bool | None = None,
    client: Any = None,
    convention: str = "roofline",
    efficiency: Mapping[str, float] | None = None,
    **axes: Any,
) -> xr.Dataset:
    """The Pareto frontier of ``x`` versus ``y``, streamed (see :func:`best` for the chunking,
    ``where``, ``progress`` and ``client``): over the ``over`` dims (default: the layout and batch
    dims), for each combination of the other dims. Returns the frontier points along a ``frontier``
    dim with their kept-dim and layout coordinates and every scalar metric, sorted by the kept dims
    then ``x`` ascending: the rows of ``sweep(**axes).tperf.pareto_table(x, y, ...)``."""
    setup = _setup(convention, efficiency, axes)
    x = _check_metric("x", x, setup.metrics)
    y = _check_metric("y", y, setup.metrics)
    if x == y:
        raise SpecError(f"x and y are both {x!r}; a frontier needs two different variables")
    if not (
        isinstance(maximize, (tuple, list))
        and len(maximize) == 2
        and all(isinstance(m, (bool, np.bool_)) for m in maximize)
    ):
        raise SpecError(f"maximize = {maximize!r} is not allowed: must be a pair of booleans (for x, y)")
    where = _check_where(where, setup.metrics)
    if over is None:
        over = default_over(setup.grid)
        if not over:
            raise SpecError(
                f"no layout or batch dimension ({', '.join(LAYOUT_DIMS)}) is swept "
                f"(dims {list(setup.grid.dims)}); pass over=[...]"
            )
    else:
        over = _dims("over", over, setup.grid)
        if not over:
            raise SpecError("over is empty; name the dimensions to take the frontier over")
    reduction = Pareto(x, y, over, MappingProxyType(where), (bool(maximize[0]), bool(maximize[1])))
    return _execute(setup, reduction, _max_points(setup, memory, chunk_points), progress, client, "pareto")


def reduce(
    reduction: Reduction,
    *,
    memory: Any = DEFAULT_MEMORY,
    chunk_points: int | None = None,
    progress: bool | None = None,
    client: Any = None,
    convention: str = "roofline",
    efficiency: Mapping[str, float] | None = None,
    **axes: Any,
) -> Any:
    """Stream any :class:`Reduction` over the grid spanned by ``**axes`` (chunking, progress and
    ``client`` as in :func:`best`)."""
    for method in ("partial", "merge", "finish"):
        if not callable(getattr(reduction, method, None)):
            raise SpecError(
                f"reduction = {reduction!r} is not allowed: it must have partial(), merge() and "
                "finish() methods (see tensorperf.stream.Reduction)"
            )
    setup = _setup(convention, efficiency, axes)
    return _execute(setup, reduction, _max_points(setup, memory, chunk_points), progress, client, "reduce")


__all__ = [
    "best",
    "pareto",
    "reduce",
    "Reduction",
    "Best",
    "Pareto",
    "Count",
    "Combined",
    "Gather",
    "ChunkResult",
    "Chunk",
    "plan",
    "points_for_memory",
    "evaluate_chunk",
    "metrics_at",
    "gather",
    "kept_shape",
]
