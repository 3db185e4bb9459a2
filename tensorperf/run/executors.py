"""Running a reduction (:mod:`tensorperf.run.reductions`): over a grid's chunks in this process or on
a dask.distributed cluster, or over results already in memory taken as one chunk.

Streamed, the grid is evaluated chunk by chunk and only the running reduction is kept (the best
point per group, a Pareto frontier, or any :class:`~tensorperf.run.reductions.Reduction` a user
writes), so the full grid never exists. On a cluster (``client=``: a ``Client`` or a scheduler
address) workers evaluate and reduce chunks and the client merges the small partial results in
chunk order, so a cluster gives exactly the single-process result.

The library leaves malloc alone; the malloc tuning (:func:`tensorperf.run.allocator.keep_freed_memory`)
is the command line's choice for its own process, and a dask worker can opt in with a preload that
calls it.
"""

from __future__ import annotations

import itertools
import numbers
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import torch

from tensorperf.engine.conventions import CONVENTIONS
from tensorperf.engine.grid import Grid
from tensorperf.engine.metrics import Evaluation
from tensorperf.run.chunks import (
    DEFAULT_MEMORY,
    Chunk,
    ChunkResult,
    Labels,
    evaluate_chunk,
    metrics_at,
    plan,
    points_for_memory,
)
from tensorperf.run.inputs import build_grid, check_efficiency
from tensorperf.run.reductions import (
    Best,
    Gather,
    Pareto,
    Variables,
    check_best,
    check_pareto,
    kept_shape,
)
from tensorperf.validation import SpecError, unknown_name_error


@dataclass(frozen=True)
class Setup:
    """A grid to stream and how to evaluate it; ``variables``: the scalar metrics its convention
    produces (and ``feasible``, ``infeasible_reason``), each with the grid's dims and its dtype."""

    grid: Grid
    convention: str
    overrides: Mapping[str, float]
    variables: Variables


def setup(convention: Any, efficiency: Any, axes: Mapping[str, Any]) -> Setup:
    """The grid spanned by ``axes`` (sweep's inputs), checked, and the metrics its convention gives
    (from a one-point probe)."""
    if not isinstance(convention, str) or convention not in CONVENTIONS:
        raise unknown_name_error("convention", convention, CONVENTIONS)
    grid = build_grid(**axes)
    overrides = check_efficiency(efficiency)
    probe = evaluate_chunk(grid, Chunk(0, MappingProxyType({d: (0, 1) for d in grid.dims})), convention, overrides)
    dtypes = {n: torch.empty((), dtype=v.dtype, device="cpu").numpy().dtype for n, v in probe.values.items()}
    dtypes |= {"feasible": np.dtype(bool), "infeasible_reason": np.dtype(np.int64)}
    variables = MappingProxyType({n: (tuple(grid.dims), dt) for n, dt in dtypes.items()})
    return Setup(grid, convention, MappingProxyType(overrides), variables)


def max_points(setup: Setup, memory: Any, chunk_points: Any) -> int:
    """Points per chunk: ``chunk_points``, or what fits ``memory``."""
    if chunk_points is not None:
        if isinstance(chunk_points, bool) or not isinstance(chunk_points, numbers.Integral) or chunk_points < 1:
            raise SpecError(f"chunk_points = {chunk_points!r} is not allowed: must be an integer >= 1")
        return int(chunk_points)
    return points_for_memory(memory, setup.grid.dtype)


def _progress(total: int, progress: Any, desc: str) -> Any:
    if progress is None:
        progress = sys.stderr.isatty()
    if not isinstance(progress, (bool, np.bool_)):
        raise SpecError(f"progress = {progress!r} is not allowed: must be True, False or None (auto: on a terminal)")
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="chunk", disable=not progress, delay=1.0, file=sys.stderr)


def _run_chunk(
    grid: Grid,
    chunk: Chunk,
    convention: str,
    overrides: Mapping[str, float],
    reduction: Any,
) -> Any:
    """One chunk on a worker: evaluate, reduce, return the small partial result."""
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


def execute(
    setup: Setup,
    reduction: Any,
    max_points: int,
    progress: Any,
    client: Any,
    desc: str,
) -> Any:
    """Stream ``reduction`` over the chunks of ``setup.grid`` (here, or on the dask cluster
    ``client``), complete its winners' metrics when it asks (``complete``), and finish it."""
    grid = setup.grid
    total, chunks = plan(grid, max_points)
    state = None
    with _progress(total, progress, desc) as bar:
        if client is None:
            for chunk in chunks:
                part = _run_chunk(grid, chunk, setup.convention, setup.overrides, reduction)
                state = reduction.merge(state, part)
                bar.update(1)
        else:
            state = _execute_dask(setup, reduction, chunks, client, bar)
    if callable(getattr(reduction, "complete", None)):  # the winners' every metric, from their positions
        state = reduction.complete(
            state, grid, lambda positions: metrics_at(grid, positions, setup.convention, setup.overrides)
        )
    return reduction.finish(state, grid)


def _execute_dask(setup: Setup, reduction: Any, chunks: Iterator[Chunk], client: Any, bar: Any) -> Any:
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
                        _run_chunk,
                        grid,
                        chunk,
                        setup.convention,
                        dict(setup.overrides),
                        reduction,
                        pure=False,
                    )
                )
            while pending and (chunk is None or len(pending) >= window):
                state = reduction.merge(state, pending.pop(0).result())  # in chunk order
                bar.update(1)
        return state
    finally:
        if own:
            client.close()


def merged(reduction: Any, result: ChunkResult) -> Any:
    """The state of ``reduction`` over results in memory taken as one chunk (``result``)."""
    return reduction.merge(None, reduction.partial(result))


def execute_whole(reduction: Any, result: ChunkResult, at: Callable[..., dict[str, np.ndarray]]) -> Any:
    """``reduction`` run on results already in memory, taken as one chunk (``result``, whose grid is
    their :class:`~tensorperf.run.chunks.Labels`): the same partial, merge, complete and finish as a
    streamed run; ``at(positions)`` gives the winners' values (read from the results, not evaluated)."""
    state = merged(reduction, result)
    if callable(getattr(reduction, "complete", None)):
        state = reduction.complete(state, result.grid, at)
    return reduction.finish(state, result.grid)


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
    run = Setup(grid, convention, MappingProxyType(dict(overrides)), MappingProxyType({}))
    return execute(run, Gather(grid.shape, breakdown), max_points(run, None, chunk_points), progress, client, "sweep")


# --------------------------------------------------------------------------- streamed entry points


def best(
    objective: Any,
    *,
    where: Any,
    keep: Any,
    maximize: Any,
    memory: Any,
    chunk_points: Any,
    progress: Any,
    client: Any,
    convention: Any,
    efficiency: Any,
    axes: Mapping[str, Any],
) -> Any:
    """:func:`tensorperf.best` before its result becomes a Dataset: a finished :class:`Best`."""
    run = setup(convention, efficiency, axes)
    objective, where, keep, maximize = check_best(run.variables, objective, where, keep, maximize)
    reduction = Best(objective, MappingProxyType(where), keep, maximize, kept_shape(run.grid, keep))
    return execute(run, reduction, max_points(run, memory, chunk_points), progress, client, "best")


def pareto(
    x: Any,
    y: Any,
    *,
    where: Any,
    over: Any,
    maximize: Any,
    memory: Any,
    chunk_points: Any,
    progress: Any,
    client: Any,
    convention: Any,
    efficiency: Any,
    axes: Mapping[str, Any],
) -> Any:
    """:func:`tensorperf.pareto` before its result becomes a Dataset: a finished :class:`Pareto`."""
    run = setup(convention, efficiency, axes)
    x, y, where, over, maximize, _, _ = check_pareto(Labels.of(run.grid), run.variables, x, y, where, over, maximize)
    reduction = Pareto(x, y, over, MappingProxyType(where), maximize)
    return execute(run, reduction, max_points(run, memory, chunk_points), progress, client, "pareto")


def reduce(
    reduction: Any,
    *,
    memory: Any,
    chunk_points: Any,
    progress: Any,
    client: Any,
    convention: Any,
    efficiency: Any,
    axes: Mapping[str, Any],
) -> Any:
    """:func:`tensorperf.reduce`: any reduction streamed; its finish's result as it is."""
    for method in ("partial", "merge", "finish"):
        if not callable(getattr(reduction, method, None)):
            raise SpecError(
                f"reduction = {reduction!r} is not allowed: it must have partial(), merge() and "
                "finish() methods (see tensorperf.Reduction)"
            )
    run = setup(convention, efficiency, axes)
    return execute(run, reduction, max_points(run, memory, chunk_points), progress, client, "reduce")


__all__ = ["Setup", "best", "execute", "execute_whole", "gather", "max_points", "merged", "pareto", "reduce", "setup"]
