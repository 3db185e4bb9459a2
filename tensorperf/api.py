"""Public entry point: ``sweep(**axes) -> xarray.Dataset``.

Turns user inputs (scalars or lists) into a :class:`~tensorperf.grid.Grid`, runs one convention
over the whole grid in one broadcast pass, and hands the tensors to :mod:`tensorperf.results`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
import torch
import xarray as xr

from . import presets
from .allocator import keep_freed_memory
from .conventions import roofline, seed
from .grid import Grid
from .results import to_dataset
from .specs import HARDWARE_FIELDS, MODEL_FIELDS, Efficiency, HardwareSpec, ModelSpec
from .units import DTYPE_BYTES
from .validation import SpecError, is_number, unknown_name_error

Convention = Literal["seed", "roofline"]

# What-if axes: any numeric field of ModelSpec or HardwareSpec (absolute values) or <field>_scale
# (a factor on each preset's own value).
OVERRIDABLE = frozenset(MODEL_FIELDS + HARDWARE_FIELDS + tuple(f"{f}_scale" for f in MODEL_FIELDS + HARDWARE_FIELDS))

CONVENTIONS: Mapping[str, Any] = MappingProxyType({"roofline": roofline.evaluate, "seed": seed.evaluate})

_INTEGER_AXES = (
    "prompt_len",
    "output_len",
    "batch",
    "tp",
    "cp",
    "pp",
    "dp",
    "ep",
    "microbatches",
    "world_size",
    "max_num_seqs",
    "chunk_size",
)
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


ALLREDUCE = tuple(roofline.ALL_REDUCE)  # all-reduce algorithms: ring, tree, hierarchical (physics.comm)


def build_grid(
    *,
    model: Any,
    hardware: Any,
    weight_dtype: Any = "bf16",
    kv_dtype: Any = "bf16",
    act_dtype: Any = "bf16",
    allreduce: Any = "ring",
    dtype: Any = torch.float64,
    device: str | torch.device = "cpu",
    zipped: Sequence[str] = (),
    **axes: Any,
) -> Grid:
    """Validate the inputs of :func:`sweep` and build its Grid (exposed for tests and tools)."""
    overrides = {k: axes.pop(k) for k in list(axes) if k in OVERRIDABLE}
    unknown = sorted(set(axes) - set(_INTEGER_AXES))
    if unknown:
        raise unknown_name_error(
            "sweep input",
            unknown[0],
            ("model", "hardware", "weight_dtype", "kv_dtype", "act_dtype", "allreduce")
            + _INTEGER_AXES
            + tuple(OVERRIDABLE),
        )
    if isinstance(dtype, str):
        if dtype not in _FLOAT_DTYPES:
            raise unknown_name_error("dtype", dtype, _FLOAT_DTYPES)
        dtype = _FLOAT_DTYPES[dtype]
    if not isinstance(dtype, torch.dtype) or dtype not in (torch.float64, torch.float32):
        raise SpecError(f"dtype = {dtype!r} is not allowed: must be torch.float64 or torch.float32")
    inputs: dict[str, tuple[tuple[Any, ...], tuple[Any, ...], bool]] = {}
    values, is_dim = _listify("model", model)
    specs = tuple(_spec("model", v) for v in values)
    inputs["model"] = (specs, tuple(s.name for s in specs), is_dim)
    values, is_dim = _listify("hardware", hardware)
    hws = tuple(_spec("hardware", v) for v in values)
    inputs["hardware"] = (hws, tuple(h.name for h in hws), is_dim)
    for name, value in (("weight_dtype", weight_dtype), ("kv_dtype", kv_dtype), ("act_dtype", act_dtype)):
        values, is_dim = _listify(name, value)
        for v in values:
            if not isinstance(v, str) or v not in DTYPE_BYTES:
                raise unknown_name_error(name, v, DTYPE_BYTES)
        inputs[name] = (values, values, is_dim)
    values, is_dim = _listify("allreduce", allreduce)
    for v in values:
        if not isinstance(v, str) or v not in ALLREDUCE:
            raise unknown_name_error("allreduce", v, ALLREDUCE)
    inputs["allreduce"] = (values, values, is_dim)
    for name in _INTEGER_AXES:
        if axes.get(name) is None and _DEFAULTS[name] is None:
            continue  # optional input not given
        if axes.get(name) is None:
            axes[name] = _DEFAULTS[name]  # None means "the default"
        if name == "batch" and isinstance(axes.get(name), str):
            if axes[name] != "max":
                raise SpecError(
                    f"batch = {axes[name]!r} is not allowed: must be an integer >= 1, a list of "
                    "them, or 'max' (the largest batch that fits each point)"
                )
            inputs[name] = (("max",), ("max",), False)
            continue
        values, is_dim = _listify(name, axes.get(name, _DEFAULTS[name]))
        ints = _integer_axis(name, values)
        inputs[name] = (ints, ints, is_dim)
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


_DEFAULTS = MappingProxyType(
    {
        "prompt_len": 1024,
        "output_len": 128,
        "batch": 1,
        "tp": 1,
        "cp": 1,
        "pp": 1,
        "dp": 1,
        "ep": 1,
        "microbatches": None,
        "world_size": None,
        "max_num_seqs": None,
        "chunk_size": None,
    }
)


# Peak bytes per grid point of a whole sweep() (engine temporaries, then the Dataset's numpy copies):
# about 0.4 kB/point for the engine (benchmarks/README.md) plus ~30 float metrics x 2 copies, and
# 91 per-op values x 2 copies with the breakdown; rounded up.
SWEEP_BYTES_PER_POINT = MappingProxyType({False: 1_000, True: 2_600})


def _check_fits_in_memory(grid: Grid, breakdown: bool) -> None:
    """Refuse a sweep whose Dataset cannot fit this machine's physical memory (a clear error, not an
    out-of-memory kill halfway through)."""
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not POSIX: nothing to check against
        return
    scale = 1 if grid.dtype == torch.float64 else 0.5
    need = grid.size * SWEEP_BYTES_PER_POINT[breakdown] * scale
    if need > physical:
        raise SpecError(
            f"the grid has {grid.size:,} points: sweep() would need about {need / 1e9:,.0f} GB, more "
            f"than this machine's {physical / 1e9:,.0f} GB; stream it instead with tensorperf.best(), "
            "tensorperf.pareto() or tensorperf.reduce() (bounded memory), or pass breakdown=False"
        )


def sweep(
    *,
    model: Any,
    hardware: Any,
    weight_dtype: Any = "bf16",
    kv_dtype: Any = "bf16",
    act_dtype: Any = "bf16",
    prompt_len: Any = 1024,
    output_len: Any = 128,
    batch: Any = 1,
    tp: Any = 1,
    pp: Any = 1,
    dp: Any = 1,
    ep: Any = 1,
    cp: Any = 1,
    microbatches: Any = None,
    world_size: Any = None,
    max_num_seqs: Any = None,
    chunk_size: Any = None,
    allreduce: Any = "ring",
    zipped: Sequence[str] = (),
    convention: Convention = "roofline",
    efficiency: Mapping[str, float] | None = None,
    dtype: Any = torch.float64,
    device: str | torch.device = "cpu",
    breakdown: bool = True,
    client: Any = None,
    chunk_points: int | None = None,
    **what_if: Any,
) -> xr.Dataset:
    """Evaluate every point of the grid spanned by the list-valued inputs, in one pass.

    Each input may be a scalar (a scalar coordinate) or a list (a named dimension).

    - ``model`` / ``hardware``: preset ids (:mod:`tensorperf.presets`), TOML or config.json paths, or
      spec objects.
    - ``weight_dtype`` / ``kv_dtype`` / ``act_dtype``: element types of weights (also selects the
      math rate), KV cache, and activations and collectives.
    - ``batch``: requests in flight on the whole deployment; ``"max"`` evaluates each point at its
      own ``max_batch`` (capped by the scheduler limit ``max_num_seqs`` when given), reported in
      ``concurrency``. Each of the dp replicas splits its share into ``microbatches`` pipeline
      microbatches (default: the largest divisor of batch/dp not above pp).
    - ``world_size``: keep only layouts using exactly that many GPUs (others are masked).
    - ``chunk_size``: chunked prefill, ceil(S / C) chunks per prompt, each attending to its own tokens
      and the cached ones before it (default: the whole prompt in one pass).
    - ``allreduce``: ``"ring"`` (NCCL's flat ring, default), ``"tree"`` (double binary tree:
      2·⌈log2 n⌉ latency steps) or ``"hierarchical"`` (reduce-scatter inside each scale-up domain,
      all-reduce across domains, all-gather inside; model-spec §8.7); a list makes it a dimension.
    - ``zipped``: inputs (lists of one length) that share one dimension, ``point``; the i-th values
      form the i-th configuration instead of spanning a Cartesian product.
    - What-if inputs: any numeric field of ModelSpec or HardwareSpec (``hbm_bandwidth=[3.35e12,
      4.8e12]``, ``num_kv_heads=[1, 8]``) replaces every preset's value; ``<field>_scale``
      multiplies it (``hbm_bandwidth_scale=[1, 1.3]``). Each becomes a dimension.
    - ``efficiency``: :class:`~tensorperf.specs.Efficiency` field -> value, overriding every
      hardware's defaults (e.g. ``{"memory": 0.8}``); ``<field>_scale`` scales each preset's own
      value instead (efficiencies by their odds, so they stay in (0, 1]; sizes and times linearly).

    - ``breakdown=False`` leaves out the per-op variables (``*_op_*``, 91 values per point): the
      scalar metrics only, in less than half the time and memory.
    - ``client``: a ``dask.distributed.Client`` or a scheduler address (``"tcp://host:8786"``)
      evaluates the grid in chunks on the cluster's workers and assembles the Dataset here, the same
      bit for bit; ``chunk_points`` sets the chunk size (alone, it evaluates chunk by chunk in this
      process).

    Returns an ``xarray.Dataset`` with one variable per metric (SI units in ``attrs["units"]``);
    infeasible points are NaN with their reason bits in ``infeasible_reason``. The whole grid is held
    in memory; a grid too large for this machine's memory is refused up front (stream it with
    :func:`tensorperf.best`, :func:`tensorperf.pareto` or :func:`tensorperf.reduce` instead).

    >>> ds = sweep(model="gpt-moe-1.8t", hardware="mi300-seed", convention="seed",
    ...            prompt_len=16384, batch=16, tp=4, ep=16)
    >>> round(float(ds.ttft), 6)
    29.018907
    """
    if not isinstance(convention, str) or convention not in CONVENTIONS:
        raise unknown_name_error("convention", convention, CONVENTIONS)
    grid = build_grid(
        model=model,
        hardware=hardware,
        weight_dtype=weight_dtype,
        kv_dtype=kv_dtype,
        act_dtype=act_dtype,
        prompt_len=prompt_len,
        output_len=output_len,
        batch=batch,
        tp=tp,
        pp=pp,
        dp=dp,
        ep=ep,
        cp=cp,
        microbatches=microbatches,
        world_size=world_size,
        max_num_seqs=max_num_seqs,
        chunk_size=chunk_size,
        allreduce=allreduce,
        zipped=zipped,
        **what_if,
        dtype=dtype,
        device=device,
    )
    overrides = check_efficiency(efficiency)
    if not isinstance(breakdown, (bool, np.bool_)):
        raise SpecError(f"breakdown = {breakdown!r} is not allowed: must be True or False")
    _check_fits_in_memory(grid, bool(breakdown))
    keep_freed_memory()  # the engine's grid-sized temporaries reuse pages instead of faulting them in
    if client is not None or chunk_points is not None:  # in chunks (on a cluster's workers)
        from .stream import gather

        evaluation = gather(grid, convention, overrides, bool(breakdown), chunk_points, client)
    else:
        with torch.no_grad():
            evaluation = CONVENTIONS[convention](grid, overrides, breakdown=bool(breakdown))
    from . import __version__

    return to_dataset(
        evaluation,
        grid,
        {"convention": convention, "tensorperf_version": __version__, "dtype": str(grid.dtype).removeprefix("torch.")},
    )
