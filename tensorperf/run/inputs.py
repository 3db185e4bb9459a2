"""Sweep inputs -> a Grid: every input checked by its kind (the registry in :mod:`tensorperf.axes`),
with errors naming the field, the value and what is allowed; what-if overrides of spec fields and
efficiency overrides checked against their own rules."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np
import torch

from tensorperf.axes import AXES, MAX_DRAFT_TOKENS, Kind
from tensorperf.catalog import presets
from tensorperf.catalog.specs import (
    HARDWARE_FIELDS,
    MODEL_FIELDS,
    Efficiency,
    HardwareSpec,
    ModelSpec,
    RecipeSpec,
    StackSpec,
)
from tensorperf.engine.grid import Grid
from tensorperf.engine.physics.comm import ALL_REDUCE
from tensorperf.engine.physics.speculative import SPECULATIVE_METHODS
from tensorperf.engine.roofline.values import EP_ALL_TO_ALLS, EP_OVERLAPS, QUEUES
from tensorperf.units import DTYPE_BYTES
from tensorperf.validation import SpecError, is_number, unknown_name_error

# What-if axes: any numeric field of ModelSpec or HardwareSpec (absolute values) or <field>_scale
# (a factor on each preset's own value).
OVERRIDABLE = frozenset(MODEL_FIELDS + HARDWARE_FIELDS + tuple(f"{f}_scale" for f in MODEL_FIELDS + HARDWARE_FIELDS))

_FLOAT_DTYPES = MappingProxyType({"float64": torch.float64, "float32": torch.float32})


def _listify(name: str, value: Any) -> tuple[tuple[Any, ...], bool]:
    """(values, is_dim): a list/tuple/range/1-D array is a dimension, anything else a scalar."""
    if isinstance(value, (list, tuple, range)) or (isinstance(value, np.ndarray) and value.ndim == 1):
        values = tuple(value.tolist() if isinstance(value, np.ndarray) else value)
        if not values:
            raise SpecError(f"{name} is an empty list; give at least one value")
        return values, True
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return (value.item(),), False
    if isinstance(value, (np.ndarray, torch.Tensor)):
        raise SpecError(f"{name} must be a scalar or a 1-D list, got an array of shape {tuple(value.shape)}")
    return (value,), False


# How each spec input is resolved: spec class, loaders by file suffix, preset lookup.
_SPEC_SOURCES: Mapping[str, tuple[type, Mapping[str, Any], Any]] = MappingProxyType(
    {
        "model": (ModelSpec, {".toml": presets.load_model_file, ".json": ModelSpec.from_hf_config}, presets.model),
        "hardware": (HardwareSpec, {".toml": presets.load_hardware_file}, presets.hardware_spec),
        "stack": (StackSpec, {".toml": presets.load_stack_file}, presets.stack),
        "recipe": (RecipeSpec, {".toml": presets.load_recipe_file}, presets.recipe),
        "draft_model": (
            ModelSpec,
            {".toml": presets.load_model_file, ".json": ModelSpec.from_hf_config},
            presets.model,
        ),
    }
)


def _spec(kind: str, item: Any) -> Any:
    """A spec object from a spec, a file path (by suffix) or a preset id."""
    cls, loaders, preset = _SPEC_SOURCES[kind]
    if isinstance(item, cls):
        return item
    if isinstance(item, str):
        for suffix, load in loaders.items():
            if item.endswith(suffix):
                return load(item)
        return preset(item)
    raise SpecError(
        f"{kind} must be a preset id, a {' or '.join(loaders)} path or a {cls.__name__}, got "
        f"{type(item).__name__} {item!r}"
    )


def _unique(name: str, labels: Sequence[Any]) -> None:
    seen = set()
    for label in labels:
        if label in seen:
            raise SpecError(f"{name} lists {label!r} twice; each value of a dimension must be unique")
        seen.add(label)


MAX_INTEGER = 2**53  # integer inputs stay exact in float64


def _integer_axis(name: str, values: tuple[Any, ...]) -> tuple[int, ...]:
    out = []
    for v in values:
        ok = isinstance(v, (int, np.integer)) and not isinstance(v, bool)
        if isinstance(v, (float, np.floating)) and np.isfinite(v) and float(v).is_integer():
            ok = True
        if not ok or not 1 <= v <= MAX_INTEGER:
            raise SpecError(f"{name} = {v!r} is not allowed: must be an integer >= 1 (at most 2^53)")
        out.append(int(v))
    return tuple(out)


# The names each label axis accepts: number formats (units.DTYPE_BYTES) and all-reduce algorithms
# (physics.comm); a test checks that every label axis of the registry has its table here.
LABELS: Mapping[str, Collection[str]] = MappingProxyType(
    {
        "weight_dtype": DTYPE_BYTES,
        "kv_dtype": DTYPE_BYTES,
        "act_dtype": DTYPE_BYTES,
        "allreduce": tuple(ALL_REDUCE),
        "speculative": SPECULATIVE_METHODS,
        "queue": tuple(QUEUES),
        "ep_overlap": tuple(EP_OVERLAPS),
        "ep_a2a": tuple(EP_ALL_TO_ALLS),
    }
)


def build_grid(
    *,
    model: Any,
    hardware: Any,
    dtype: Any = torch.float64,
    device: str | torch.device = "cpu",
    zipped: Sequence[str] = (),
    **axes: Any,
) -> Grid:
    """Validate the inputs of :func:`tensorperf.sweep` and build its Grid: each registered axis
    (:data:`tensorperf.axes.AXES`) checked by its kind, then the what-if inputs."""
    overrides = {k: axes.pop(k) for k in list(axes) if k in OVERRIDABLE}
    unknown = sorted(set(axes) - set(AXES))
    if unknown:
        raise unknown_name_error(
            "sweep input",
            unknown[0],
            tuple(AXES) + tuple(OVERRIDABLE),
            see="help(tensorperf.sweep) or `tensorperf sweep --help` lists the inputs; what-if: any numeric "
            "ModelSpec/HardwareSpec field or <field>_scale",
        )
    if isinstance(dtype, str):
        if dtype not in _FLOAT_DTYPES:
            raise unknown_name_error("dtype", dtype, _FLOAT_DTYPES)
        dtype = _FLOAT_DTYPES[dtype]
    if not isinstance(dtype, torch.dtype) or dtype not in (torch.float64, torch.float32):
        raise SpecError(f"dtype = {dtype!r} is not allowed: must be torch.float64 or torch.float32")
    axes.update(model=model, hardware=hardware)
    inputs: dict[str, tuple[tuple[Any, ...], tuple[Any, ...], bool]] = {}
    for name, axis in AXES.items():
        value = axes.get(name)
        if value is None and not axis.required:  # (model, hardware: required)
            if axis.default is None:
                continue  # optional input not given
            value = axis.default  # None means "the default"
        inputs[name] = _READERS[axis.kind](name, value)
    for name, value in overrides.items():
        values, is_dim = _listify(name, value)
        inputs[name] = (_override_values(name, values), values, is_dim)
    zipped = _check_zipped(zipped, inputs)
    for name, (_, labels, is_dim) in inputs.items():
        if is_dim and name not in zipped:
            _unique(name, labels)
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError, ValueError, OverflowError) as e:
        raise SpecError(f"device = {device!r} is not a torch device: {e}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SpecError(f"device = {str(device)!r} is not available on this machine (no CUDA); use 'cpu'")
    return Grid.build(inputs, dtype=dtype, device=device, zipped=zipped)


Input = tuple[tuple[Any, ...], tuple[Any, ...], bool]  # (values, coordinate labels, is a dimension)


def _read_spec(name: str, value: Any) -> Input:
    values, is_dim = _listify(name, value)
    specs = tuple(_spec(name, v) for v in values)
    return specs, tuple(s.name for s in specs), is_dim


def _read_label(name: str, value: Any) -> Input:
    values, is_dim = _listify(name, value)
    for v in values:
        if not isinstance(v, str) or v not in LABELS[name]:
            raise unknown_name_error(name, v, LABELS[name])
    return values, values, is_dim


def _read_count(name: str, value: Any) -> Input:
    values, is_dim = _listify(name, value)
    ints = _integer_axis(name, values)
    return ints, ints, is_dim


def _read_draft_tokens(name: str, value: Any) -> Input:
    """Draft tokens per step (speculative decoding): integers in [0, MAX_DRAFT_TOKENS]."""
    values, is_dim = _listify(name, value)
    out = []
    for v in values:
        whole = isinstance(v, (int, np.integer)) and not isinstance(v, bool)
        whole = whole or (isinstance(v, (float, np.floating)) and np.isfinite(v) and float(v).is_integer())
        if not whole or not 0 <= v <= MAX_DRAFT_TOKENS:
            raise SpecError(f"{name} = {v!r} is not allowed: must be an integer in [0, {MAX_DRAFT_TOKENS}]")
        out.append(int(v))
    return tuple(out), tuple(out), is_dim


def _read_batch(name: str, value: Any) -> Input:
    if isinstance(value, str):
        if value != "max":
            raise SpecError(
                f"{name} = {value!r} is not allowed: must be an integer >= 1, a list of "
                "them, or 'max' (the largest batch that fits each point)"
            )
        return ("max",), ("max",), False
    return _read_count(name, value)


# The values each real-valued kind allows: (test, in words)
_REAL_RANGES = MappingProxyType(
    {
        Kind.RATE: (lambda v: v > 0, "a finite number > 0"),
        Kind.FRACTION: (lambda v: 0 < v <= 1, "a number in (0, 1]"),
        Kind.FACTOR: (lambda v: v >= 1, "a finite number >= 1"),
        Kind.PROBABILITY: (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    }
)


def _read_real(name: str, value: Any) -> Input:
    """A rate (finite > 0), a fraction (in (0, 1]) or a factor (finite >= 1), by the axis's kind."""
    values, is_dim = _listify(name, value)
    allowed, words = _REAL_RANGES[AXES[name].kind]
    for v in values:
        if not (is_number(v) and allowed(v)):
            raise SpecError(f"{name} = {v!r} is not allowed: must be {words}")
    floats = tuple(float(v) for v in values)
    return floats, floats, is_dim


_READERS = MappingProxyType(
    {
        Kind.SPEC: _read_spec,
        Kind.LABEL: _read_label,
        Kind.COUNT: _read_count,
        Kind.BATCH: _read_batch,
        Kind.RATE: _read_real,
        Kind.FRACTION: _read_real,
        Kind.FACTOR: _read_real,
        Kind.DRAFT_TOKENS: _read_draft_tokens,
        Kind.PROBABILITY: _read_real,
    }
)


def _override_values(name: str, values: tuple[Any, ...]) -> tuple[float, ...]:
    """Check what-if values against the field's own rule (cross-field rules become masks)."""
    field = name.removesuffix("_scale")
    cls = ModelSpec if field in MODEL_FIELDS else HardwareSpec
    rules = () if name.endswith("_scale") else cls.CONSTRAINTS.get(field, ())
    rules = rules if isinstance(rules, tuple) else (rules,)
    for v in values:
        if isinstance(v, bool) and name.endswith("_scale"):
            raise SpecError(f"{name} = {v!r} is not allowed: must be a finite number > 0")
        if name.endswith("_scale") and not (is_number(v) and v > 0):
            raise SpecError(f"{name} = {v!r} is not allowed: must be a finite number > 0")
        for rule in rules:
            if not getattr(rule, "other", "") and not rule.check(v, None):
                raise SpecError(f"{cls.__name__}.{field} = {v!r} is not allowed: must be {rule.words}")
    return tuple(float(v) for v in values)


def _check_zipped(zipped: Sequence[str], inputs: Mapping[str, tuple]) -> tuple[str, ...]:
    """Inputs that share the 'point' dimension: each a list, all of one length."""
    if isinstance(zipped, str) or not isinstance(zipped, (list, tuple)):
        raise SpecError(f"zipped = {zipped!r} is not allowed: must be a list of input names")
    zipped = tuple(zipped)
    for name in zipped:
        if not isinstance(name, str) or name not in inputs:
            raise unknown_name_error("input in zipped", name, inputs)
        if not inputs[name][2]:
            raise SpecError(f"zipped input {name!r} must be a list (one value per point), got a scalar")
    lengths = {name: len(inputs[name][0]) for name in zipped}
    if len(set(lengths.values())) > 1:
        raise SpecError(f"zipped inputs must have one length (one value per point); got {lengths}")
    return zipped


def check_efficiency(efficiency: Mapping[str, float] | None) -> dict[str, float]:
    """Validate efficiency overrides: known factor names, values within the factor's range."""
    if efficiency is None:
        return {}
    if not isinstance(efficiency, Mapping):
        raise SpecError(f"efficiency must be a mapping of factor name to value, got {efficiency!r}")
    names = [f.name for f in dataclasses.fields(Efficiency)]
    allowed = names + [f"{n}_scale" for n in names]
    for key in efficiency:
        if key not in allowed:
            raise unknown_name_error("efficiency factor", key, allowed)
    for key, value in efficiency.items():
        if key.endswith("_scale") and not (is_number(value) and value > 0):
            raise SpecError(f"efficiency {key} = {value!r} is not allowed: must be a finite number > 0")
    Efficiency(**{k: v for k, v in efficiency.items() if not k.endswith("_scale")})  # names factor and value
    return {k: float(v) for k, v in efficiency.items()}
