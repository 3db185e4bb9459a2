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
import torch
import xarray as xr

from tensorperf.analysis.sensitivity import Sensitivity
from tensorperf.axes import AXES, ZIP_DIM
from tensorperf.engine.grid import Grid
from tensorperf.engine.metrics import METRICS, Evaluation
from tensorperf.run.reductions import Labelled

# Count-valued variables (GPUs, requests): integers in a sweep's Dataset and in the reductions' results.
COUNT_VARIABLES = ("num_gpus", "max_batch", "min_gpus_for_capacity")


def is_count(name: str) -> bool:
    """Whether a result variable holds counts: a count variable, or ``best_<name>`` of one, of an
    integer input (tokens, requests, parallel degrees) or of a zipped dim (a position)."""
    base = name.removeprefix("best_")
    if base in COUNT_VARIABLES:
        return True
    return name != base and (base == ZIP_DIM or (base in AXES and AXES[base].integer))


def as_counts(values: np.ndarray, found: np.ndarray | None = None) -> np.ndarray:
    """Float counts as int64, 0 where ``found`` is False (NaN there when ``found`` is None); values that
    are not all finite integers where found (a float what-if, batch='max' labels) stay as they are."""
    values = np.asarray(values)
    if values.dtype.kind != "f":
        return values
    found = ~np.isnan(values) if found is None else np.broadcast_to(np.asarray(found, dtype=bool), values.shape)
    kept = values[found]
    if not (np.isfinite(kept).all() and (kept == np.round(kept)).all()):
        return values
    return np.where(found, values, 0).astype(np.int64)


def _count_tensor(t: torch.Tensor) -> torch.Tensor:
    """A count metric as int64 where every value is a finite integer (exact: counts are float64)."""
    if t.is_floating_point() and bool(torch.all(torch.isfinite(t) & (t == torch.round(t)))):
        return t.to(torch.int64)
    return t


def _fields(obj: object) -> dict | str:
    """JSON for what json cannot encode itself: a dataclass as its fields (json recurses into them,
    as ``dataclasses.asdict`` would, without its deep copy: half the time), anything else as str."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    return str(obj)


def _spec_json(specs: tuple) -> str:
    return json.dumps({s.name: s for s in specs}, default=_fields)


def _masked(t: torch.Tensor, feasible: torch.Tensor, full: tuple[int, ...]) -> np.ndarray:
    """``t`` with NaN where infeasible, written once (one pass, whatever the engine's layout or
    broadcasting of ``t``) into a fresh C-order array of shape ``full``; benchmarks/README.md compares
    the ways to do it. Non-float metrics become float64, as NumPy would make them."""
    dtype = t.dtype if t.is_floating_point() else torch.float64
    nan = torch.tensor(float("nan"), dtype=dtype, device="cpu")  # cpu: host memory whatever the default
    out = torch.empty(full, dtype=dtype, device="cpu")
    mask = feasible.view(feasible.shape + (1,) * (len(full) - feasible.dim()))
    torch.where(mask, t.cpu(), nan, out=out)  # t.cpu(): t crosses from a GPU as it is, not grid-sized
    return out.numpy()


def _shared(t: torch.Tensor, full: tuple[int, ...]) -> np.ndarray:
    """A read-only view of ``t`` broadcast to ``full`` (no copy: stride 0 along the axes it does not
    depend on, the engine's axis order otherwise), as xarray's own ``broadcast`` and ``expand_dims``
    return. Read-only because it is the engine's memory: a write through one point of a broadcast
    view would change every point along its broadcast axes (and maybe a tensor the engine keeps)."""
    t = t.cpu()
    if t.untyped_storage().nbytes() > t.numel() * t.element_size():  # a view of something larger:
        t = t.clone()  # do not keep it alive
    out = t.expand(full).numpy()
    out.flags.writeable = False
    return out


def to_dataset(ev: Evaluation, grid: Grid, attrs: Mapping[str, str]) -> xr.Dataset:
    """Turn an Evaluation into an xr.Dataset with one dim per swept axis.

    Every variable spans all the grid's dims (plus its trailing result dims). Masked metrics
    (NaN where infeasible) and ``feasible`` are fresh, writable, C-order arrays; the unmasked ones
    and ``infeasible_reason`` share the engine's memory as read-only, possibly broadcast, views
    (docs/results.md)."""
    shape = grid.shape
    reason = ev.reason.detach().cpu()
    feasible = torch.empty(shape, dtype=torch.bool, device="cpu")
    torch.eq(reason.expand(shape), 0, out=feasible)
    data_vars = {}  # Variables, not DataArrays: xarray need not align them (benchmarks/README.md)
    for name, tensor in ev.values.items():
        extra = ev.trailing.get(name, ())
        full = shape + tuple(len(ev.trailing_coords[d]) for d in extra)
        meta = METRICS[name]
        if name in COUNT_VARIABLES and not meta.masked:
            tensor = _count_tensor(tensor.detach())
        array = _masked(tensor.detach(), feasible, full) if meta.masked else _shared(tensor.detach(), full)
        data_vars[name] = xr.Variable(grid.dims + extra, array, {"units": meta.units, "long_name": meta.long_name})
    data_vars["feasible"] = xr.Variable(
        grid.dims, feasible.numpy(), {"units": "1", "long_name": METRICS["feasible"].long_name}
    )
    data_vars["infeasible_reason"] = xr.Variable(
        grid.dims, _shared(reason, shape), {"units": "1", "long_name": METRICS["infeasible_reason"].long_name}
    )
    coords = grid.coords()
    coords.update({d: list(labels) for d, labels in ev.trailing_coords.items()})
    # The coordinates' order DataArrays would give: each dim's own coordinate where a variable first
    # uses it, then the others.
    first = {d: coords[d] for v in data_vars.values() for d in v.dims if isinstance(coords.get(d), list)}
    ds = xr.Dataset(data_vars, coords=first | coords)
    ds.attrs.update(attrs)
    ds.attrs["model_specs"] = _spec_json(grid.values["model"])
    ds.attrs["hardware_specs"] = _spec_json(grid.values["hardware"])
    ds.attrs["stack_specs"] = _spec_json(grid.values["stack"])
    ds.attrs["recipe_specs"] = _spec_json(grid.values["recipe"])
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


def labelled_dataset(result: Labelled) -> xr.Dataset:
    """A reduction's :class:`~tensorperf.run.reductions.Labelled` result (plain arrays with their
    dims, coordinates and attributes) as a Dataset. Counts come back as integers (:func:`is_count`;
    0 where ``found`` is False)."""
    found = result.data["found"][1] if "found" in result.data else None
    data = {
        name: (dims, as_counts(values, found) if is_count(name) else values, dict(attrs))
        for name, (dims, values, attrs) in result.data.items()
    }
    coords = {name: (dims, values) if dims else values for name, (dims, values) in result.coords.items()}
    ds = xr.Dataset(data, coords=coords)
    ds.attrs.update(result.attrs)
    return ds
