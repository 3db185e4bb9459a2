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
    where = ["tokens_per_s_per_user >= 20"]
    keep = ["hardware", "weight_dtype"]

Every key is checked here: an unknown key raises :class:`SpecError` naming the file, the key and
the allowed keys; a bad value names the file and the input (the checks of :func:`sweep` itself).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tensorperf.axes import AXES
from tensorperf.engine.conventions import CONVENTIONS
from tensorperf.run.inputs import OVERRIDABLE, build_grid, check_efficiency
from tensorperf.run.reductions import COMPARISONS
from tensorperf.validation import SpecError, read_toml

SWEEP_KEYS = (*AXES, "zipped")  # the [sweep] table: every registered axis, and zipped
TOP_KEYS = ("description", "convention", "sweep", "efficiency", "best")
BEST_KEYS = ("objective", "where", "keep", "maximize")
WHAT_IF_WORDS = "any numeric ModelSpec/HardwareSpec field or <field>_scale (what-if)"

_WHERE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(>=|<=|==|>|<)\s*([-+0-9.eE]+)\s*$")


@dataclass(frozen=True)
class SweepFile:
    """A parsed sweep file: ``inputs`` for :func:`sweep`, plus the optional tables."""

    path: str
    inputs: dict[str, Any]
    efficiency: dict[str, float] | None = None
    convention: str | None = None
    description: str = ""
    best: dict[str, Any] = field(default_factory=dict)


def parse_where(text: str, origin: str = "--where") -> tuple[str, tuple[str, float]]:
    """``"tokens_per_s_per_user>=20"`` -> ``("tokens_per_s_per_user", (">=", 20.0))``."""
    match = _WHERE.match(text) if isinstance(text, str) else None
    value = None
    if match:
        try:
            value = float(match.group(3))
        except ValueError:
            value = None
    if match is None or value is None:
        raise SpecError(
            f"{origin} {text!r} is not allowed: must be VARIABLE OP NUMBER with OP one of "
            f"{', '.join(COMPARISONS)} (SI units, e.g. 'tokens_per_s_per_user>=20', 'tpot<=0.05')"
        )
    return match.group(1), (match.group(2), value)


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
            value = dict(parse_where(v, f"{path}: [best] where") for v in value)
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
        inputs[key] = _scalar_or_list(path, key, value) if key != "zipped" else value
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
