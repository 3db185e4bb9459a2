"""``disagg(prefill=..., decode=..., **axes) -> xarray.Dataset``: disaggregated prefill/decode serving
(docs/model.md §3.15), every (prefill configuration, decode configuration, ratio) at once.

The two pools are two grids of :func:`tensorperf.sweep`'s inputs: ``**axes`` shared by both (model,
lengths, ...), ``prefill`` and ``decode`` each pool's own. Each grid is evaluated once by the engine
(prefill with one output token: a prefill instance holds a prompt's cache only until it is sent);
the pairs are their outer product, each pool's swept inputs renamed ``prefill_<name>`` /
``decode_<name>``, times the ``ratio`` candidates, joined by
:func:`tensorperf.engine.physics.disagg.serve` in chunks of the flattened prefill configurations
(:data:`CHUNK_POINTS` pairs at most per chunk), never a loop over pairs.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
import xarray as xr

from tensorperf.axes import AXES, DIM_ORDER, ZIP_DIM
from tensorperf.engine.conventions import CONVENTIONS
from tensorperf.engine.grid import Grid
from tensorperf.engine.metrics import METRICS
from tensorperf.engine.physics import disagg as physics
from tensorperf.engine.roofline.transfer import pool_link
from tensorperf.interface.dataset import labelled_dataset
from tensorperf.interface.disagg_inputs import REFUSED, check_overlap, check_pool, ratios
from tensorperf.run import pairs as pairs_run
from tensorperf.run.chunks import Labels
from tensorperf.run.inputs import build_grid, check_efficiency
from tensorperf.run.reductions import COMPARISONS, check_best, check_where, conditions
from tensorperf.validation import SpecError, is_number, unknown_name_error
from tensorperf.version import __version__

POOLS = ("prefill", "decode")
TIERS = MappingProxyType(
    {"auto": physics.TIER_AUTO, "scaleup": physics.TIER_SCALEUP, "scaleout": physics.TIER_SCALEOUT}
)
CHUNK_POINTS = pairs_run.CHUNK_POINTS  # pairs per chunk of the join
_ENGINE_METRICS = ("ttft", "ttft_max", "tpot", "concurrency", "num_gpus", "memory_per_gpu")

# the variables on every pair: name -> (units, long name)
PAIR_VARIABLES: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "serving_ttft": (
            "s",
            "disaggregated: mean arrival to first token (prefill wait + prefill + exposed KV transfer)",
        ),
        "serving_tpot": ("s", "disaggregated: mean time per output token (the decode instance at its batch)"),
        "serving_e2e_latency": ("s", "disaggregated: serving_ttft + (output_len - 1) serving_tpot"),
        "serving_requests_per_s": ("1/s", "disaggregated: requests per second at saturation, min(x R_p, y R_d)"),
        "serving_tokens_per_s_per_gpu": ("tokens/s", "disaggregated: output tokens per second per GPU of both pools"),
        "serving_tokens_per_s_per_user": ("tokens/s", "disaggregated: output tokens per second per request"),
        "num_gpus": ("1", "GPUs of both pools, x G_p + y G_d"),
        "prefill_instances": ("1", "x: prefill instances (fractional at the balanced ratio)"),
        "decode_instances": ("1", "y: decode instances (fractional at the balanced ratio)"),
        "prefill_capacity": ("1/s", "requests per second the prefill pool sustains, x R_p (KV links included)"),
        "decode_capacity": ("1/s", "requests per second the decode pool sustains, y R_d (KV links included)"),
        "prefill_utilization": ("1", "busy share of the prefill pool at the system rate"),
        "decode_utilization": ("1", "busy share of the decode pool at the system rate"),
        "kv_transfer_time": ("s", "mean time to send a request's KV cache from prefill to decode"),
        "kv_transfer_exposed": ("s", "the part of kv_transfer_time not hidden behind prefill compute"),
        "kv_scaleup": ("1", "the KV cache stays inside one scale-up domain (else it crosses scale-out)"),
    }
)
# the variables of one pool (on its own dims): name -> (engine metric or link field, units, long name)
POOL_VARIABLES: Mapping[str, tuple[str, str, str]] = MappingProxyType(
    {
        "prefill_ttft": ("ttft", "s", "prefill instance: mean first-token time over its batch"),
        "prefill_batch_time": ("ttft_max", "s", "prefill instance: time to prefill its batch"),
        "prefill_concurrency": ("concurrency", "1", "prefill instance: prompts per batch"),
        "prefill_num_gpus": ("num_gpus", "1", "G_p: GPUs of one prefill instance"),
        "prefill_memory_per_gpu": ("memory_per_gpu", "bytes", "prefill instance: memory needed per GPU"),
        "decode_tpot": ("tpot", "s", "decode instance: mean time per output token at its batch"),
        "decode_concurrency": ("concurrency", "1", "decode instance: requests in flight"),
        "decode_num_gpus": ("num_gpus", "1", "G_d: GPUs of one decode instance"),
        "decode_memory_per_gpu": ("memory_per_gpu", "bytes", "decode instance: memory needed per GPU"),
        "kv_bytes_per_request": ("kv_bytes", "bytes", "bytes of one request's prompt KV cache (one copy)"),
    }
)


# --------------------------------------------------------------------------- the pools


def _evaluate(grid: Grid, overrides: Mapping[str, float], sites: Mapping[str, int]) -> tuple[dict, torch.Tensor]:
    """A pool's engine metrics and KV link on its grid: (tensors by name, reason)."""
    with torch.no_grad():
        ev = CONVENTIONS["roofline"](grid, overrides, breakdown=False, metrics=_ENGINE_METRICS)
        link, layers = pool_link(grid, sites, overrides)
    values = {k: ev.values[k] for k in _ENGINE_METRICS} | {"layers": layers, "link": link}
    return values, ev.reason


def _renamed(grid: Grid, pool: str, own: set[str]) -> dict[str, str]:
    """A pool grid's dim -> its name among the pairs' dims (a pool's own input gets its prefix)."""
    zipped_own = bool(grid.zipped) and set(grid.zipped) <= own
    return {d: f"{pool}_{d}" if d in own or (d == ZIP_DIM and zipped_own) else d for d in grid.dims}


def _aligned(t: torch.Tensor, grid: Grid, rename: Mapping[str, str], dims: Sequence[str]) -> torch.Tensor:
    """A tensor broadcastable to ``grid`` on the pairs' ``dims`` (size 1 on the dims it lacks)."""
    t = torch.as_tensor(t)
    t = t.reshape((1,) * (len(grid.dims) - t.dim()) + tuple(t.shape))
    names = [rename[d] for d in grid.dims]
    order = sorted(range(len(names)), key=lambda i: dims.index(names[i]))
    t = t.permute(order)
    shape = [1] * len(dims)
    for i, axis in enumerate(order):
        shape[dims.index(names[axis])] = t.shape[i]
    return t.reshape(shape)


def _flat(t: torch.Tensor, lead: int, pshape: tuple[int, ...]) -> torch.Tensor:
    """The prefill dims (after ``lead`` shared dims) as one axis of the flattened configurations."""
    k = len(pshape)
    own = t.shape[lead : lead + k]
    if all(n == 1 for n in own):
        return t.reshape(t.shape[:lead] + (1,) + t.shape[lead + k :])
    t = t.expand(t.shape[:lead] + pshape + t.shape[lead + k :])
    return t.reshape(t.shape[:lead] + (math.prod(pshape),) + t.shape[lead + k :])


def _check_memory(points: int) -> None:
    need = points * (len(PAIR_VARIABLES) + 3) * 8
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not POSIX: nothing to check against
        return
    if need > physical / 2:
        raise SpecError(
            f"disagg: {points:,} (prefill, decode, ratio) points need about {need / 1e9:,.0f} GB, more than half "
            f"of this machine's {physical / 1e9:,.0f} GB; stream the best with objective= (the pairs are "
            "never held at once) or sweep fewer configurations"
        )


# --------------------------------------------------------------------------- the entry point


def disagg(
    *,
    prefill: Mapping[str, Any] | None = None,
    decode: Mapping[str, Any] | None = None,
    where: Mapping[str, tuple[str, float]] | None = None,
    ratio: Any = "balanced",
    kv_overlap: float | None = None,
    kv_tier: str = "auto",
    objective: str | None = None,
    keep: Sequence[str] | None = None,
    efficiency: Mapping[str, float] | None = None,
    dtype: Any = torch.float64,
    device: str | torch.device = "cpu",
    **axes: Any,
) -> xr.Dataset:
    """Disaggregated serving: x prefill instances and y decode instances, every pair of configurations.

    - ``**axes``: :func:`tensorperf.sweep`'s inputs shared by both pools (``model``, ``hardware``,
      ``prompt_len``, ``output_len`` >= 2, dtypes, ...); ``prefill`` / ``decode``: dicts of each pool's
      own inputs (``{"tp": [1, 2, 4], "batch": [1, 4, 16]}``; a pool's ``batch`` is requests in flight
      on one instance). A pool's swept input becomes the dimension ``prefill_<name>`` /
      ``decode_<name>``; the pairs are the outer product of the two grids.
    - ``ratio``: ``"balanced"`` (x/y = R_d/R_p, both pools saturated; fractional counts, the smaller
      1), ``"x:y"`` or ``(x, y)`` (whole numbers); a list makes ``ratio`` a dimension.
    - ``kv_overlap``: the share of the KV transfer hidden behind prefill compute (default: layer by
      layer, 1 − 1/num_layers); ``kv_tier``: ``"auto"`` (scale-up where both pools are one hardware
      and the deployment fits one scale-up domain, else scale-out), ``"scaleup"``, ``"scaleout"``.
    - ``where``: limits such as ``{"serving_ttft": ("<=", 2.0), "serving_tpot": ("<=", 0.05)}``: a pair
      failing one is not ``feasible`` (``limits_met`` False), its values kept.
    - ``objective``: instead of every pair, the best pair (``ds.tperf.best``'s Dataset) per
      combination of the ``keep`` dims (default: the shared swept inputs) among the feasible pairs
      meeting ``where``, streamed: the pairs are joined and reduced chunk by chunk and never held
      at once (``objective`` and ``where`` name pair variables; the same winners, bit for bit).

    Returns a Dataset: on every pair ``serving_ttft``, ``serving_tpot``, ``serving_e2e_latency``,
    ``serving_requests_per_s``, ``serving_tokens_per_s_per_gpu`` (output tokens over all GPUs of both
    pools), ``serving_tokens_per_s_per_user``, ``num_gpus``, the instance counts, capacities,
    utilizations and the KV transfer; on each pool's dims its instance's metrics. A pair where either
    pool is infeasible is NaN, with the pools' reason bits in ``infeasible_reason`` (each pool's in
    ``prefill_infeasible_reason`` / ``decode_infeasible_reason``; ``tp.describe`` spells them out).
    ``ds.tperf.best`` / ``ds.tperf.pareto`` work on it (``pareto`` takes the frontier over the pools'
    layout and batch dims and ``ratio`` by default)."""
    if kv_tier not in TIERS:
        raise unknown_name_error("kv_tier", kv_tier, TIERS)
    overlap = check_overlap(kv_overlap)
    labels, xs, ys, ratio_dim = ratios(ratio)
    for name in REFUSED:
        if any(name in given for given in (axes, prefill or {}, decode or {})):
            raise SpecError(
                f"{name} is not allowed in disagg: a disaggregated deployment is evaluated at its saturation rate"
            )
    pools = {"prefill": check_pool("prefill", prefill, axes), "decode": check_pool("decode", decode, axes)}
    if "model" not in axes or ("hardware" not in axes and not all("hardware" in p for p in pools.values())):
        raise SpecError("disagg needs model= and hardware= (hardware may be given per pool)")
    lengths = axes.get("output_len", AXES["output_len"].default)
    if any(is_number(v) and v < 2 for v in (lengths if isinstance(lengths, (list, tuple)) else [lengths])):
        raise SpecError(f"output_len = {lengths!r} is not allowed in disagg: must be >= 2 (the decode pool's work)")
    check_where(where, {n: ((), np.dtype(float)) for n in (*PAIR_VARIABLES, *POOL_VARIABLES, "limits_met")})
    overrides = check_efficiency(efficiency)
    grids = {
        "prefill": build_grid(**{**axes, **pools["prefill"], "output_len": 1}, dtype=dtype, device=device),
        "decode": build_grid(**{**axes, **pools["decode"]}, dtype=dtype, device=device),
    }
    own = set(pools["prefill"]) | set(pools["decode"])
    sites = {h: i for i, h in enumerate(dict.fromkeys(h for g in grids.values() for h in g.labels["hardware"]))}
    renames = {p: _renamed(g, p, own) for p, g in grids.items()}
    pdims = [renames["prefill"][d] for d in grids["prefill"].dims if renames["prefill"][d] != d]
    ddims = [renames["decode"][d] for d in grids["decode"].dims if renames["decode"][d] != d]
    rank = {d: i for i, d in enumerate((ZIP_DIM, *DIM_ORDER))}
    shared = sorted({d for p, g in grids.items() for d in g.dims if renames[p][d] == d}, key=lambda d: rank.get(d, 99))
    dims = [*shared, *pdims, *ddims, "ratio"]
    evaluated = {p: _evaluate(g, overrides, sites) for p, g in grids.items()}
    joined, full = _pairs(grids, renames, evaluated, dims, len(shared), len(pdims), xs, ys, overlap, TIERS[kv_tier])
    if objective is not None:
        flat = _flat_labels(_coords(grids, own, renames) | {"ratio": ("ratio", labels)}, dims, full, pdims, shared)
        return _streamed_best(joined, flat, shared, objective, where, keep, kv_overlap, kv_tier)
    ds = _with_pools(_join(joined, dims, full), grids, renames, evaluated, own, labels, ratio_dim)
    return _limited(ds, where, kv_overlap, kv_tier)


# --------------------------------------------------------------------------- the join


def _pairs(
    grids: Mapping[str, Grid],
    renames: Mapping[str, Mapping[str, str]],
    evaluated: Mapping[str, tuple[dict, torch.Tensor]],
    dims: list[str],
    ns: int,
    npd: int,
    xs: np.ndarray,
    ys: np.ndarray,
    overlap: float | None,
    tier: int,
) -> tuple[pairs_run.Pairs, tuple[int, ...]]:
    """Both pools on the flat pair axes (shared, the flattened prefill configurations, decode,
    ratio), and the full shape on ``dims`` (shared, prefill, decode, ratio)."""
    length = {renames[p][d]: n for p, g in grids.items() for d, n in zip(g.dims, g.shape)} | {"ratio": len(xs)}
    full = tuple(length[d] for d in dims)
    pshape = full[ns : ns + npd]

    def side(pool: str, t: Any) -> torch.Tensor:
        return _flat(_aligned(t, grids[pool], renames[pool], dims), ns, pshape)

    (vp, rp), (vd, rd) = evaluated["prefill"], evaluated["decode"]
    dt, dev = grids["decode"].dtype, grids["decode"].device
    links = {
        p: physics.Link(**{f: side(p, getattr(v["link"], f)).to(dt) for f in physics.Link.__dataclass_fields__})
        for p, (v, _) in evaluated.items()
    }
    prefill = physics.PrefillPool(
        batch=side("prefill", vp["concurrency"]),
        gpus=side("prefill", vp["num_gpus"]),
        ttft=side("prefill", vp["ttft"]),
        batch_time=side("prefill", vp["ttft_max"]),
        layers=side("prefill", vp["layers"]).to(dt),
        link=links["prefill"],
    )
    decode = physics.DecodePool(
        batch=side("decode", vd["concurrency"]),
        gpus=side("decode", vd["num_gpus"]),
        tpot=side("decode", vd["tpot"]),
        link=links["decode"],
    )
    ratio_shape = (1,) * (len(full) - npd) + (len(xs),)
    joined = pairs_run.Pairs(
        prefill=prefill,
        decode=decode,
        output_len=side("decode", grids["decode"].axis("output_len")),
        x=torch.as_tensor(xs, dtype=dt, device=dev).reshape(ratio_shape),
        y=torch.as_tensor(ys, dtype=dt, device=dev).reshape(ratio_shape),
        reason=side("prefill", rp) | side("decode", rd),
        shape=full[:ns] + (math.prod(pshape),) + full[ns + npd :],
        axis=ns,
        overlap=overlap,
        tier=tier,
    )
    return joined, full


def _join(joined: pairs_run.Pairs, dims: list[str], full: tuple[int, ...]) -> dict[str, tuple[list[str], np.ndarray]]:
    """Every pair's metrics and reason as arrays on ``dims``, computed chunk by chunk."""
    _check_memory(math.prod(full))
    values, reason = pairs_run.arrays(joined, CHUNK_POINTS)
    out = {n: (dims, a.reshape(full)) for n, a in values.items()}
    out["infeasible_reason"] = (dims, reason.reshape(full))
    return out


PREFILL_CONFIG = "prefill_config"  # the flattened prefill configurations of a streamed best


def _flat_labels(
    coords: Mapping[str, Any], dims: list[str], full: tuple[int, ...], pdims: list[str], shared: list[str]
) -> Labels:
    """The flat pair axes' Labels: the prefill dims' coordinates flattened (C order) onto one
    ``prefill_config`` dim, the others as they are."""
    pshape = tuple(full[dims.index(d)] for d in pdims)
    index = dict(zip(pdims, (i.ravel() for i in np.indices(pshape)))) if pdims else {}
    flat_dims = [*shared, PREFILL_CONFIG, *dims[len(shared) + len(pdims) :]]
    shape = tuple(full[: len(shared)]) + (math.prod(pshape),) + tuple(full[len(shared) + len(pdims) :])
    out: dict[str, tuple[tuple[str, ...], Any]] = {}
    for name, value in coords.items():
        if not isinstance(value, tuple):
            out[name] = ((), value)
        elif value[0] in index:
            out[name] = ((PREFILL_CONFIG,), np.asarray(value[1])[index[value[0]]])
        else:
            out[name] = ((value[0],), np.asarray(value[1]))
    return Labels(tuple(flat_dims), shape, MappingProxyType(out))


def _streamed_best(
    joined: pairs_run.Pairs,
    labels: Labels,
    shared: list[str],
    objective: Any,
    where: Any,
    keep: Any,
    kv_overlap: Any,
    kv_tier: str,
) -> xr.Dataset:
    numeric = [n for n in PAIR_VARIABLES if n not in pairs_run.BOOLEAN]
    variables = MappingProxyType({n: (labels.dims, np.dtype(float)) for n in numeric})
    objective, where, keep, maximize = check_best(variables, objective, where, shared if keep is None else keep, None)
    result = labelled_dataset(pairs_run.best(joined, labels, objective, where, keep, maximize, CHUNK_POINTS))
    result = result.drop_vars(f"best_{PREFILL_CONFIG}", errors="ignore")
    for name in result.data_vars:
        if name in PAIR_VARIABLES:
            units, long_name = PAIR_VARIABLES[name]
            result[name].attrs = {"units": units, "long_name": long_name}
    result.attrs.update(kind="disagg best", kv_tier=kv_tier, kv_overlap=str(kv_overlap))
    return result


def _coords(grids: Mapping[str, Grid], own: set[str], renames: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
    """The pairs' coordinates: the shared inputs' (the decode grid's: the prefill grid has one output
    token), each pool's own inputs' under their prefixed names."""
    out: dict[str, Any] = {}
    for pool in ("decode", "prefill"):
        for name, value in grids[pool].coords().items():
            if name not in own and (pool == "prefill" or name in out):
                continue
            key = f"{pool}_{name}" if name in own else name
            dim = grids[pool].dim_of(name)
            if dim is None:
                out[key] = value
            else:
                out[key] = (renames[pool][dim], list(grids[pool].labels[name]))
    return out


def _with_pools(
    pairs: dict[str, tuple[list[str], np.ndarray]],
    grids: Mapping[str, Grid],
    renames: Mapping[str, Mapping[str, str]],
    evaluated: Mapping[str, tuple[dict, torch.Tensor]],
    own: set[str],
    labels: list[str],
    ratio_dim: bool,
) -> xr.Dataset:
    """The Dataset: the pair variables, each pool's instance variables on its own dims, coordinates."""
    attrs = {n: {"units": u, "long_name": ln} for n, (u, ln) in PAIR_VARIABLES.items()}
    attrs["infeasible_reason"] = {"units": "1", "long_name": "reason bits of the pools (OR of both; tp.describe)"}
    data: dict[str, xr.Variable] = {}
    for name, (dims, array) in pairs.items():  # ratio last: a scalar ratio is no dimension
        dims, array = (dims, array) if ratio_dim else (dims[:-1], array[..., 0])
        data[name] = xr.Variable(dims, array, attrs[name])
    for pool in POOLS:
        values, reason = evaluated[pool]
        grid = grids[pool]
        pool_dims = [renames[pool][d] for d in grid.dims]
        ok = (reason == 0).expand(grid.shape).cpu().numpy()
        for name, (source, units, long_name) in POOL_VARIABLES.items():
            if not name.startswith(pool) and not (pool == "prefill" and source == "kv_bytes"):
                continue
            t = getattr(values["link"], source) if source == "kv_bytes" else values[source]
            array = torch.as_tensor(t).to(torch.float64).expand(grid.shape).cpu().numpy()
            if source in METRICS and METRICS[source].masked:
                array = np.where(ok, array, np.nan)
            data[name] = xr.Variable(pool_dims, array, {"units": units, "long_name": long_name})
        data[f"{pool}_infeasible_reason"] = xr.Variable(
            pool_dims,
            reason.expand(grid.shape).cpu().numpy(),
            {"units": "1", "long_name": f"{pool} instance: reason bits of infeasibility (tp.describe)"},
        )
    coords = _coords(grids, own, renames) | {"ratio": labels if ratio_dim else labels[0]}
    return xr.Dataset(data, coords=coords)


def _limited(ds: xr.Dataset, where: Any, kv_overlap: Any, kv_tier: str) -> xr.Dataset:
    """``limits_met`` and ``feasible`` (both pools feasible and every limit of ``where`` met)."""
    where = check_where(where, {n: (tuple(ds[n].dims), ds[n].dtype) for n in ds.data_vars})
    met = xr.ones_like(ds["serving_ttft"], dtype=bool)
    for name, comparison, value in conditions(where):
        met = met & COMPARISONS[comparison](ds[name], value)
    ds["limits_met"] = met.assign_attrs(units="1", long_name="every limit of where is met")
    ds["feasible"] = ((ds["infeasible_reason"] == 0) & met).assign_attrs(
        units="1", long_name="both pools run and every limit of where is met"
    )
    ds.attrs.update(
        kind="disagg",
        tensorperf_version=__version__,
        where=repr(dict(where)),
        kv_overlap="1 - 1/num_layers (layer by layer)" if kv_overlap is None else str(kv_overlap),
        kv_tier=kv_tier,
    )
    return ds
