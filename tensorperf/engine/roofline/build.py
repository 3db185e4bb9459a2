"""Grid -> the values of one evaluation (:mod:`.values`), one job per function: the specs
(:func:`specs`), the factors (:func:`.factors.efficiencies`), the exact shortcuts (:func:`shortcuts`),
the exact counts and layouts (:func:`exact_counts`, :func:`lengths`, :func:`layouts`), the memory that
does not depend on the batch and the batch (:mod:`.resident`), the deployment (:func:`deployment`),
the rates (:func:`rates`) and the workload (:func:`workload`); :func:`build` runs them in order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import torch

from tensorperf.catalog.specs import MODEL_FIELDS, Efficiency
from tensorperf.engine.grid import Grid
from tensorperf.engine.physics import comm, ops
from tensorperf.engine.physics.layout import Layout, default_microbatches
from tensorperf.engine.roofline import kernels as kernel_paths
from tensorperf.engine.roofline import speculative
from tensorperf.engine.roofline.factors import KERNEL_TABLES, NO_NATIVE_MATH, column_tables, efficiencies, math_column
from tensorperf.engine.roofline.resident import Resident, batch, resident_memory
from tensorperf.engine.roofline.values import (
    ALLREDUCE_CODE,
    EP_ALL_TO_ALLS,
    EP_OVERLAPS,
    QUEUES,
    Deployment,
    Operating,
    Rates,
    Shortcuts,
    Speculation,
    Traffic,
    Workload,
)
from tensorperf.units import DTYPE_BYTES

# model fields that decide which layers are dense and which MoE
STRUCTURE_FIELDS = frozenset({"num_layers", "first_dense_layers", "moe_layer_freq", "num_experts"})
COUNT_AXES = ("prompt_len", "output_len", "tp", "pp", "dp", "ep", "cp")  # placed in float64


def _identically(t: torch.Tensor, value: float) -> bool:
    """Whether ``t`` equals ``value`` at every point and needs no gradient (a few-axis factor)."""
    return not t.requires_grad and bool(torch.all(t == value))


def _swept(grid: Grid, fields: Mapping[str, Any], names: frozenset[str]) -> bool:
    """Whether an input or a field override (or its *_scale) replaces one of the model fields ``names``."""
    return any(k.removesuffix("_scale") in names for k in (*grid.values, *fields))


def specs(grid: Grid, fields: Mapping[str, torch.Tensor]) -> tuple[Any, Any]:
    """(model, hardware) spec views with ModelSpec/HardwareSpec fields replaced by the given tensors."""
    model, hardware = grid.spec("model"), grid.spec("hardware")
    for name, value in fields.items():
        object.__setattr__(model if name in MODEL_FIELDS else hardware, name, value)
    return model, hardware


def given_imbalance(grid: Grid, fields: Mapping[str, Any]) -> torch.Tensor | None:
    """The ``imbalance`` input on the grid (a tensor under that name in ``fields`` first: a
    sensitivity's leaf); None where it is not given (the engine then uses uniform routing's)."""
    if "imbalance" in fields:
        return fields["imbalance"]
    return grid.axis("imbalance") if "imbalance" in grid.values else None


def shortcuts(
    grid: Grid,
    fields: Mapping[str, Any],
    eff: Efficiency,
    hardware: Any,
    breakdown: bool,
    imbalance: torch.Tensor | None = None,
) -> Shortcuts:
    """The terms left out exactly: factors identically at their defaults, and the ops and collectives
    of a kind no model of the grid has (what-if overrides of the layer structure keep both); the
    routing imbalance where it is 1 at every point (every ep is 1, or the given ``imbalance`` is 1)."""
    models = grid.values["model"]
    restructured = _swept(grid, fields, STRUCTURE_FIELDS)
    latent_swept = _swept(grid, fields, frozenset({"kv_lora_rank"}))
    has_moe = restructured or any(s.num_experts > 0 for s in models)
    expert_parallel = any(ep > 1 for ep in grid.values["ep"])
    return Shortcuts(
        overlap=None if _identically(eff.overlap, 1.0) else eff.overlap,
        launches=not _identically(hardware.launch_overhead, 0.0),
        exposed=None if _identically(eff.comm_overlap, 0.0) else 1 - eff.comm_overlap,
        overhead=not _identically(eff.step_overhead, 0.0),
        has_dense=restructured or any(s.num_dense_layers > 0 for s in models),
        has_moe=has_moe,
        has_mla=latent_swept or any(s.kv_lora_rank > 0 for s in models),
        has_gqa=latent_swept or any(s.kv_lora_rank == 0 for s in models),
        no_cp=set(grid.values["cp"]) == {1},
        breakdown=breakdown,
        imbalanced=has_moe and expert_parallel and (imbalance is None or not _identically(imbalance, 1.0)),
        gemm_latency=not _identically(eff.gemm_latency, 0.0)
        or not _identically(eff.expert_latency, 0.0)
        or any(
            h.efficiency_for(c).gemm_latency > 0 or h.efficiency_for(c).expert_latency > 0
            for h in grid.values["hardware"]
            for c in KERNEL_TABLES
        ),
    )


def rates(
    grid: Grid,
    model: Any,
    hardware: Any,
    eff: Efficiency,
    column: torch.Tensor,
    kernels: kernel_paths.Kernels | None,
) -> Rates:
    """Peaks for the weight format (bf16's where the device has none: that point is infeasible
    unless another kernel path runs it), bandwidths and the collective tiers with their
    efficiencies applied."""
    hw = hardware
    peak = torch.where(column == 0, hw.peak_flops_bf16, torch.where(column == 1, hw.peak_flops_fp8, hw.peak_flops_fp4))
    native = (peak > 0) & (column != NO_NATIVE_MATH)
    return Rates(
        efficiency=eff,
        peak_gemm=torch.where(native, peak, hw.peak_flops_bf16),
        peak_attn=hw.peak_flops_bf16,
        gemm_supported=native if kernels is None else kernel_paths.supported(kernels, model),
        kernels=kernels,
        hbm_bandwidth=hw.hbm_bandwidth,
        launch_overhead=hw.launch_overhead,
        allreduce=grid.lookup("allreduce", ALLREDUCE_CODE),
        allreduce_used=tuple(dict.fromkeys(grid.values["allreduce"])),
        tiers=comm.Tiers(
            bw_in=hw.scaleup_bandwidth * eff.scaleup,
            lat_in=hw.scaleup_latency,
            bw_out=hw.scaleout_bandwidth * eff.scaleout,
            lat_out=hw.scaleout_latency,
            domain=hw.scaleup_size,
            mesh=hw.scaleup_mesh,
        ),
        custom=custom_all_reduce(grid, hw),
        ep_a2a=grid.lookup("ep_a2a", EP_ALL_TO_ALLS) if any(v != "nccl" for v in grid.values["ep_a2a"]) else None,
        operating=Operating(
            idle_power=hw.idle_power,
            board_power=hw.board_power,
            hbm_power_fraction=hw.hbm_power_fraction,
            host_power_per_gpu=hw.host_power_per_gpu,
            pue=hw.pue,
            price_per_gpu_hour=hw.price_per_gpu_hour,
        ),
    )


def custom_all_reduce(grid: Grid, hw: Any) -> comm.CustomAllReduce | None:
    """The serving stacks' peer-memory all-reduce kernels (docs/model.md §10.4): where the point's
    stack has them and its device has measured parameters (custom_allreduce_efficiency > 0). None
    where no point can use them (NCCL only: the same results bit for bit)."""
    if not any(s.custom_allreduce for s in grid.values["stack"]):
        return None
    eta = hw.custom_allreduce_efficiency
    measured = eta > 0
    if not eta.requires_grad and not bool(torch.any(measured)):
        return None
    return comm.CustomAllReduce(
        bw=hw.scaleup_bandwidth * torch.where(measured, eta, 1.0),  # (1 where unused: no 1/0)
        lat_one_shot=hw.custom_allreduce_latency,
        lat_two_shot=hw.custom_allreduce_twoshot_latency,
        enabled=(grid.spec("stack").custom_allreduce > 0) & measured,
    )


def exact_counts(grid: Grid) -> dict[str, torch.Tensor]:
    """The count axes (lengths and parallel degrees) placed in float64: exact to 2^53."""
    return {n: grid.axis(n, torch.float64) for n in COUNT_AXES if n in grid.values}


def lengths(grid: Grid, exact: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(S, chunks, T_out) in the grid's dtype: tokens per prompt, prefill chunks per prompt
    (ceil(S / chunk_size), 1 without chunking) and output tokens per request."""
    dt = grid.dtype
    S = exact["prompt_len"].to(dt)
    if "chunk_size" in grid.values:
        chunks = torch.ceil(exact["prompt_len"] / grid.axis("chunk_size", torch.float64)).to(dt)
    else:
        chunks = torch.ones_like(S)
    return S, chunks, exact["output_len"].to(dt)


def workload(
    grid: Grid,
    model: Any,
    model_exact: Any,
    S: torch.Tensor,
    chunks: torch.Tensor,
    T_out: torch.Tensor,
    context: torch.Tensor,
    batch_exact: torch.Tensor,
    batch: torch.Tensor,
    imbalance: torch.Tensor | None = None,
    speculation: Speculation | None = None,
) -> Workload:
    """The model, the requests' lengths and prefill chunks, the batch, the given routing imbalance and
    speculative decoding (None where no point speculates)."""
    chunked = "chunk_size" in grid.values
    return Workload(
        model=model,
        model_exact=model_exact,
        prompt=S,
        output=T_out,
        context=context,
        chunk_size=grid.axis("chunk_size") if chunked else None,
        chunks=chunks,
        max_chunks=max(int(max(grid.values["prompt_len"]) // min(grid.values["chunk_size"])), 1) if chunked else 1,
        batch=batch,
        batch_exact=batch_exact,
        serving=traffic(grid, S, T_out),
        imbalance=imbalance,
        speculation=speculation,
    )


def stack_overheads(grid: Grid) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(seconds per step, seconds per request) of each point's serving stack; None where they are 0
    at every point (the ideal stack: the same results bit for bit)."""
    specs, view = grid.values["stack"], grid.spec("stack")
    return (
        view.step_overhead if any(s.step_overhead for s in specs) else None,
        view.request_overhead if any(s.request_overhead for s in specs) else None,
    )


def stack_compute(grid: Grid, hardware: Any) -> None:
    """Each point's peaks times its serving stack's compute_efficiency (docs/model.md §10.4): the
    share of the device's measured kernel rates the stack's kernels reach. Left as they are where
    every stack has 1 (the same results bit for bit)."""
    if all(s.compute_efficiency == 1 for s in grid.values["stack"]):
        return
    share = grid.spec("stack").compute_efficiency
    for name in ("peak_flops_bf16", "peak_flops_fp8", "peak_flops_fp4"):
        object.__setattr__(hardware, name, getattr(hardware, name) * share)


def traffic(grid: Grid, S: torch.Tensor, T_out: torch.Tensor) -> Traffic:
    """The serving inputs: the step's token budget, the lengths' means and the prompt lengths' range
    (None where every ratio is 1), the request rate and the number of requests (None where not
    given)."""
    r_in, r_out = grid.axis("isl_range_ratio"), grid.axis("osl_range_ratio")
    ranged = any(v < 1 for v in grid.values["isl_range_ratio"])
    return Traffic(
        budget=grid.axis("max_num_tokens"),
        mean_prompt=S * (1 + r_in) / 2,
        mean_output=T_out * (1 + r_out) / 2,
        prompt_range=(S * r_in, S, r_in == 1) if ranged else None,
        # uniform on [rL, L]: variance L²(1 − r)²/12 over the squared mean L²(1 + r)²/4
        output_cv2=(1 - r_out) ** 2 / (3 * (1 + r_out) ** 2),
        request_overhead=stack_overheads(grid)[1],
        request_rate=grid.axis("request_rate") if "request_rate" in grid.values else None,
        num_requests=grid.axis("num_requests", torch.float64).to(grid.dtype) if "num_requests" in grid.values else None,
        client_queue=grid.lookup("queue", QUEUES) if any(q != "server" for q in grid.values["queue"]) else None,
        adp_balance=grid.axis("adp_balance_iters") if "adp_balance_iters" in grid.values else None,
        admission=grid.axis("admission_interval") if any(v != 1 for v in grid.values["admission_interval"]) else None,
    )


def layouts(grid: Grid, exact: Mapping[str, torch.Tensor]) -> tuple[Layout, Layout]:
    """(float64 layout, shell in the grid's dtype) of the parallel degrees, one microbatch each."""
    tp, pp, dp, ep, cp = (exact[n].to(grid.dtype) for n in ("tp", "pp", "dp", "ep", "cp"))
    exact_layout = Layout(
        *(exact[n] for n in ("tp", "pp", "dp", "ep")),
        micro=torch.ones((), dtype=torch.float64, device=grid.device),
        cp=exact["cp"],
    )
    return exact_layout, Layout(tp=tp, pp=pp, dp=dp, ep=ep, micro=torch.ones_like(pp), cp=cp)


def element_sizes(grid: Grid) -> ops.Bytes:
    """Bytes per element of the weights, the KV cache and the activations."""
    return ops.Bytes(
        w=grid.lookup("weight_dtype", DTYPE_BYTES),
        kv=grid.lookup("kv_dtype", DTYPE_BYTES),
        a=grid.lookup("act_dtype", DTYPE_BYTES),
    )


def deployment(
    exact_layout: Layout,
    shell: Layout,
    sizes: ops.Bytes,
    resident: Resident,
    batch_exact: torch.Tensor,
    micro: torch.Tensor | None,
    group_bytes: Mapping[str, torch.Tensor] | None = None,
) -> Deployment:
    """The layout with its microbatches (given, or as many as fill the pipeline), the resident memory
    and the per-replica and per-microbatch shares of the batch."""
    dt = shell.pp.dtype  # the grid's
    replica_exact = batch_exact / exact_layout.dp
    replica = replica_exact.to(dt)
    micro = micro if micro is not None else default_microbatches(exact_layout.pp, replica_exact)
    layout = dataclasses.replace(shell, micro=micro.to(dt))
    return Deployment(
        layout=layout,
        layout_exact=dataclasses.replace(exact_layout, micro=micro),
        sizes=sizes,
        group_bytes=group_bytes,
        mix=resident.mix,
        weights=resident.weights,
        kv_per_sequence=resident.kv_per_sequence,
        per_sequence=resident.per_sequence,
        workspace_cap=resident.workspace_cap,
        capacity=resident.capacity,
        replica_batch=replica,
        replica_batch_exact=replica_exact,
        microbatch=replica / layout.micro,
    )


def build(
    grid: Grid, efficiency: Mapping[str, Any], fields: Mapping[str, torch.Tensor], breakdown: bool
) -> tuple[Workload, Rates, Deployment, Shortcuts]:
    """Everything the phases need, on the grid. (The order of these few-axis allocations decides how
    the C allocator's heap is reused by the grid-sized temporaries that follow: a reordering can
    cost page faults on every evaluation; time a 1e6-point evaluate after changing it.)"""
    f64 = torch.float64
    imbalance = given_imbalance(grid, fields)
    given = fields
    fields = {k: v for k, v in fields.items() if k not in ("imbalance", "acceptance")}  # (the others: spec fields)
    model, hardware = specs(grid, fields)
    stack_compute(grid, hardware)
    column = math_column(grid)
    eff = efficiencies(grid, efficiency, column)
    stack = stack_overheads(grid)
    if stack[0] is not None:  # the serving stack's host time per step adds to the hardware's own
        object.__setattr__(eff, "step_overhead", eff.step_overhead + stack[0])
    kernels = (
        kernel_paths.kernels(grid, hardware, column_tables(grid, efficiency), grid.dtype)
        if kernel_paths.needed(grid)
        else None
    )
    cuts = shortcuts(grid, fields, eff, hardware, breakdown, imbalance)
    exact = exact_counts(grid)
    model_exact = grid.spec("model", int_dtype=f64) if grid.dtype != f64 else model
    S, chunks, T_out = lengths(grid, exact)
    exact_layout, shell = layouts(grid, exact)
    sizes = element_sizes(grid)
    micro = grid.axis("microbatches", f64) if "microbatches" in grid.values else None
    context = S + T_out
    group_bytes = kernels.bytes if kernels is not None else None
    spec = speculative.speculation(grid, given, model, shell, cuts)  # None: no point speculates
    drafter = None if spec is None else speculative.drafter_memory(spec, model, shell, sizes, context, group_bytes)
    resident = resident_memory(grid, fields, model, hardware, shell, sizes, S, context, group_bytes, drafter)
    batch_exact = batch(grid, resident, exact_layout.dp, micro)
    batch_ = batch_exact.to(grid.dtype)
    dep = deployment(exact_layout, shell, sizes, resident, batch_exact, micro, group_bytes)
    if any(v != "none" for v in grid.values["ep_overlap"]):
        dep = dataclasses.replace(dep, two_batch=grid.lookup("ep_overlap", EP_OVERLAPS))
    return (
        workload(grid, model, model_exact, S, chunks, T_out, context, batch_exact, batch_, imbalance, spec),
        rates(grid, model, hardware, eff, column, kernels),
        dep,
        cuts,
    )
