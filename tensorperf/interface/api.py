"""Public entry point: ``sweep(**axes) -> xarray.Dataset``.

Turns user inputs (scalars or lists) into a :class:`~tensorperf.engine.grid.Grid`, runs one convention
over the whole grid in one broadcast pass, and hands the tensors to :mod:`tensorperf.interface.dataset`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
import torch
import xarray as xr

from tensorperf.analysis.sensitivity import sensitivity as gradients
from tensorperf.engine.conventions import CONVENTIONS
from tensorperf.engine.grid import Grid
from tensorperf.interface.dataset import labelled_dataset, sensitivity_dataset, to_dataset
from tensorperf.interface.page import report as write_page
from tensorperf.run import executors
from tensorperf.run.chunks import DEFAULT_MEMORY
from tensorperf.run.inputs import build_grid, check_efficiency
from tensorperf.run.reductions import Labelled, Reduction
from tensorperf.validation import SpecError, unknown_name_error
from tensorperf.version import __version__

Convention = Literal["seed", "roofline"]

# Peak bytes per grid point of a whole sweep() in float64 (half in float32): the engine's temporaries,
# or its results plus one fresh array per masked metric (the unmasked ones are views of the engine's
# tensors, not copies). Measured peak-RSS growth (benchmarks/sweep_overhead.py, 1e5 and 1e6 points):
# 380-480 B/point without the breakdown, 1,230-1,350 with it; about 2x that, for metrics to come.
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
            "tensorperf.pareto() or tensorperf.reduce() (bounded memory; on the command line tensorperf best or "
            "tensorperf pareto), or pass breakdown=False (tensorperf sweep --no-breakdown)"
        )


def sweep(
    *,
    model: Any,
    hardware: Any,
    weight_dtype: Any = "bf16",
    kv_dtype: Any = "bf16",
    act_dtype: Any = "bf16",
    allreduce: Any = "ring",
    stack: Any = "ideal",
    recipe: Any = "uniform",
    prompt_len: Any = 1024,
    output_len: Any = 128,
    batch: Any = 1,
    tp: Any = 1,
    cp: Any = 1,
    pp: Any = 1,
    dp: Any = 1,
    ep: Any = 1,
    microbatches: Any = None,
    chunk_size: Any = None,
    world_size: Any = None,
    max_num_seqs: Any = None,
    max_num_tokens: Any = 8192,
    request_rate: Any = None,
    num_requests: Any = None,
    queue: Any = "server",
    adp_balance_iters: Any = None,
    admission_interval: Any = 1,
    isl_range_ratio: Any = 1.0,
    osl_range_ratio: Any = 1.0,
    imbalance: Any = None,
    ep_overlap: Any = "none",
    ep_a2a: Any = "nccl",
    speculative: Any = "none",
    spec_tokens: Any = None,
    acceptance: Any = None,
    draft_model: Any = None,
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
    - ``prompt_len`` / ``output_len``: tokens of each request's prompt and of its output (the first
      output token included).
    - ``tp`` / ``cp`` / ``pp`` / ``dp`` / ``ep``: tensor-, context-, pipeline-, data- and
      expert-parallel degrees (GPUs: tp·cp·pp·dp; ep divides tp·cp·dp, docs/model.md §3.8).
    - ``batch``: requests in flight on the whole deployment; ``"max"`` evaluates each point at its
      own ``max_batch`` (capped by the scheduler limit ``max_num_seqs`` when given), reported in
      ``concurrency``. Each of the dp replicas splits its share into ``microbatches`` pipeline
      microbatches (default: the largest divisor of batch/dp not above pp).
    - ``world_size``: keep only layouts using exactly that many GPUs (others are masked).
    - ``chunk_size``: chunked prefill, ceil(S / C) chunks per prompt, each attending to its own tokens
      and the cached ones before it (default: the whole prompt in one pass).
    - ``allreduce``: ``"ring"`` (NCCL's flat ring, default), ``"tree"`` (double binary tree:
      2·⌈log2 n⌉ latency steps) or ``"hierarchical"`` (reduce-scatter inside each scale-up domain,
      all-reduce across domains, all-gather inside; docs/model.md §8.7); a list makes it a dimension.
    - Serving under load (the ``serving_*`` variables; docs/model.md §10): continuous batching with
      chunked prefill, each step at most ``max_num_tokens`` tokens (decode tokens first, then prompt
      chunks; default 8192). By default ``batch`` requests stay in flight (a closed loop: a client
      sends its next request when its last one ends). ``request_rate`` (requests/s, Poisson
      arrivals, an open loop): ``batch`` is then the cap on requests in flight and a rate at or
      beyond the capacity is masked as ``overloaded`` (with ``num_requests`` too: a finite run at
      that rate, never masked). ``num_requests`` alone: an offline run of that many requests queued
      at once, the first ``batch`` a burst, the rest entering as slots free. ``queue``: where the
      requests beyond ``batch`` wait, ``"server"`` (default: queued at the server, their TTFT counts
      the wait; trtllm-bench, Triton) or ``"client"`` (a benchmark client sends one as a slot frees
      and times it from sending: ``vllm bench serve`` / benchmark_serving with ``--num-prompts N
      --max-concurrency batch``, as InferenceX runs 10·batch requests). ``adp_balance_iters`` (with
      attention DP, dp > 1): a new request's prefill waits until every DP rank has one, at most
      that many steps (TensorRT-LLM's ``attention_dp_config`` with ``enable_balance`` and
      ``timeout_iters``; docs/model.md §10.5); default: no wait. ``admission_interval`` R: the
      scheduler checks for new requests every R decode steps (SGLang's ``--scheduler-recv-interval``
      and ``--num-continuous-decode-steps``); a closed loop's next request, sent as its predecessor
      ends, waits (R + 1)/2 steps for it, a Poisson arrival R/2 (docs/model.md §10.1); default 1.
      ``isl_range_ratio`` / ``osl_range_ratio`` (default 1): prompt and output lengths uniform in
      [r·L, L] (the serving metrics are expectations over them).
    - ``imbalance`` (MoE models with ep > 1): the max/mean of the token-expert pairs the EP ranks
      receive, a number >= 1 (e.g. measured on a stack with redundant experts or EPLB); the slowest
      rank's expert GEMMs, expert weights and all-to-all scale with it. Default: uniform top-k
      routing's expected max/mean at each phase's tokens (docs/model.md §3.5.1); 1 at ep = 1.
    - ``ep_overlap`` (MoE): ``"none"`` (default) or ``"two_batch"``: each MoE layer splits its tokens
      in two micro-batches and hides one's expert all-to-all behind the other's compute, a layer
      then taking max(2·compute(T/2), 2·all-to-all(T/2)) (SGLang's two-batch overlap, DeepSeek's
      two micro-batches; docs/model.md §3.9.2).
    - ``ep_a2a`` (MoE): the expert all-to-all's kernels: ``"nccl"`` (default: every copy, in the
      activations' format both ways), ``"deepep"`` (DeepEP's normal kernels: fp8 dispatch, bf16
      combine, a token sent once per remote scale-up domain; prefill) or ``"deepep_ll"`` (its
      low-latency kernels: fp8 dispatch, bf16 combine, every copy; decode); docs/model.md §8.8.1.
    - ``speculative`` (docs/model.md §3.14): ``"none"`` (default), ``"mtp"`` (the model's own MTP
      modules, ``num_mtp_layers``), ``"eagle"`` (a one-layer head) or ``"draft"`` (the small model
      ``draft_model``, a preset id, spec file or ModelSpec, with its own weights and KV cache): each
      step drafts ``spec_tokens`` = k tokens (default 1) in k sequential steps, then verifies k + 1
      positions per sequence in one pass, and a sequence gains (1 − α^(k+1))/(1 − α) tokens per step
      with α = ``acceptance``, the probability that a draft token is accepted given the previous one
      was (in [0, 1); default: the model preset's sourced value, e.g. DeepSeek-V3's MTP 0.875;
      required where there is none). TPOT, throughput, the serving metrics and memory follow.
    - ``stack``: the serving stack (preset ids, e.g. ``"sglang"``, ``"trtllm-1"``, TOML paths or
      :class:`~tensorperf.catalog.specs.StackSpec` objects): its host time per forward step and per
      request outside the passes (docs/model.md §10.4); ``"ideal"`` (default): none. It also says
      which GEMM kernel paths exist beyond each format's native one (weight-only W8A16/W4A16, W4A8).
    - ``recipe``: the weight format of each tensor group (attention, MLP, experts, embeddings;
      preset ids such as ``"gpt-oss-mxfp4"``, ``"deepseek-fp8"``, TOML paths or
      :class:`~tensorperf.catalog.specs.RecipeSpec` objects); ``"uniform"`` (default): every group in
      ``weight_dtype``. Each group's GEMMs run on the fastest kernel path the hardware and the stack
      offer for its format (docs/model.md §3.13).
    - ``zipped``: inputs (lists of one length) that share one dimension, ``point``; the i-th values
      form the i-th configuration instead of spanning a Cartesian product.
    - What-if inputs: any numeric field of ModelSpec or HardwareSpec (``hbm_bandwidth=[3.35e12,
      4.8e12]``, ``num_kv_heads=[1, 8]``) replaces every preset's value; ``<field>_scale``
      multiplies it (``hbm_bandwidth_scale=[1, 1.3]``). Each becomes a dimension.
    - ``efficiency``: :class:`~tensorperf.catalog.specs.Efficiency` field -> value, overriding every
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
        max_num_tokens=max_num_tokens,
        request_rate=request_rate,
        num_requests=num_requests,
        queue=queue,
        adp_balance_iters=adp_balance_iters,
        admission_interval=admission_interval,
        isl_range_ratio=isl_range_ratio,
        osl_range_ratio=osl_range_ratio,
        imbalance=imbalance,
        ep_overlap=ep_overlap,
        ep_a2a=ep_a2a,
        speculative=speculative,
        spec_tokens=spec_tokens,
        acceptance=acceptance,
        draft_model=draft_model,
        chunk_size=chunk_size,
        allreduce=allreduce,
        stack=stack,
        recipe=recipe,
        zipped=zipped,
        **what_if,
        dtype=dtype,
        device=device,
    )
    overrides = check_efficiency(efficiency)
    if not isinstance(breakdown, (bool, np.bool_)):
        raise SpecError(f"breakdown = {breakdown!r} is not allowed: must be True or False")
    _check_fits_in_memory(grid, bool(breakdown))
    if client is not None or chunk_points is not None:  # in chunks (on a cluster's workers)
        evaluation = executors.gather(grid, convention, overrides, bool(breakdown), chunk_points, client)
    else:
        with torch.no_grad():
            evaluation = CONVENTIONS[convention](grid, overrides, breakdown=bool(breakdown))
    return to_dataset(
        evaluation,
        grid,
        {"convention": convention, "tensorperf_version": __version__, "dtype": str(grid.dtype).removeprefix("torch.")},
    )


def sensitivity(
    *, of: str, wrt: Sequence[str], efficiency: Mapping[str, float] | None = None, **axes: Any
) -> xr.Dataset:
    """d ``of`` / d parameter and its elasticity at every grid point (roofline convention).

    ``wrt`` names Efficiency factors (compute, memory, ...) and numeric ModelSpec/HardwareSpec fields
    (hbm_bandwidth, peak_flops_fp8, num_kv_heads, ...). ``axes`` are :func:`sweep`'s inputs.
    Returns ``gradient`` and ``elasticity`` with the grid's dims plus ``param``, the metric itself as
    ``value``, and ``feasible``; infeasible points keep finite derivatives of the formulas.
    """
    return sensitivity_dataset(gradients(of=of, wrt=wrt, efficiency=efficiency, **axes))


# --------------------------------------------------------------------------- streamed reductions


def _as_datasets(result: Any) -> Any:
    """A built-in reduction's result (:class:`~tensorperf.run.reductions.Labelled`, or a tuple of
    them from ``Combined``) as Datasets; anything else (a user reduction's own result) as it is."""
    if isinstance(result, Labelled):
        return labelled_dataset(result)
    if type(result) is tuple:
        return tuple(_as_datasets(r) for r in result)
    return result


def best(
    objective: str = "tokens_per_s_per_gpu",
    *,
    where: Mapping[str, tuple[str, float]] | None = None,
    keep: Sequence[str] = (),
    maximize: bool | None = None,
    memory: Any = DEFAULT_MEMORY,
    chunk_points: int | None = None,
    progress: bool | None = None,
    client: Any = None,
    convention: str = "roofline",
    efficiency: Mapping[str, float] | None = None,
    **axes: Any,
) -> xr.Dataset:
    """The best point of a grid, streamed: :func:`tensorperf.sweep`'s inputs (``**axes``) span the
    grid, which is evaluated in chunks of at most ``memory`` working bytes (or ``chunk_points``
    points) keeping only the running best, so grids far larger than memory fit.

    ``where`` maps a metric to ``(comparison, value)``, e.g. ``{"tokens_per_s_per_user": (">=", 20),
    "ttft": ("<=", 2.0)}`` (comparisons ``>=, >, <=, <, ==``); only feasible points meeting every
    condition qualify. ``keep`` lists dims to keep (one winner per combination of them; default
    none: one winner). Returns a small Dataset: the winner's metrics, ``best_<dim>`` for each reduced
    dim (and ``best_<input>`` for inputs zipped on one) and ``found``; equal, bit for bit, to
    ``sweep(**axes).tperf.best(objective, where=where, keep=keep)`` for any chunk size. Ties go to
    the first point in C order. ``progress`` shows a bar (default: on a terminal, after 1 s);
    ``client`` runs the chunks on a dask.distributed cluster (a ``Client`` or scheduler address)."""
    return labelled_dataset(
        executors.best(
            objective,
            where=where,
            keep=keep,
            maximize=maximize,
            memory=memory,
            chunk_points=chunk_points,
            progress=progress,
            client=client,
            convention=convention,
            efficiency=efficiency,
            axes=axes,
        )
    )


def pareto(
    x: str = "tokens_per_s_per_user",
    y: str = "tokens_per_s_per_gpu",
    *,
    where: Mapping[str, tuple[str, float]] | None = None,
    over: Sequence[str] | None = None,
    maximize: tuple[bool, bool] | None = None,
    memory: Any = DEFAULT_MEMORY,
    chunk_points: int | None = None,
    progress: bool | None = None,
    client: Any = None,
    convention: str = "roofline",
    efficiency: Mapping[str, float] | None = None,
    **axes: Any,
) -> xr.Dataset:
    """The Pareto frontier of ``x`` versus ``y``, streamed (see :func:`best` for the chunking,
    ``where``, ``progress`` and ``client``): over the ``over`` dims (default: the layout and batch
    dims), for each combination of the other dims. Returns the frontier points along a ``frontier``
    dim with their kept-dim and layout coordinates and every scalar metric, sorted by the kept dims
    then ``x`` ascending: the rows of ``sweep(**axes).tperf.pareto_table(x, y, ...)``."""
    return labelled_dataset(
        executors.pareto(
            x,
            y,
            where=where,
            over=over,
            maximize=maximize,
            memory=memory,
            chunk_points=chunk_points,
            progress=progress,
            client=client,
            convention=convention,
            efficiency=efficiency,
            axes=axes,
        )
    )


def reduce(
    reduction: Reduction,
    *,
    memory: Any = DEFAULT_MEMORY,
    chunk_points: int | None = None,
    progress: bool | None = None,
    client: Any = None,
    convention: str = "roofline",
    efficiency: Mapping[str, float] | None = None,
    **axes: Any,
) -> Any:
    """Stream any :class:`~tensorperf.Reduction` over the grid spanned by ``**axes`` (chunking,
    progress and ``client`` as in :func:`best`). Returns what its ``finish`` returns; the built-in
    reductions (``Best``, ``Pareto``, ``Count``, ``Combined`` of them) as Datasets."""
    return _as_datasets(
        executors.reduce(
            reduction,
            memory=memory,
            chunk_points=chunk_points,
            progress=progress,
            client=client,
            convention=convention,
            efficiency=efficiency,
            axes=axes,
        )
    )


def report(
    ds: xr.Dataset,
    path: str | os.PathLike[str],
    *,
    where: Mapping[str, tuple[str, float]] | None = None,
    x: str = "tokens_per_s_per_user",
    y: str = "tokens_per_s_per_gpu",
    title: str | None = None,
) -> os.PathLike[str]:
    """Write one self-contained HTML page of a sweep's Dataset (plotly.js inline: no server, no network
    at view time) and return its ``pathlib.Path``: the axes and presets, the best configuration per
    hardware under ``where``, the interactive Pareto frontier of ``y`` versus ``x``, cost and energy,
    the per-op breakdown of a frontier point and the reasons infeasible points failed, by count
    (:func:`tensorperf.interface.page.report`; needs ``pip install 'tensorperf[report]'``)."""
    return write_page(ds, path, where=where, x=x, y=y, title=title)
