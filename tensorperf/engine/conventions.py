"""The conventions: one signature, ``evaluate(grid, efficiency, fields=None, breakdown=True,
metrics=None) -> Evaluation``, selected by name (``convention=`` of :func:`tensorperf.sweep`).

- ``roofline`` (default): the corrected model (docs/model.md).
- ``seed``: the seed notebook's own arithmetic, bugs included (docs/seed-differences.md).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from types import MappingProxyType
from typing import Any, Protocol

import torch

from tensorperf.engine import roofline, seed
from tensorperf.engine.grid import Grid
from tensorperf.engine.metrics import Evaluation


class Convention(Protocol):
    def __call__(
        self,
        grid: Grid,
        efficiency: Mapping[str, Any] | None = None,
        fields: Mapping[str, torch.Tensor] | None = None,
        breakdown: bool = True,
        metrics: Collection[str] | None = None,
    ) -> Evaluation: ...


CONVENTIONS: Mapping[str, Convention] = MappingProxyType({"roofline": roofline.evaluate, "seed": seed.evaluate})
