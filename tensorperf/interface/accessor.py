"""``Dataset.tperf``: the reductions of :mod:`tensorperf.run.reductions` as methods of a sweep's Dataset.

    ds = tensorperf.sweep(...)
    ds.tperf.best("tokens_per_s_per_gpu", where={"tokens_per_s_per_user": (">=", 20)}, keep=["model"])
    ds.tperf.pareto()            # tokens/s/GPU versus tokens/s/user over layouts and batches
    ds.tperf.pareto_table()      # the frontier points as a pandas DataFrame

Importing this module registers the accessor; it only delegates to
:mod:`tensorperf.interface.reductions`, which runs the streamed reductions (the same code as
:func:`tensorperf.best` / :func:`tensorperf.pareto`) on the Dataset taken as one chunk.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import xarray as xr

from tensorperf.interface import reductions

Where = Mapping[str, tuple[str, float]]


@xr.register_dataset_accessor("tperf")
class TensorperfAccessor:
    """Vectorized reductions of a tensorperf sweep (see :mod:`tensorperf.interface.reductions`)."""

    def __init__(self, ds: xr.Dataset) -> None:
        self._ds = ds

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
