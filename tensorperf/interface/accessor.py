"""``Dataset.tperf``: the reductions of :mod:`tensorperf.run.reductions` as methods of a sweep's Dataset.

    ds = tensorperf.sweep(...)
    ds.tperf.best("tokens_per_s_per_gpu", where={"tokens_per_s_per_user": (">=", 20)}, keep=["model"])
    ds.tperf.pareto()            # tokens/s/GPU versus tokens/s/user over layouts and batches
    ds.tperf.pareto_table()      # the frontier points as a pandas DataFrame
    ds.tperf.plot.pareto(x="ttft", where={"tokens_per_s_per_user": (">=", 20)})  # a matplotlib Figure
    ds.tperf.plot("memory", "memory.png")  # the same by kind name; also saved to memory.png

Importing this module registers the accessor; it only delegates to
:mod:`tensorperf.interface.reductions`, which runs the streamed reductions (the same code as
:func:`tensorperf.best` / :func:`tensorperf.pareto`) on the Dataset taken as one chunk, and to
:mod:`tensorperf.interface.plot` for the figures (matplotlib is imported when one is drawn).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import xarray as xr

from tensorperf.interface import plot as figures
from tensorperf.interface import reductions
from tensorperf.validation import SpecError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

Where = Mapping[str, tuple[str, float]]


@xr.register_dataset_accessor("tperf")
class TensorperfAccessor:
    """Vectorized reductions of a tensorperf sweep (see :mod:`tensorperf.interface.reductions`)."""

    def __init__(self, ds: xr.Dataset) -> None:
        self._ds = ds

    @property
    def plot(self) -> Plots:
        """The figures of this Dataset (:mod:`tensorperf.interface.plot`), each a matplotlib Figure:
        ``.pareto(...)``, ``.breakdown()``, ``.memory()``, ``.sensitivity()``, or called with the
        kind's name: ``ds.tperf.plot("pareto", "front.png", x="ttft")``."""
        return Plots(self._ds)

    def mask(self, where: Where | None = None) -> xr.DataArray:
        """Feasible points meeting every ``variable (comparison) value`` in ``where``."""
        return reductions.constraint_mask(self._ds, where)

    def best(
        self, objective: str, where: Where | None = None, keep: Sequence[str] = (), maximize: bool | None = None
    ) -> xr.Dataset:
        """The best point per combination of the ``keep`` dims; see :func:`reductions.best`."""
        return reductions.best(self._ds, objective, where=where, keep=keep, maximize=maximize)

    def pareto(
        self,
        x: str = "tokens_per_s_per_user",
        y: str = "tokens_per_s_per_gpu",
        over: Sequence[str] | None = None,
        where: Where | None = None,
        maximize: tuple[bool, bool] | None = None,
    ) -> xr.Dataset:
        """The Pareto frontier of ``x`` versus ``y`` over the ``over`` dims; see :func:`reductions.pareto`."""
        return reductions.pareto(self._ds, x, y, over=over, where=where, maximize=maximize)

    def pareto_table(
        self,
        x: str = "tokens_per_s_per_user",
        y: str = "tokens_per_s_per_gpu",
        over: Sequence[str] | None = None,
        where: Where | None = None,
        maximize: tuple[bool, bool] | None = None,
        extra: Sequence[str] = (),
    ) -> pd.DataFrame:
        """The frontier points as a tidy DataFrame; see :func:`reductions.pareto_table`."""
        return reductions.pareto_table(self._ds, x, y, over=over, where=where, maximize=maximize, extra=extra)


class Plots:
    """``ds.tperf.plot``: each method draws one kind of figure of the Dataset and returns it (a
    matplotlib ``Figure``); given ``path`` (.png, .svg or .pdf) it also saves it there."""

    def __init__(self, ds: xr.Dataset) -> None:
        self._ds = ds

    def __call__(self, kind: str = "pareto", path: str | Path | None = None, **options: Any) -> Figure:
        """The figure of kind ``kind`` (pareto, breakdown, memory or sensitivity)."""
        if kind not in figures.KINDS:
            raise SpecError(f"plot kind {kind!r} is not allowed: choose one of {', '.join(figures.KINDS)}")
        return figures.KINDS[kind](self._ds, path, **options)

    def pareto(
        self,
        path: str | Path | None = None,
        *,
        x: str = "tokens_per_s_per_user",
        y: str = "tokens_per_s_per_gpu",
        over: Sequence[str] | None = None,
        where: Where | None = None,
        maximize: tuple[bool, bool] | None = None,
    ) -> Figure:
        """The Pareto frontier of ``y`` versus ``x``; see :func:`tensorperf.interface.plot.pareto`."""
        return figures.pareto(self._ds, path, x=x, y=y, over=over, where=where, maximize=maximize)

    def breakdown(self, path: str | Path | None = None) -> Figure:
        """Per-op time, one bar per point; see :func:`tensorperf.interface.plot.breakdown`."""
        return figures.breakdown(self._ds, path)

    def memory(self, path: str | Path | None = None) -> Figure:
        """Memory per GPU over tp x pp; see :func:`tensorperf.interface.plot.memory`."""
        return figures.memory(self._ds, path)

    def sensitivity(self, path: str | Path | None = None) -> Figure:
        """Tornado chart of a sensitivity Dataset; see :func:`tensorperf.interface.plot.sensitivity`."""
        return figures.sensitivity(self._ds, path)
