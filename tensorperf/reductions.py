"""Vectorized reductions of a sweep's Dataset: the best point per group under constraints.

No per-point Python: constraints become one boolean DataArray, the objective is masked with it,
the reduced dims are stacked into one and the winner is an ``argmax`` along it.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np
import xarray as xr

from .validation import SpecError, unknown_name_error

COMPARISONS = MappingProxyType({
    ">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt, "==": operator.eq,
})


def constraint_mask(ds: xr.Dataset, where: Mapping[str, tuple[str, float]] | None) -> xr.DataArray:
    """feasible AND every ``variable (comparison) value`` in ``where``."""
    ok = ds["feasible"]
    for name, cond in (where or {}).items():
        if name not in ds.data_vars:
            raise unknown_name_error("variable in where", name, ds.data_vars)
        if not (isinstance(cond, tuple) and len(cond) == 2 and cond[0] in COMPARISONS):
            raise SpecError(f"where[{name!r}] = {cond!r} is not allowed: must be (comparison, value) "
                            f"with comparison in {', '.join(COMPARISONS)}")
        ok = ok & COMPARISONS[cond[0]](ds[name], cond[1])
    return ok


def best(ds: xr.Dataset, objective: str, *, where: Mapping[str, tuple[str, float]] | None = None,
         keep: Sequence[str] = (), maximize: bool = True) -> xr.Dataset:
    """The point maximizing (or minimizing) ``objective`` among feasible points meeting ``where``,
    for each combination of the ``keep`` dims. Returns the winner's coordinates (``best_<dim>``),
    its scalar metrics, and ``found`` (False where no point qualifies; metrics NaN there)."""
    if objective not in ds.data_vars:
        raise unknown_name_error("objective", objective, ds.data_vars)
    for dim in keep:
        if dim not in ds[objective].dims:
            raise unknown_name_error("dimension in keep", dim, ds[objective].dims)
    ok = constraint_mask(ds, where)
    score = ds[objective].where(ok)
    reduce_dims = [d for d in score.dims if d not in keep]
    if not reduce_dims:
        raise SpecError(f"nothing to choose from: every dimension of {objective} is in keep={list(keep)}")
    flat = score.stack(_point=reduce_dims)
    fill = -np.inf if maximize else np.inf
    filled = flat.fillna(fill)
    index = filled.argmax("_point") if maximize else filled.argmin("_point")
    found = flat.notnull().any("_point")
    scalar_vars = [v for v in ds.data_vars if set(ds[v].dims) <= set(score.dims) and ds[v].dtype.kind in "fb"]
    picked = ds[scalar_vars].stack(_point=[d for d in reduce_dims]).isel(_point=index)
    out = xr.Dataset({v: picked[v].where(found) for v in scalar_vars if picked[v].dtype.kind == "f"})
    for dim in reduce_dims:
        out[f"best_{dim}"] = picked[dim].where(found) if picked[dim].dtype.kind in "iuf" else picked[dim]
    out["found"] = found
    out.attrs.update(objective=objective, maximize=str(maximize), where=repr(dict(where or {})))
    return out.drop_vars(["_point", *reduce_dims], errors="ignore")


def best_table(ds: xr.Dataset, objective: str, where: Any, keep: Sequence[str]) -> list[dict[str, Any]]:
    """Rows (dicts) of ``best`` for printing: one per combination of the kept dims."""
    res = best(ds, objective, where=where, keep=keep)
    frame = res.to_dataframe().reset_index()
    return frame.to_dict("records")
