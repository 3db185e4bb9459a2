"""A sweep's point as :func:`tensorperf.sweep` inputs again: its scalar coordinates (sweep inputs and
what-if fields) and its specs, rebuilt from the records a sweep's Dataset keeps in its attributes
(``model_specs``, ``hardware_specs``, ...: each spec's fields as JSON)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import xarray as xr

from tensorperf.axes import AXES
from tensorperf.catalog.specs import Efficiency, HardwareSpec, ModelSpec, RecipeSpec, SeedHardware, StackSpec
from tensorperf.run.inputs import OVERRIDABLE
from tensorperf.validation import SpecError

# the spec inputs a Dataset's attributes may record (``<input>_specs``) and their classes
_SPEC_CLASSES = MappingProxyType(
    {"model": ModelSpec, "hardware": HardwareSpec, "stack": StackSpec, "recipe": RecipeSpec, "draft_model": ModelSpec}
)


# HardwareSpec's kernel tables (efficiency, efficiency_fp8, efficiency_fp4, efficiency_fp8_block, ...)
_EFFICIENCY_TABLES = tuple(f.name for f in dataclasses.fields(HardwareSpec) if f.name.startswith("efficiency"))


def _spec_of(kind: str, fields: dict[str, Any]) -> Any:
    """A spec rebuilt from its record in a Dataset's attributes (the fields as JSON)."""
    if kind == "hardware":
        for name in _EFFICIENCY_TABLES:
            if isinstance(fields.get(name), dict):
                fields[name] = Efficiency(**fields[name])
        if isinstance(fields.get("seed"), dict):
            fields["seed"] = SeedHardware(**fields["seed"])
    return _SPEC_CLASSES[kind](**fields)


def _specs(attrs: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """The Dataset's specs of one kind by name (none when its attributes lack the records)."""
    records = attrs.get(f"{kind}_specs")
    if not isinstance(records, str):
        return {}
    try:
        return {name: _spec_of(kind, dict(fields)) for name, fields in json.loads(records).items()}
    except (TypeError, ValueError, SpecError) as e:
        raise SpecError(f"the Dataset's {kind}_specs attribute does not rebuild a {kind} spec: {e}") from None


def point_inputs(point: xr.Dataset) -> dict[str, Any]:
    """The :func:`tensorperf.sweep` inputs of one point of a sweep's Dataset: its scalar coordinates
    (sweep inputs and what-if fields), the specs from its attributes (preset ids where it has none)."""
    specs = {kind: _specs(point.attrs, kind) for kind in _SPEC_CLASSES}
    out: dict[str, Any] = {}
    for name in point.coords:
        if point[name].dims or not (name in AXES or name in OVERRIDABLE):
            continue
        value = point[name].values.item()
        out[name] = specs[name].get(value, value) if name in specs else value
    missing = [k for k in ("model", "hardware") if k not in out]
    if missing:
        raise SpecError(f"tp.explain needs a sweep's Dataset: it has no {' or '.join(missing)} coordinate")
    if point.attrs.get("dtype") in ("float32", "float64"):
        out["dtype"] = point.attrs["dtype"]
    return out
