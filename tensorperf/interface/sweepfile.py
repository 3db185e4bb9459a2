"""TOML sweep files: the inputs of :func:`tensorperf.sweep` written down, for ``tensorperf sweep FILE``.

.. code-block:: toml

    description = "Llama-3.1-70B on one 8-GPU node"   # optional, printed above the results
    convention = "roofline"                            # optional ("roofline" or "seed")

    [sweep]                     # sweep() inputs: a list is a dimension, a scalar a scalar coordinate
    model = "llama-3.1-70b"
    hardware = ["h100-sxm", "h200-sxm", "b200"]
    weight_dtype = ["bf16", "fp8"]
    batch = [1, 8, 64]          # or "max"
    tp = [1, 2, 4, 8]
    hbm_bandwidth_scale = [1, 1.3]      # what-if: any numeric ModelSpec/HardwareSpec field or <field>_scale
    # zipped = ["tp", "dp"]             # inputs that share one 'point' dimension

    [efficiency]                # optional: Efficiency factor -> value (or <factor>_scale)
    memory = 0.8

    [best]                      # optional: what `tensorperf sweep` / `tensorperf best` report
    objective = "tokens_per_s_per_gpu"
    where = ["tokens_per_s_per_user >= 20", "0.5 <= serving_ttft <= 2"]
    keep = ["hardware", "weight_dtype"]

A numeric input may be a range written as a string, alone or among the values of a list: ``batch =
"1:512:x2"`` (1, 2, 4, ..., 512), ``prompt_len = "1024:8192:1024"``, ``tp = "1:8"`` (every integer);
``model = "all"`` / ``hardware = "all"`` (and ``stack``, ``recipe``) is every preset. The command line
reads its flag values with the same grammar (:func:`parse_values`).

Every key is checked here: an unknown key raises :class:`SpecError` naming the file, the key and
the allowed keys; a bad value names the file and the input (the checks of :func:`sweep` itself).
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from tensorperf.axes import AXES, Kind
from tensorperf.engine.conventions import CONVENTIONS
from tensorperf.run.inputs import OVERRIDABLE, build_grid, check_efficiency
from tensorperf.run.reductions import Condition
from tensorperf.validation import SpecError, read_toml

SWEEP_KEYS = (*AXES, "zipped")  # the [sweep] table: every registered axis, and zipped
TOP_KEYS = ("description", "convention", "sweep", "efficiency", "best")
BEST_KEYS = ("objective", "where", "keep", "maximize")
WHAT_IF_WORDS = "any numeric ModelSpec/HardwareSpec field or <field>_scale (what-if)"

_NAME = r"([A-Za-z_][A-Za-z0-9_]*)"
_NUMBER = r"([-+0-9.eE]+)"
_WHERE = re.compile(rf"^\s*{_NAME}\s*(>=|<=|==|>|<)\s*{_NUMBER}\s*$")
_WHERE_RANGE = re.compile(rf"^\s*{_NUMBER}\s*(<=|<)\s*{_NAME}\s*(<=|<)\s*{_NUMBER}\s*$")  # 20 <= x <= 50
_WHERE_RANGE_DOWN = re.compile(rf"^\s*{_NUMBER}\s*(>=|>)\s*{_NAME}\s*(>=|>)\s*{_NUMBER}\s*$")  # 50 >= x >= 20
_FLIP = MappingProxyType({"<=": ">=", "<": ">", ">=": "<=", ">": "<"})  # LOW <= x is x >= LOW
WHERE_FORMS = (
    "VARIABLE OP NUMBER with OP one of >=, >, <=, <, == (e.g. 'tokens_per_s_per_user>=20', "
    "'tpot<=0.05'), or a range LOW <= VARIABLE <= HIGH (e.g. '20<=serving_tokens_per_s_per_user<=50'); SI units"
)

# The written forms of a list of values (flags and sweep files).
RANGE_FORMS = (
    "V1,V2,...; START:STOP (steps of 1: 1:512 is 1,2,...,512); START:STOP:STEP; "
    "START:STOP:xFACTOR (geometric, FACTOR > 1: 1:512:x2 is 1,2,4,...,512)"
)
RANGE_AT_MOST = 100_000  # values one range may expand to
# The spec inputs whose value "all" is every preset: input -> the presets function listing them.
ALL_PRESETS = MappingProxyType(
    {"model": "models", "hardware": "hardware", "stack": "stacks", "recipe": "recipes", "draft_model": "models"}
)


@dataclass(frozen=True)
class SweepFile:
    """A parsed sweep file: ``inputs`` for :func:`sweep`, plus the optional tables."""

    path: str
    inputs: dict[str, Any]
    efficiency: dict[str, float] | None = None
    convention: str | None = None
    description: str = ""
    best: dict[str, Any] = field(default_factory=dict)


def _float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return None if math.isnan(value) else value


def parse_where(text: str, origin: str = "--where") -> tuple[str, Condition]:
    """``"tokens_per_s_per_user>=20"`` -> ``("tokens_per_s_per_user", (">=", 20.0))``; a range
    ``"20<=x<=50"`` -> ``("x", ((">=", 20.0), ("<=", 50.0)))`` (both must hold)."""

    def bad(why: str = "") -> SpecError:
        return SpecError(f"{origin} {text!r} is not allowed{why}: must be {WHERE_FORMS}")

    if not isinstance(text, str):
        raise bad()
    if match := _WHERE.match(text):
        name, op, number = match.groups()
    elif match := _WHERE_RANGE.match(text) or _WHERE_RANGE_DOWN.match(text):
        first, op1, name, op2, second = match.groups()
        a, b = _float(first), _float(second)
        if a is None or b is None:
            raise bad()
        if (a > b) if op1 in ("<=", "<") else (a < b):
            raise bad(f" ({first} to {second} is an empty range)")
        return name, ((_FLIP[op1], a), (op2, b))
    else:
        raise bad()
    value = _float(number)
    if value is None:
        raise bad()
    return name, (op, value)


def merge_where(pairs: Iterable[tuple[str, Condition]]) -> dict[str, Condition]:
    """Parsed where-conditions as one ``where`` mapping: several on one variable all hold (a range)."""
    out: dict[str, list[tuple[str, float]]] = {}
    for name, cond in pairs:
        out.setdefault(name, []).extend(cond if isinstance(cond[0], tuple) else (cond,))
    return {name: conds[0] if len(conds) == 1 else tuple(conds) for name, conds in out.items()}


def _number(text: str, integer: bool | None) -> int | float:
    """A number of a list or a range: ``integer`` True, an int (or an error); False, a float; None, an
    int where it is written as one."""
    text = text.strip()
    try:
        return float(int(text)) if integer is False else int(text)
    except ValueError:
        pass
    value = _float(text)
    if value is None or math.isinf(value):
        raise ValueError(f"{text!r} is not a number")
    if integer and not value.is_integer():
        raise ValueError(f"{text!r} is not an integer")
    return int(value) if integer else value


def parse_range(text: str, integer: bool | None = None) -> list[int | float]:
    """``START:STOP`` (START, START+1, ... up to STOP), ``START:STOP:STEP``, ``START:STOP:xFACTOR``
    (START, START*FACTOR, ... up to STOP): STOP is included where the steps reach it. ``integer``:
    True, integers only; False, floats; None, integers where START, STOP and the step are."""
    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise ValueError(f"{text!r} has {len(parts)} parts, not 2 or 3")
    step_text = parts[2].strip() if len(parts) == 3 else "1"
    geometric = step_text[:1] in ("x", "*")
    start, stop = _number(parts[0], integer), _number(parts[1], integer)
    step = _number(step_text[1:] if geometric else step_text, integer)
    if start > stop:
        raise ValueError(f"START {start} > STOP {stop}")
    if geometric and (step <= 1 or start <= 0):
        raise ValueError("a geometric range needs START > 0 and FACTOR > 1")
    if not geometric and step <= 0:
        raise ValueError("STEP must be > 0")
    # the count of values: how many steps fit in [START, STOP] (a relative 1e-9 absorbs rounding)
    span = math.log(stop / start) / math.log(step) if geometric else (stop - start) / step
    count = int(math.floor(span * (1 + 1e-9) + 1e-9)) + 1
    if count > RANGE_AT_MOST:
        raise ValueError(f"it has {count:,} values, more than {RANGE_AT_MOST:,}")
    exact = all(isinstance(v, int) for v in (start, stop, step))
    values = [start * step**i if geometric else start + i * step for i in range(count)]
    return values if exact else [float(f"{v:.12g}") for v in values]


def parse_values(text: str, integer: bool | None = None) -> list[int | float]:
    """Comma-separated numbers and ranges (:func:`parse_range`), in order: ``"1,3,8:64:x2"``."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise ValueError(f"{text!r} has no value")
    out: list[int | float] = []
    for item in items:
        if ":" in item:
            try:
                out.extend(parse_range(item, integer))
            except ValueError as e:
                raise ValueError(f"{item!r} is not a valid range: {e}") from None
        else:
            out.append(_number(item, integer))
    return out


def all_presets(name: str) -> list[str]:
    """Every preset of a spec input (``model="all"``): the ids ``tensorperf presets`` lists."""
    from tensorperf.catalog import presets

    return list(getattr(presets, ALL_PRESETS[name])())


def _expand(path: str, key: str, value: Any) -> Any:
    """A sweep-file value with its ranges expanded (numeric inputs) and "all" (spec inputs)."""
    axis = AXES.get(key)
    if axis is not None and key in ALL_PRESETS and value == "all":
        return all_presets(key)
    if (axis is not None and axis.kind in (Kind.SPEC, Kind.LABEL)) or key == "zipped":
        return value
    items = value if isinstance(value, list) else [value]
    if not any(isinstance(v, str) and ":" in v for v in items):
        return value
    integer = axis.integer if axis is not None else None
    out: list[Any] = []
    for item in items:
        if not (isinstance(item, str) and ":" in item):
            out.append(item)
            continue
        try:
            out.extend(parse_range(item, integer))
        except ValueError as e:
            raise SpecError(
                f"{path}: [sweep] {key} = {item!r} is not a valid range ({e}); allowed: {RANGE_FORMS}"
            ) from None
    return out[0] if len(out) == 1 else out


def _unknown(
    path: str, where: str, key: str, allowed: tuple[str, ...], extra: str = "", also: tuple[str, ...] = ()
) -> SpecError:
    close = difflib.get_close_matches(key, allowed + also, n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    return SpecError(f"{path}: unknown key {key!r} in {where}.{hint} Allowed: {', '.join(allowed)}{extra}")


def _scalar_or_list(path: str, key: str, value: Any) -> Any:
    def plain(v: object) -> bool:
        return isinstance(v, (str, int, float)) and not isinstance(v, bool)

    if plain(value) or (isinstance(value, list) and value and all(plain(v) for v in value)):
        return value
    raise SpecError(
        f"{path}: [sweep] {key} = {value!r} is not allowed: must be a value or a non-empty list of "
        "values (strings or numbers)"
    )


def _best_table(path: str, table: Any) -> dict[str, Any]:
    if not isinstance(table, Mapping):
        raise SpecError(f"{path}: best must be a table ([best]) with keys {', '.join(BEST_KEYS)}")
    out: dict[str, Any] = {}
    for key, value in table.items():
        if key not in BEST_KEYS:
            raise _unknown(path, "[best]", key, BEST_KEYS)
        if key == "objective" and not isinstance(value, str):
            raise SpecError(f"{path}: [best] objective = {value!r} is not allowed: must be a variable name")
        if key == "maximize" and not isinstance(value, bool):
            raise SpecError(f"{path}: [best] maximize = {value!r} is not allowed: must be true or false")
        if key in ("where", "keep"):
            value = [value] if isinstance(value, str) else value
            if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                raise SpecError(f"{path}: [best] {key} = {value!r} is not allowed: must be a list of strings")
        if key == "where":
            value = merge_where(parse_where(v, f"{path}: [best] where") for v in value)
        out[key] = value
    return out


def load(path: str | Path, *, check: bool = True) -> SweepFile:
    """Read and check a sweep file. With ``check``, the inputs are validated by :func:`build_grid`
    (with a placeholder model/hardware where the file leaves them to flags)."""
    path = str(path)
    doc = read_toml(path, "sweep file")
    for key in doc:
        if key not in TOP_KEYS:
            raise _unknown(path, "the sweep file", key, TOP_KEYS)
    if "sweep" not in doc or not isinstance(doc["sweep"], Mapping):
        raise SpecError(f"{path}: no [sweep] table; it holds the sweep() inputs ({', '.join(SWEEP_KEYS)})")
    inputs = {}
    for key, value in doc["sweep"].items():
        if key not in SWEEP_KEYS and key not in OVERRIDABLE:
            raise _unknown(path, "[sweep]", key, SWEEP_KEYS, f", and {WHAT_IF_WORDS}", tuple(sorted(OVERRIDABLE)))
        inputs[key] = _expand(path, key, _scalar_or_list(path, key, value)) if key != "zipped" else value
    efficiency = doc.get("efficiency")
    if efficiency is not None:
        if not isinstance(efficiency, Mapping):
            raise SpecError(f"{path}: efficiency must be a table ([efficiency]) of factor -> number")
        for key, value in efficiency.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise SpecError(f"{path}: [efficiency] {key} = {value!r} is not a number")
        try:
            efficiency = check_efficiency(efficiency)
        except SpecError as e:
            raise SpecError(f"{path}: [efficiency] {e}") from None
    convention = doc.get("convention")
    if convention is not None and (not isinstance(convention, str) or convention not in CONVENTIONS):
        raise SpecError(f"{path}: convention = {convention!r} is not allowed: must be one of {', '.join(CONVENTIONS)}")
    description = doc.get("description", "")
    if not isinstance(description, str):
        raise SpecError(f"{path}: description = {description!r} is not allowed: must be a string")
    best = _best_table(path, doc.get("best", {}))
    if check:
        trial = {"model": "llama-3.1-8b", "hardware": "h100-sxm"} | inputs
        try:
            build_grid(**trial)
        except SpecError as e:
            raise SpecError(f"{path}: [sweep] {e}") from None
    return SweepFile(
        path=path, inputs=inputs, efficiency=efficiency, convention=convention, description=description, best=best
    )
