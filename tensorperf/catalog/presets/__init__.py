"""Model and hardware presets: one TOML file per preset, read lazily into frozen specs.

File schema (both kinds): top-level keys are the spec's field names in SI units, plus
``id`` (must equal the file name), ``notes`` (free text) and a ``[sources]`` table that maps each
field (or a group name) to where the number comes from. Hardware files may carry a ``[seed]``
table with the seed notebook's raw hardware dict (only ``mi300-seed`` does).
"""

from __future__ import annotations

import dataclasses
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from tensorperf.catalog.specs import Efficiency, HardwareSpec, ModelSpec, RecipeSpec, SeedHardware, StackSpec
from tensorperf.validation import SpecError, read_toml, unknown_name_error

__all__ = [
    "models",
    "hardware",
    "stacks",
    "recipes",
    "model",
    "hardware_spec",
    "stack",
    "recipe",
    "load_model_file",
    "load_hardware_file",
    "load_stack_file",
    "load_recipe_file",
]

_META_KEYS = ("id", "notes", "sources", "display_name")


def _preset_dir(kind: str) -> Path:
    return Path(str(resources.files(__package__) / kind))


def _ids(kind: str) -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in _preset_dir(kind).glob("*.toml")))


def models() -> tuple[str, ...]:
    """Ids of the model presets."""
    return _ids("models")


def hardware() -> tuple[str, ...]:
    """Ids of the hardware presets."""
    return _ids("hardware")


def stacks() -> tuple[str, ...]:
    """Ids of the serving-stack presets."""
    return _ids("stacks")


def recipes() -> tuple[str, ...]:
    """Ids of the precision-recipe presets (weight format per tensor group)."""
    return _ids("recipes")


def _read_toml(path: Any) -> tuple[Path, dict[str, Any]]:
    data = read_toml(path, "spec file")  # checks that path is a str or Path
    return Path(path), data


def _table(path: Path, data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.pop(key, {})
    if not isinstance(value, dict):
        raise SpecError(f"{path}: {key} = {value!r} is not allowed: must be a table ([{key}])")
    return dict(value)


def _build(cls: type, data: dict[str, Any], path: Path, name: str) -> Any:
    known = {f.name for f in dataclasses.fields(cls)} - {
        "name",
        "seed",
        "source",
        "efficiency",
        "efficiency_fp8",
        "efficiency_fp4",
        "efficiency_fp8_block",
        "efficiency_mxfp4_w4a16",
    }
    values = {k: v for k, v in data.items() if k not in _META_KEYS}
    unknown = sorted(set(values) - known)
    if unknown:
        raise SpecError(
            f"{path}: unknown key {unknown[0]!r} for {cls.__name__}; allowed keys: {', '.join(sorted(known))}"
        )
    sources = data.get("sources", {})
    source = "; ".join(f"{k}: {v}" for k, v in sources.items()) if isinstance(sources, dict) else str(sources)
    try:
        return cls(name=name, source=source, **values)
    except SpecError as e:
        raise SpecError(f"{path}: {e}") from None
    except TypeError as e:  # a required field is missing
        raise SpecError(f"{path}: {e}") from None


def load_model_file(path: str | Path) -> ModelSpec:
    """A ModelSpec from a preset-schema TOML file."""
    path, data = _read_toml(path)
    return _build(ModelSpec, data, path, str(data.get("id", path.stem)))


def load_hardware_file(path: str | Path) -> HardwareSpec:
    """A HardwareSpec from a preset-schema TOML file (``[seed]`` table optional)."""
    path, data = _read_toml(path)
    seed = _table(path, data, "seed") if "seed" in data else None
    efficiency = _table(path, data, "efficiency")
    # [efficiency.fp8] / [efficiency.fp4]: factors that differ for kernels with those weights
    # [efficiency.fp8_block]: block-scaled fp8 kernels, on top of the fp8 table
    # [efficiency.mxfp4_w4a16]: MXFP4 weights on the weight-only (bf16-math) path, on top of the bf16 table
    tables = ("fp8", "fp4", "fp8_block", "mxfp4_w4a16")
    per_dtype = {k: efficiency.pop(k) for k in tables if isinstance(efficiency.get(k), dict)}
    spec = _build(HardwareSpec, data, path, str(data.get("id", path.stem)))
    try:
        base = Efficiency(**efficiency)
        specific = {f"efficiency_{k}": dataclasses.replace(base, **v) for k, v in per_dtype.items() if k != "fp8_block"}
        if "fp8_block" in per_dtype:
            under = specific.get("efficiency_fp8", base)
            specific["efficiency_fp8_block"] = dataclasses.replace(under, **per_dtype["fp8_block"])
        spec = dataclasses.replace(spec, efficiency=base, **specific)
    except (SpecError, TypeError) as e:
        raise SpecError(f"{path}: [efficiency]: {e}") from None
    if seed is not None:
        try:
            spec = dataclasses.replace(spec, seed=SeedHardware(**seed))
        except (SpecError, TypeError) as e:
            raise SpecError(f"{path}: [seed]: {e}") from None
    return spec


def load_stack_file(path: str | Path) -> StackSpec:
    """A StackSpec from a preset-schema TOML file."""
    path, data = _read_toml(path)
    return _build(StackSpec, data, path, str(data.get("id", path.stem)))


def load_recipe_file(path: str | Path) -> RecipeSpec:
    """A RecipeSpec from a preset-schema TOML file."""
    path, data = _read_toml(path)
    return _build(RecipeSpec, data, path, str(data.get("id", path.stem)))


def recipe(preset_id: str) -> RecipeSpec:
    """The RecipeSpec of a precision-recipe preset id."""
    if not isinstance(preset_id, str) or preset_id not in recipes():
        raise unknown_name_error("recipe preset", preset_id, recipes())
    return _recipe(preset_id)


@cache
def _recipe(preset_id: str) -> RecipeSpec:
    return load_recipe_file(_preset_dir("recipes") / f"{preset_id}.toml")


def stack(preset_id: str) -> StackSpec:
    """The StackSpec of a serving-stack preset id."""
    if not isinstance(preset_id, str) or preset_id not in stacks():
        raise unknown_name_error("stack preset", preset_id, stacks())
    return _stack(preset_id)


@cache
def _stack(preset_id: str) -> StackSpec:
    return load_stack_file(_preset_dir("stacks") / f"{preset_id}.toml")


def model(preset_id: str) -> ModelSpec:
    """The ModelSpec of a preset id; an unknown id raises SpecError naming the closest ids."""
    if not isinstance(preset_id, str) or preset_id not in models():
        raise unknown_name_error("model preset", preset_id, models())
    return _model(preset_id)


def hardware_spec(preset_id: str) -> HardwareSpec:
    """The HardwareSpec of a preset id; an unknown id raises SpecError naming the closest ids."""
    if not isinstance(preset_id, str) or preset_id not in hardware():
        raise unknown_name_error("hardware preset", preset_id, hardware())
    return _hardware_spec(preset_id)


@cache
def _model(preset_id: str) -> ModelSpec:
    return load_model_file(_preset_dir("models") / f"{preset_id}.toml")


@cache
def _hardware_spec(preset_id: str) -> HardwareSpec:
    return load_hardware_file(_preset_dir("hardware") / f"{preset_id}.toml")
