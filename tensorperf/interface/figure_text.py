"""The words on a figure: a variable's long name and readable unit, and a title saying what the
results are (model, hardware, workload, constraints).

Values stay SI inside tensorperf; a figure scales them here, at the edge, to the unit a reader
expects for their size (seconds to ms or µs, bytes to GB, FLOP to TFLOP, ...) and names that unit
on the axis. Long names come from each variable's CF ``long_name``/``units`` attributes, then the
metric registry, then the sweep-input registry (for dims such as ``tp``).
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from tensorperf.axes import AXES
from tensorperf.engine.metrics import METRICS

# SI unit -> the prefixes a figure may scale it to, largest first (factor, prefix); units not
# listed are drawn as they are (tokens/s, $, 1/s, ...)
_PREFIXES: Mapping[str, tuple[tuple[float, str], ...]] = {
    "s": ((1.0, ""), (1e-3, "m"), (1e-6, "µ")),
    "bytes": ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, "")),
    "FLOP": ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1.0, "")),
    "W": ((1e6, "M"), (1e3, "k"), (1.0, "")),
    "J": ((1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "µ")),
}
_SYMBOL = {"bytes": "B"}  # how a unit reads after a prefix (GB, not Gbytes)
MAX_LISTED = 6  # models or hardware named in a title; more are counted (the legend names them)
WRAP = 60  # characters per line of a y-axis label (an x-axis label takes WIDE)
WIDE = 90


@dataclass(frozen=True)
class Unit:
    """How a variable is drawn: multiply its SI values by ``factor``; the axis names ``text``."""

    factor: float
    text: str  # "" for a dimensionless quantity


def unit_of(ds: xr.Dataset, name: str) -> str:
    """The SI unit of a variable or dim (its ``units`` attribute, else the registries'); '1' if none."""
    if name in ds.variables and "units" in ds[name].attrs:
        return str(ds[name].attrs["units"])
    if name in METRICS:
        return METRICS[name].units
    if name in AXES:
        return AXES[name].unit
    return "1"


def long_name(ds: xr.Dataset, name: str) -> str:
    """A variable's or dim's long name (``long_name`` attribute, else the registries'), else its name."""
    if name in ds.variables and "long_name" in ds[name].attrs:
        return str(ds[name].attrs["long_name"])
    if name in METRICS:
        return METRICS[name].long_name
    if name in AXES:
        return AXES[name].help.split(":")[0].split(" (")[0]
    return name.replace("_", " ")


def short_name(ds: xr.Dataset, name: str) -> str:
    """The long name without its closing remark in parentheses ('time per output token')."""
    full = long_name(ds, name)
    head, sep, tail = full.rpartition(" (")
    return head if sep and full.endswith(")") and "(" not in tail else full


def readable(si_unit: str, values: Any) -> Unit:
    """The unit to draw ``values`` (SI, in ``si_unit``) in: the largest prefix that keeps the largest
    finite magnitude >= 1 (0.0123 s -> ms; 8.1e10 bytes -> GB). Dimensionless '1' draws as ''."""
    if si_unit == "1":
        return Unit(1.0, "")
    prefixes = _PREFIXES.get(si_unit)
    if prefixes is None:
        return Unit(1.0, si_unit)
    finite = np.abs(np.asarray(values, dtype=float))
    finite = finite[np.isfinite(finite) & (finite > 0)]
    top = float(finite.max()) if finite.size else 1.0
    factor, prefix = next(((f, p) for f, p in prefixes if top >= f), prefixes[-1])
    return Unit(1.0 / factor, prefix + _SYMBOL.get(si_unit, si_unit) if prefix else si_unit)


def axis_label(ds: xr.Dataset, name: str, unit: Unit, width: int = WRAP) -> str:
    """``long name (unit)``, wrapped to ``width`` characters a line; a long name's closing remark in
    parentheses becomes a clause ('time to first token, mean over the batch (ms)')."""
    return wrap(clause(long_name(ds, name)) + (f" ({unit.text})" if unit.text else ""), width)


def clause(name: str) -> str:
    """'time to first token (mean over the batch)' -> 'time to first token, mean over the batch'."""
    head, sep, tail = name.rpartition(" (")
    if sep and name.endswith(")") and "(" not in tail and ")" not in tail[:-1]:
        return f"{head}, {tail[:-1]}"
    return name


def wrap(line: str, width: int = WRAP) -> str:
    """``line`` broken into lines of at most ``width`` characters."""
    return "\n".join(textwrap.wrap(line, width))


def _labels(ds: xr.Dataset, name: str) -> list[str]:
    if name not in ds.coords:
        return []
    return [label_text(v) for v in np.atleast_1d(ds[name].values)]


def label_text(value: Any) -> str:
    """A coordinate label as text: integers without '.0', numpy scalars as plain values."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def number_text(value: Any) -> str:
    """A limit as typed: 20, 0.05, 1,000,000 (a whole number with thousands separators), 2.5e-06."""
    if not isinstance(value, (int, float, np.number)) or isinstance(value, bool):
        return str(value)
    value = float(value)
    return f"{int(value):,}" if value.is_integer() and abs(value) < 1e15 else f"{value:g}"


def _listed(labels: Sequence[str], what: str) -> str:
    if len(labels) > MAX_LISTED:
        return f"{len(labels)} {what}"
    return ", ".join(labels) or what


def condition_text(ds: xr.Dataset, name: str, condition: Any) -> str:
    """``tokens_per_s_per_user >= 20 tokens/s`` (the variable as the user names it, SI value and unit)."""
    unit = unit_of(ds, name)
    unit = "" if unit == "1" else f" {unit}"
    if isinstance(condition, (tuple, list)) and len(condition) == 2 and isinstance(condition[0], str):
        return f"{name} {condition[0]} {number_text(condition[1])}{unit}"
    if isinstance(condition, (tuple, list)) and all(isinstance(c, (tuple, list)) for c in condition):
        ops = sorted(condition, key=lambda c: str(c[0]))  # (">=", lo), ("<=", hi): "lo <= name <= hi"
        if len(ops) == 2 and ops[0][0] in ("<", "<=") and ops[1][0] in (">", ">="):
            (upper, hi), (lower, lo) = ops
            return f"{number_text(lo)} {lower.replace('>', '<')} {name} {upper} {number_text(hi)}{unit}"
        return " and ".join(condition_text(ds, name, c) for c in condition)
    return f"{name} {condition}"


def workload_text(ds: xr.Dataset, fixed: Sequence[str] = ()) -> str:
    """'prompt 1024, output 128 tokens · weights fp8, KV cache bf16' and the ``fixed`` dims' labels."""
    parts = []
    prompt, output = _labels(ds, "prompt_len"), _labels(ds, "output_len")
    if prompt or output:
        parts.append(f"prompt {'/'.join(prompt) or '?'}, output {'/'.join(output) or '?'} tokens")
    formats = [f"{what} {'/'.join(_labels(ds, n))}" for n, what in (("weight_dtype", "weights"), ("kv_dtype", "KV"))]
    parts.append(", ".join(f for f in formats if not f.endswith(" ")))
    for name, what in (("request_rate", "req/s"), ("num_requests", "requests"), ("world_size", "GPUs")):
        if _labels(ds, name):
            parts.append(f"{'/'.join(_labels(ds, name))} {what}")
    if ds.attrs.get("convention") not in (None, "roofline"):
        parts.append(f"{ds.attrs['convention']} convention")
    layout = [f"{d} {'/'.join(_labels(ds, d))}" for d in fixed if _labels(ds, d)]
    if layout:
        parts.append(", ".join(layout))
    return " · ".join(p for p in parts if p)


def title(
    what: str,
    ds: xr.Dataset,
    *,
    where: Mapping[str, Any] | None = None,
    fixed: Sequence[str] = (),
    note: str = "",
    width: int = WIDE,
) -> str:
    """'{what}: MODEL on HARDWARE', the workload (and the ``fixed`` layout dims), the constraints
    (``where``) and ``note``, each wrapped to ``width`` characters."""
    models = _listed(_labels(ds, "model"), "models")
    hardware = _listed(_labels(ds, "hardware"), "hardware presets")
    lines = [f"{what}: {models} on {hardware}", workload_text(ds, fixed)]
    if where:
        lines.append("only points with " + " and ".join(condition_text(ds, n, c) for n, c in where.items()))
    lines.append(note)
    return "\n".join(wrap(line, width) for line in lines if line)
