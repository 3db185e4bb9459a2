"""The inputs of :func:`tensorperf.interface.disaggregated.disagg`, checked: each pool's own sweep
inputs, the ratio candidates and the KV overlap; errors name the field, the value and what is
allowed."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from tensorperf.axes import AXES
from tensorperf.run.inputs import OVERRIDABLE
from tensorperf.validation import SpecError, is_number, unknown_name_error

# inputs both pools must share: the model and the requests
SHARED_ONLY = ("model", "prompt_len", "output_len", "isl_range_ratio", "osl_range_ratio")
# inputs of an open-loop or offline run: a disaggregated deployment is sized at its saturation rate
REFUSED = ("request_rate", "num_requests", "queue", "adp_balance_iters")


def check_pool(name: str, given: Any, shared: Mapping[str, Any]) -> dict[str, Any]:
    """A pool's own inputs, checked: a mapping of sweep inputs that are not shared ones."""
    if given is None:
        return {}
    if not isinstance(given, Mapping):
        raise SpecError(f"{name} = {given!r} is not allowed: must be a dict of sweep inputs, e.g. {{'tp': [1, 2]}}")
    allowed = (*AXES, *sorted(OVERRIDABLE), "zipped")
    for key in given:
        if not isinstance(key, str) or key not in allowed:
            raise unknown_name_error(f"input in {name}", key, allowed)
        if key in SHARED_ONLY:
            raise SpecError(f"{name}[{key!r}] is not allowed: both pools serve one {key}; pass {key}= to disagg itself")
        if key in shared:
            raise SpecError(f"{key} is given both to disagg and in {name}; give it once")
    if "zipped" in given and "zipped" in shared:
        raise SpecError(f"zipped is given both to disagg and in {name}; zip inputs of one kind only")
    zipped = given.get("zipped", ())
    outside = [z for z in ([zipped] if isinstance(zipped, str) else zipped) if z not in given]
    if outside:
        raise SpecError(f"{name}['zipped'] names {outside}, which are not inputs of {name}; zip a pool's own inputs")
    return dict(given)


def ratios(ratio: Any) -> tuple[list[str], np.ndarray, np.ndarray, bool]:
    """(labels, x, y, is a dim): 'balanced' -> NaN, NaN; 'x:y' or (x, y) -> whole numbers >= 1."""
    items, is_dim = (list(ratio), True) if isinstance(ratio, list) else ([ratio], False)
    if not items:
        raise SpecError("ratio is an empty list; give at least one, e.g. ['balanced', '1:2']")
    labels, xs, ys = [], [], []
    for item in items:
        parts = item.split(":") if isinstance(item, str) and item != "balanced" else item
        if item == "balanced":
            x = y = math.nan
        elif (
            isinstance(parts, (list, tuple))
            and len(parts) == 2
            and all(_whole(p) for p in parts)
            and min(_whole(p) for p in parts) >= 1
        ):
            x, y = (_whole(p) for p in parts)
        else:
            raise SpecError(
                f"ratio = {item!r} is not allowed: must be 'balanced', 'x:y' or (x, y) with whole numbers x, y >= 1 "
                "(x prefill : y decode instances)"
            )
        label = "balanced" if item == "balanced" else f"{x}:{y}"
        if label in labels:
            raise SpecError(f"ratio lists {label!r} twice; each value of a dimension must be unique")
        labels.append(label)
        xs.append(x)
        ys.append(y)
    return labels, np.asarray(xs, dtype=float), np.asarray(ys, dtype=float), is_dim


def _whole(value: Any) -> int:
    """A whole number from an int or its text; 0 when it is not one."""
    try:
        number = float(value.strip()) if isinstance(value, str) else value
    except ValueError:
        return 0
    if isinstance(number, bool) or not is_number(number) or not float(number).is_integer():
        return 0
    return int(number)


def check_overlap(kv_overlap: Any) -> float | None:
    if kv_overlap is None:
        return None
    if isinstance(kv_overlap, bool) or not is_number(kv_overlap) or not 0 <= kv_overlap <= 1:
        raise SpecError(
            f"kv_overlap = {kv_overlap!r} is not allowed: must be a number in [0, 1] (the share of the KV "
            "transfer hidden behind prefill compute) or None (layer by layer: 1 - 1/num_layers)"
        )
    return float(kv_overlap)
