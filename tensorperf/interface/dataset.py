"""The one place where evaluated tensors become a labelled xarray Dataset.

Each variable gets CF-style ``units`` and ``long_name`` attributes from the metric registry
(:data:`tensorperf.engine.metrics.METRICS`). Infeasible points become NaN here (and only here) for the
metrics that are meaningless there; ``feasible`` and ``infeasible_reason`` stay in the Dataset.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping

import numpy as np
import xarray as xr

from tensorperf.analysis.sensitivity import Sensitivity
from tensorperf.engine.grid import Grid
from tensorperf.engine.metrics import METRICS, Evaluation


def _spec_json(specs: tuple) -> str:
    def plain(obj):
        return {k: v for k, v in dataclasses.asdict(obj).items()}

    return json.dumps({s.name: plain(s) for s in specs}, default=str)


def to_dataset(ev: Evaluation, grid: Grid, attrs: Mapping[str, str]) -> xr.Dataset:
    """Turn an Evaluation into an xr.Dataset with one dim per swept axis."""
    shape = grid.shape
    feasible = (ev.reason == 0).expand(shape).cpu().numpy()
    data_vars = {}
    for name, tensor in ev.values.items():
        extra = ev.trailing.get(name, ())
        extra_shape = tuple(len(ev.trailing_coords[d]) for d in extra)
        full = tensor.detach().expand(shape + extra_shape).cpu().numpy()
        meta = METRICS[name]
        if meta.masked:
            mask = feasible.reshape(shape + (1,) * len(extra))
            full = np.where(mask, full, np.nan)
        data_vars[name] = xr.DataArray(
            np.array(full, copy=True, order="C"),
            dims=grid.dims + extra,  # (C order whatever the engine's axes)
            attrs={"units": meta.units, "long_name": meta.long_name},
        )
    reason = ev.reason.expand(shape).cpu().numpy()
    data_vars["feasible"] = xr.DataArray(
        feasible.copy(), dims=grid.dims, attrs={"units": "1", "long_name": METRICS["feasible"].long_name}
    )
    data_vars["infeasible_reason"] = xr.DataArray(
        reason.copy(), dims=grid.dims, attrs={"units": "1", "long_name": METRICS["infeasible_reason"].long_name}
    )
    coords = grid.coords()
    coords.update({d: list(labels) for d, labels in ev.trailing_coords.items()})
    ds = xr.Dataset(data_vars, coords=coords)
    ds.attrs.update(attrs)
    ds.attrs["model_specs"] = _spec_json(grid.values["model"])
    ds.attrs["hardware_specs"] = _spec_json(grid.values["hardware"])
    return ds


def sensitivity_dataset(result: Sensitivity) -> xr.Dataset:
    """A :class:`~tensorperf.analysis.sensitivity.Sensitivity` as a Dataset: ``gradient`` and
    ``elasticity`` on the grid's dims plus ``param``, the metric as ``value``, and ``feasible``."""
    grid, of = result.grid, result.of
    dims = grid.dims + ("param",)
    unit = METRICS[of].units
    ds = xr.Dataset(
        {
            "gradient": (
                dims,
                result.gradient.cpu().numpy(),
                {"units": f"{unit} per unit of param", "long_name": f"d {of} / d param at each point"},
            ),
            "elasticity": (
                dims,
                result.elasticity.cpu().numpy(),
                {"units": "1", "long_name": f"d ln {of} / d ln param"},
            ),
            "value": (grid.dims, result.value.cpu().numpy(), {"units": unit, "long_name": METRICS[of].long_name}),
            "feasible": (
                grid.dims,
                result.feasible.cpu().numpy(),
                {"units": "1", "long_name": METRICS["feasible"].long_name},
            ),
        },
        coords=grid.coords() | {"param": list(result.wrt)},
    )
    ds.attrs.update(of=of, mode="reverse")
    return ds
