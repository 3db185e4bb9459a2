"""Every pair of a prefill and a decode configuration of a disaggregated deployment (docs/model.md
§3.15), joined by :func:`tensorperf.engine.physics.disagg.serve` in chunks of prefill configurations:
whole (every pair's metrics as arrays) or streamed into the running best of
:class:`tensorperf.run.reductions.Best`, so the pairs never exist at once.

The pair axes are flat: the shared dims, one axis of the flattened prefill configurations, the decode
dims, the ratio; each pool's values lie on them with size 1 where they do not vary.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import torch

from tensorperf.engine.physics import disagg as physics
from tensorperf.run.chunks import FAST_CHUNK_BYTES, Chunk, ChunkResult, Labels
from tensorperf.run.reductions import Best, Labelled

# pairs per chunk: 16 MiB per float64 tensor, the engine's fastest chunk (run.chunks)
CHUNK_POINTS = FAST_CHUNK_BYTES // 8
BOOLEAN = frozenset({"kv_scaleup"})  # serve's outputs that are not numbers (never masked)


def _narrowed(value: Any, axis: int, start: int, stop: int) -> Any:
    """A pool (its tensors, nested links too) cut to prefill configurations ``start:stop``."""
    if dataclasses.is_dataclass(value):
        fields = {f.name: _narrowed(getattr(value, f.name), axis, start, stop) for f in dataclasses.fields(value)}
        return dataclasses.replace(value, **fields)
    return value if value.shape[axis] == 1 else value.narrow(axis, start, stop - start)


def _picked(value: Any, index: Sequence[np.ndarray]) -> Any:
    """A pool's values at K points (``index``: one position array per axis; size-1 axes at 0)."""
    if dataclasses.is_dataclass(value):
        fields = {f.name: _picked(getattr(value, f.name), index) for f in dataclasses.fields(value)}
        return dataclasses.replace(value, **fields)
    at = tuple(torch.as_tensor(i if n > 1 else np.zeros_like(i)) for i, n in zip(index, value.shape))
    return value[at]


@dataclass(frozen=True)
class Pairs:
    """Both pools on the flat pair axes, and how to join them."""

    prefill: physics.PrefillPool
    decode: physics.DecodePool
    output_len: torch.Tensor
    x: torch.Tensor  # prefill instances per ratio (NaN: balanced), on the last axis
    y: torch.Tensor  # decode instances per ratio
    reason: torch.Tensor  # the pools' reason bits OR-ed (int64)
    shape: tuple[int, ...]  # the flat pair shape
    axis: int  # the axis of the prefill configurations
    overlap: float | None = None
    tier: int = physics.TIER_AUTO

    def chunks(self, points: int = CHUNK_POINTS) -> Iterator[tuple[int, int]]:
        """Ranges of prefill configurations of at most ``points`` pairs each (one at least)."""
        n = self.shape[self.axis]
        step = max(1, points // max(math.prod(self.shape) // max(n, 1), 1))
        return ((a, min(a + step, n)) for a in range(0, n, step))

    def serve(self, start: int, stop: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """The pairs of prefill configurations ``start:stop``: their metrics (NaN where a pool is
        infeasible) and reason bits, at the chunk's full shape."""
        cut = lambda v: _narrowed(v, self.axis, start, stop)  # noqa: E731
        with torch.no_grad():
            out = physics.serve(
                cut(self.prefill), cut(self.decode), self.x, self.y, cut(self.output_len), self.overlap, self.tier
            )
        shape = self.shape[: self.axis] + (stop - start,) + self.shape[self.axis + 1 :]
        reason = cut(self.reason).expand(shape)
        nan = torch.tensor(math.nan, dtype=out["serving_ttft"].dtype)
        return {
            k: (v if k in BOOLEAN else torch.where(reason == 0, v, nan)).expand(shape) for k, v in out.items()
        }, reason

    def at(self, positions: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """Every metric at K pairs (one position array per flat axis), as K-long arrays."""
        with torch.no_grad():
            out = physics.serve(
                _picked(self.prefill, positions),
                _picked(self.decode, positions),
                _picked(self.x, positions),
                _picked(self.y, positions),
                _picked(self.output_len, positions),
                self.overlap,
                self.tier,
            )
        ok = _picked(self.reason, positions) == 0
        k = len(positions[0])
        return {
            n: np.broadcast_to((v if n in BOOLEAN else torch.where(ok, v, math.nan)).cpu().numpy(), (k,))
            for n, v in out.items()
            if n not in BOOLEAN
        }


def arrays(pairs: Pairs, points: int = CHUNK_POINTS) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every pair's metrics (arrays of the flat shape) and reason bits, chunk by chunk."""
    names = None
    out: dict[str, np.ndarray] = {}
    reason = np.empty(pairs.shape, dtype=np.int64)
    for start, stop in pairs.chunks(points):
        values, bits = pairs.serve(start, stop)
        if names is None:
            names = list(values)
            out = {n: np.empty(pairs.shape, dtype=bool if n in BOOLEAN else np.float64) for n in names}
        index = (slice(None),) * pairs.axis + (slice(start, stop),)
        for n, v in values.items():
            out[n][index] = v.cpu().numpy()
        reason[index] = bits.cpu().numpy()
    return out, reason


def best(
    pairs: Pairs,
    labels: Labels,
    objective: str,
    where: Mapping[str, Any],
    keep: Sequence[str],
    maximize: bool,
    points: int = CHUNK_POINTS,
) -> Labelled:
    """The best pair per combination of the ``keep`` dims, streamed: each chunk of prefill
    configurations is joined and reduced by :class:`Best`, then dropped (``labels``: the flat pair
    axes' dims and coordinates; the prefill configurations' dim is ``labels.dims[pairs.axis]``)."""
    reduction = Best(objective, MappingProxyType(dict(where)), tuple(keep), maximize, _kept(labels, keep))
    state = None
    for i, (start, stop) in enumerate(pairs.chunks(points)):
        values, reason = pairs.serve(start, stop)
        shape = pairs.shape[: pairs.axis] + (stop - start,) + pairs.shape[pairs.axis + 1 :]
        chunk = Chunk(i, MappingProxyType({labels.dims[pairs.axis]: (start, stop)}))
        result = ChunkResult(Labels(labels.dims, shape, MappingProxyType({})), chunk, MappingProxyType(values), reason)
        state = reduction.merge(state, reduction.partial(result))
    at: Callable[..., dict[str, np.ndarray]] = lambda pos: pairs.at([pos[d] for d in labels.dims])  # noqa: E731
    return reduction.finish(reduction.complete(state, labels, at), labels)


def _kept(labels: Labels, keep: Sequence[str]) -> tuple[int, ...]:
    return tuple(n for d, n in zip(labels.dims, labels.shape) if d in keep)
