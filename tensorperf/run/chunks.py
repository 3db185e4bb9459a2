"""Chunks of a grid and their metrics: what a streamed reduction (:mod:`tensorperf.run.reductions`)
sees, one chunk at a time.

A chunk is a Cartesian block that is also a contiguous range of the grid's C-order flat index (the
trailing dims whole, one dim split into ranges, each leading dim one position at a time). Chunks
come in C order and every point's metrics are computed by the same elementwise arithmetic whatever
the chunk around it (the engine has no cross-point sums), so a reduction merged in chunk order sees
the same numbers in the same order as the unchunked one: ties resolve alike and results are equal
bit for bit, for any chunk size.

:class:`Labels` is what a reduction reports its results with: the dims, shape and coordinate labels
of a grid, taken from a :class:`~tensorperf.engine.grid.Grid` or (by the interface) from an
evaluated Dataset, so the same reductions run on a streamed grid and on results in memory.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import numbers
import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import torch

from tensorperf.engine.conventions import CONVENTIONS
from tensorperf.engine.grid import ZIP_DIM, Grid
from tensorperf.engine.metrics import METRICS
from tensorperf.validation import SpecError

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


WHOLE = Chunk(0, MappingProxyType({}))  # the one chunk of a grid taken whole (results already in memory)


# --------------------------------------------------------------------------- labels


@dataclass(frozen=True)
class Labels:
    """The dims, shape and coordinates of a grid, as a reduction reports its results with them.

    ``coords[name] = (dims, values)``: a dim's labels (``dims == (name,)``), an input lying on other
    dims (a zipped input on ``point``), or a scalar input (``dims == ()``, ``values`` the value), in
    the order a Dataset of the grid lists them. A dim without labels (``point``) has no entry."""

    dims: tuple[str, ...]
    shape: tuple[int, ...]
    coords: Mapping[str, tuple[tuple[str, ...], Any]]

    @classmethod
    def of(cls, grid: Grid | Labels) -> Labels:
        """A grid's labels (Labels given pass through)."""
        if isinstance(grid, Labels):
            return grid
        coords: dict[str, tuple[tuple[str, ...], Any]] = {}
        for name in (*(d for d in grid.dims if d in grid.labels), *grid.labels):  # dims' labels first, as in a Dataset
            dim = grid.dim_of(name)
            labels = grid.labels[name]
            coords[name] = ((), labels[0]) if dim is None else ((dim,), np.asarray(labels))
        return cls(tuple(grid.dims), tuple(grid.shape), MappingProxyType(coords))

    def labelled(self, dim: str) -> bool:
        """Whether ``dim`` has labels (a zipped ``point`` dim has none: positions stand for them)."""
        return self.coords.get(dim, ((), None))[0] == (dim,)

    def on(self, dims: Collection[str]) -> list[str]:
        """The coordinates lying on ``dims`` only (scalars included), in order."""
        return [n for n, (d, _) in self.coords.items() if set(d) <= set(dims)]

    def riders(self, dims: Collection[str]) -> list[str]:
        """The coordinates other than dims' labels that lie on some of ``dims`` and nothing else."""
        return [n for n, (d, _) in self.coords.items() if n not in self.dims and d and set(d) <= set(dims)]

    def at(self, name: str, positions: Mapping[str, np.ndarray], found: np.ndarray | None = None) -> np.ndarray:
        """A coordinate's labels at points given by their positions on each dim (``positions[dim]``,
        arrays of one shape); numeric labels are NaN where ``found`` is False."""
        dims, values = self.coords[name]
        values = np.asarray(values)
        out = np.asarray(values[tuple(positions[d] for d in dims)], dtype=values.dtype)  # (0-d: not a scalar)
        if found is not None and out.dtype.kind in "iuf":
            out = np.where(found, out, np.nan)
        return out


# --------------------------------------------------------------------------- one chunk's metrics


@dataclass(frozen=True)
class ChunkResult:
    """The scalar metrics of one chunk (tensors broadcastable to ``grid.shape``) and its reasons; with
    ``trailing`` (a reduction that asks for the breakdown), the per-op variables too, whose trailing
    result dims (name -> dims) follow the grid's.

    ``grid`` is the chunk's own Grid, or the :class:`Labels` of results already in memory (one
    chunk, :data:`WHOLE`, whose values are a Dataset's variables: infeasible points already NaN)."""

    grid: Grid | Labels
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
        if name in METRICS and METRICS[name].masked:
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


__all__ = [
    "BYTES_PER_POINT",
    "DEFAULT_MEMORY",
    "FAST_CHUNK_BYTES",
    "WHOLE",
    "Chunk",
    "ChunkResult",
    "Labels",
    "evaluate_chunk",
    "metrics_at",
    "plan",
    "points_for_memory",
]
