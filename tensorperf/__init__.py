"""tensorperf: a vectorized, differentiable performance model of LLM inference serving.

Every model, hardware, layout and workload input is a broadcastable torch tensor on a named axis;
one pass evaluates the whole grid and results come back as a labelled xarray Dataset.
"""

from __future__ import annotations

import importlib
import sys
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from tensorperf.validation import SpecError
from tensorperf.version import __version__

if TYPE_CHECKING:
    from tensorperf.analysis.calibrate import calibrate
    from tensorperf.catalog import presets
    from tensorperf.catalog.specs import Efficiency, HardwareSpec, ModelSpec, StackSpec
    from tensorperf.engine.masks import Reason, describe
    from tensorperf.interface import plot
    from tensorperf.interface.api import best, pareto, reduce, report, sensitivity, sweep
    from tensorperf.interface.disaggregated import disagg
    from tensorperf.interface.explanation import explain
    from tensorperf.run.allocator import keep_freed_memory
    from tensorperf.run.inputs import build_grid
    from tensorperf.run.reductions import Reduction

# The public names and their modules, imported on first use (PEP 562), so that `import tensorperf`
# and `tensorperf --help` do not load torch. The first use also registers the Dataset.tperf accessor,
# as does `import tensorperf` where xarray is already imported.
_LAZY = MappingProxyType(
    {
        "calibrate": "tensorperf.analysis.calibrate",
        "presets": "tensorperf.catalog.presets",  # a module
        "plot": "tensorperf.interface.plot",  # a module: tp.plot.pareto(ds), each returning a Figure
        "Efficiency": "tensorperf.catalog.specs",
        "HardwareSpec": "tensorperf.catalog.specs",
        "ModelSpec": "tensorperf.catalog.specs",
        "StackSpec": "tensorperf.catalog.specs",
        "Reason": "tensorperf.engine.masks",
        "describe": "tensorperf.engine.masks",
        "best": "tensorperf.interface.api",
        "explain": "tensorperf.interface.explanation",
        "pareto": "tensorperf.interface.api",
        "reduce": "tensorperf.interface.api",
        "report": "tensorperf.interface.api",
        "sensitivity": "tensorperf.interface.api",
        "sweep": "tensorperf.interface.api",
        "disagg": "tensorperf.interface.disaggregated",
        "keep_freed_memory": "tensorperf.run.allocator",
        "build_grid": "tensorperf.run.inputs",
        "Reduction": "tensorperf.run.reductions",
    }
)


_MODULES = frozenset({"presets", "plot"})


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'tensorperf' has no attribute {name!r}")
    importlib.import_module("tensorperf.interface.accessor")  # registers Dataset.tperf
    module = importlib.import_module(_LAZY[name])
    value = module if name in _MODULES else getattr(module, name)  # presets and plot are modules themselves
    globals()[name] = value  # later uses skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


if "xarray" in sys.modules:  # a Dataset may already be at hand: ds.tperf works right after `import tensorperf`
    importlib.import_module("tensorperf.interface.accessor")

__all__ = [
    "sweep",
    "disagg",
    "build_grid",
    "sensitivity",
    "calibrate",
    "best",
    "explain",
    "pareto",
    "reduce",
    "report",
    "Reduction",
    "presets",
    "plot",
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
