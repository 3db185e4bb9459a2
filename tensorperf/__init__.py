"""tensorperf: a vectorized, differentiable performance model of LLM inference serving.

Every model, hardware, layout and workload input is a broadcastable torch tensor on a named axis;
one pass evaluates the whole grid and results come back as a labelled xarray Dataset.
"""

from __future__ import annotations

from tensorperf.analysis.calibrate import calibrate
from tensorperf.catalog import presets
from tensorperf.catalog.specs import Efficiency, HardwareSpec, ModelSpec, StackSpec
from tensorperf.engine.masks import Reason, describe
from tensorperf.interface import accessor as _accessor  # noqa: F401  (registers the Dataset.tperf accessor)
from tensorperf.interface.api import best, pareto, reduce, report, sensitivity, sweep
from tensorperf.run.allocator import keep_freed_memory
from tensorperf.run.inputs import build_grid
from tensorperf.run.reductions import Reduction
from tensorperf.validation import SpecError
from tensorperf.version import __version__

__all__ = [
    "sweep",
    "build_grid",
    "sensitivity",
    "calibrate",
    "best",
    "pareto",
    "reduce",
    "report",
    "Reduction",
    "presets",
    "ModelSpec",
    "HardwareSpec",
    "StackSpec",
    "Efficiency",
    "SpecError",
    "Reason",
    "describe",
    "keep_freed_memory",
    "__version__",
]
