"""Efficiency factors at each point: each hardware's table for the weight format's kernels (bf16,
fp8 or fp4), then the caller's overrides (values, or ``<factor>_scale`` relative to each preset's)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import torch

from tensorperf.catalog.specs import BOUNDED_EFFICIENCIES, Efficiency
from tensorperf.engine.grid import Grid
from tensorperf.units import MATH_COLUMN

BOUNDED_FACTORS = frozenset(BOUNDED_EFFICIENCIES)  # a *_scale scales their odds (scaled_efficiency)
COLUMNS = MappingProxyType({"bf16": 0, "fp8": 1, "fp4": 2})  # kernel tables (and peaks) by math format
NO_NATIVE_MATH = 3  # math_column of a format no hardware computes in (int4: weight-only kernels only)
# The kernel tables column_tables returns: the three math columns', then the block-scaled fp8
# kernels' and the weight-only MXFP4 kernels' (HardwareSpec.efficiency_for)
KERNEL_TABLES = (*COLUMNS, "fp8_block", "mxfp4_w4a16")


def scaled_efficiency(value: Any, scale: Any, bounded: bool) -> Any:
    """A factor scaled relative to a preset's value. Fractions scale their odds, η·s / (1 + η·(s − 1)),
    which stays in (0, 1] (≈ η·s for small η, exactly η at s = 1); sizes and times are multiplied."""
    return value * scale / (1 + value * (scale - 1)) if bounded else value * scale


def math_column(grid: Grid) -> torch.Tensor:
    """The kernel table of each point's weight format: 0 bf16, 1 fp8, 2 fp4 (units.MATH_COLUMN), 3 none."""
    return grid.lookup("weight_dtype", {k: COLUMNS.get(v, NO_NATIVE_MATH) for k, v in MATH_COLUMN.items()})


def _override(grid: Grid, eff: Efficiency, efficiency: Mapping[str, Any]) -> Efficiency:
    """The caller's overrides on a table: a value (number or tensor, e.g. a sensitivity leaf), or
    ``<factor>_scale`` relative to the table's own value."""
    for name, value in efficiency.items():
        value = torch.as_tensor(value, dtype=grid.dtype, device=grid.device)
        if name.endswith("_scale"):
            field = name.removesuffix("_scale")
            value = scaled_efficiency(getattr(eff, field), value, field in BOUNDED_FACTORS)
            name = field
        object.__setattr__(eff, name, value)
    return eff


def column_tables(grid: Grid, efficiency: Mapping[str, Any]) -> tuple[Efficiency, ...]:
    """Each hardware's kernel tables (:data:`KERNEL_TABLES`: bf16, fp8, fp4, block-scaled fp8,
    weight-only MXFP4), the
    overrides applied to each (the kernel paths of :mod:`.kernels` mix them per tensor group)."""
    return tuple(
        _override(grid, grid.spec("hardware", attr=lambda h, c=c: h.efficiency_for(c)), efficiency)
        for c in KERNEL_TABLES
    )


def efficiencies(grid: Grid, efficiency: Mapping[str, Any], column: torch.Tensor) -> Efficiency:
    """Each hardware's factors for the weight format's kernels (its bf16, fp8 or fp4 table), then the
    overrides: a value (number or tensor, e.g. a sensitivity leaf), or ``<factor>_scale`` relative to
    each preset's own value."""
    by_column = [grid.spec("hardware", attr=lambda h, c=c: h.efficiency_for(c)) for c in COLUMNS]
    eff = by_column[0]
    column = torch.where(column == NO_NATIVE_MATH, 0, column)  # (no native math: bf16's table, infeasible)
    for f in dataclasses.fields(Efficiency):
        mixed = torch.where(
            column == 0,
            getattr(by_column[0], f.name),
            torch.where(column == 1, getattr(by_column[1], f.name), getattr(by_column[2], f.name)),
        )
        object.__setattr__(eff, f.name, mixed)
    return _override(grid, eff, efficiency)
