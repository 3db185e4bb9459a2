"""Why a streamed grid's points are infeasible, without holding the grid: the points with each
reason code counted chunk by chunk (:class:`ReasonCounts`, a streamed reduction), then one example
point per reason bit evaluated alone and explained (:func:`explain_inputs`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from tensorperf.engine.grid import Grid
from tensorperf.engine.masks import Reason
from tensorperf.interface.explanation import Explanation, Finding, point_findings
from tensorperf.run.chunks import ChunkResult
from tensorperf.run.inputs import build_grid


@dataclass(frozen=True)
class Examples:
    """What :class:`ReasonCounts` finishes as: the points and feasible points, the points with each
    reason bit, and per bit one example point: its labels on the grid's dims and its inputs."""

    points: int
    feasible: int
    counts: Mapping[Reason, int]
    labels: Mapping[Reason, Mapping[str, Any]]
    inputs: Mapping[Reason, Mapping[str, Any]]


@dataclass(frozen=True)
class ReasonCounts:
    """A streamed reduction over a grid of shape ``shape``: per reason code (``infeasible_reason``)
    its points and the first of them in C order; finishes as :class:`Examples` (the example of a
    bit: the first point with that reason alone, else the first with it)."""

    shape: tuple[int, ...]
    metrics: tuple[str, ...] = ()  # (feasibility only: the engine computes memory and counts anyway)

    def partial(self, result: ChunkResult) -> dict[int, tuple[int, int]]:
        grid = result.grid
        codes = result.reason.expand(grid.shape).cpu().numpy().reshape(-1)  # C order of the chunk
        n = np.bincount(codes, minlength=1)
        out = {}
        for code in np.flatnonzero(n):  # the distinct codes (a few): their counts and first points
            local = np.unravel_index(int(np.argmax(codes == code)), grid.shape)
            where = [result.global_positions(d, np.asarray(p)) for d, p in zip(grid.dims, local)]
            out[int(code)] = (int(n[code]), int(np.ravel_multi_index(where, self.shape)) if self.shape else 0)
        return out

    def merge(self, state: dict | None, part: dict) -> dict:
        state = dict(state or {})
        for code, (n, first) in part.items():
            m, f = state.get(code, (0, first))
            state[code] = (m + n, min(f, first))
        return state

    def finish(self, state: dict, grid: Grid) -> Examples:
        counts, labels, inputs = {}, {}, {}
        for r in Reason:
            having = {c: v for c, v in state.items() if c & r}
            if not having:
                continue
            counts[r] = sum(n for n, _ in having.values())
            flat = having[int(r)][1] if int(r) in having else min(f for _, f in having.values())
            pos = dict(zip(grid.dims, np.unravel_index(flat, self.shape))) if self.shape else {}
            labels[r] = MappingProxyType(_labels(grid, {d: int(p) for d, p in pos.items()}))
            inputs[r] = MappingProxyType(
                {k: v[int(pos[grid.dim_of(k)])] if grid.dim_of(k) else v[0] for k, v in grid.values.items()}
            )
        return Examples(
            points=sum(n for n, _ in state.values()),
            feasible=state.get(0, (0, 0))[0],
            counts=MappingProxyType(counts),
            labels=MappingProxyType(labels),
            inputs=MappingProxyType(inputs),
        )


def _labels(grid: Grid, pos: Mapping[str, int]) -> dict[str, Any]:
    """A point's labels on the grid's dims (a zipped dim: its position and the inputs zipped on it),
    as :func:`tensorperf.interface.explanation.explain` gives them."""
    out: dict[str, Any] = {}
    for d in grid.dims:
        names = grid.zipped if d not in grid.labels else (d,)
        if d not in grid.labels:
            out[d] = pos[d]
        for name in names:
            value = grid.labels[name][pos[d]]
            out[name] = value.item() if isinstance(value, np.generic) else value
    return out


def explain_inputs(
    *,
    memory: Any = None,
    client: Any = None,
    chunk_points: int | None = None,
    convention: str = "roofline",
    efficiency: Mapping[str, float] | None = None,
    **axes: Any,
) -> Explanation:
    """:func:`tensorperf.interface.explanation.explain` of ``sweep(**axes)``, streamed: the reasons are
    counted chunk by chunk (``memory``, ``client``, ``chunk_points`` as in :func:`tensorperf.best`)
    and each example point is evaluated alone."""
    from tensorperf.interface.api import DEFAULT_MEMORY, reduce, sweep

    grid = build_grid(**axes)
    found = reduce(
        ReasonCounts(grid.shape),
        memory=DEFAULT_MEMORY if memory is None else memory,
        client=client,
        chunk_points=chunk_points,
        progress=False,
        convention=convention,
        efficiency=efficiency,
        **axes,
    )
    findings: list[Finding] = []
    for r, point in found.inputs.items():
        ds = sweep(**point, dtype=grid.dtype, convention=convention, efficiency=efficiency, breakdown=False)
        findings += [f for f in point_findings(ds, found.labels[r], efficiency) if f.reason == r]
    return Explanation(found.points, found.feasible, found.counts, tuple(findings))
