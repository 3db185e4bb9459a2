"""Fit the size-dependent efficiency curves to measured kernels (data/kernel_measurements.csv).

Each measured kernel is predicted with the same forms the engine uses (physics.roofline,
physics.comm) and the curve parameters are fitted by a torch optimizer on the log of the time:

- GEMM (per GPU and weight format): t = max(F / (compute · m/(m + gemm_half_tokens) · peak),
  bytes / (memory · W_hbm)); fits compute, gemm_half_tokens, memory (a preset's
  [efficiency.<format>] compute, gemm_half_tokens, gemm_memory).
- grouped MoE expert GEMMs (per GPU and weight format): the same with m = tokens per expert and
  expert_half_tokens.
- prefill (context) attention (per GPU): t = roofline(F / (attention · peak), bytes / (memory · W)).
- all-reduce (per GPU, NCCL and custom kernels together): ring 2(n−1)·α + 2(n−1)/n·(S + comm_half_bytes)
  / (scaleup · W_link); fits scaleup and comm_half_bytes.

A weight format is fitted on its fastest measured variant per shape: a serving runtime runs a
format's weights through the fastest kernel it has for them, so for each (GPU, framework, shape)
the time is the min over the format's kernel dtypes (FORMAT: fp8 = min(fp8 per-tensor, fp8_block),
fp4 = nvfp4, bf16 = bfloat16); every framework's rows are kept and pooled. Fitting the per-tensor
fp8 rows alone made B200 fp8 slower than bf16 at few rows (data/kernel_measurements.csv b200_sxm
TRT-LLM 1.3.0rc20 m=1 n=k=8192: fp8 26.3 µs, bf16 27.4 µs, fp8_block 17.6 µs for 67 MB).

Why this form: at few rows the measured time is a near-flat weight stream (B200 fp8_block
m=1..64: 17.6-20.0 µs for 67-69 MB), at many rows a compute rate that rises with m and saturates
(8192³ at 0.43-0.82 of the format's peak). Part of the few-row time is a fixed per-kernel cost
that differs per format (B200 m=1: bf16 27.4 µs for 134 MB, fp8_block 17.6 µs for 67 MB, nvfp4
22.3 µs for 38 MB). :func:`fit_kernels` folds it into the memory factor; :func:`fit_latency`, which
the presets use (docs/model.md §3.7.1), separates it: the weights stream at the device's streaming
efficiency and each kernel adds a fixed time (``gemm_latency``).

Efficiencies stay in (0, 1] through a sigmoid, sizes stay positive through a softplus: a smooth,
bounded reparameterization (no clipping), so Adam works on unconstrained numbers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from tensorperf.catalog import presets
from tensorperf.engine.physics.comm import ring_all_reduce
from tensorperf.engine.physics.roofline import compute_time, memory_time, op_time, saturation
from tensorperf.validation import SpecError

if TYPE_CHECKING:
    from tensorperf.catalog.specs import HardwareSpec

GPU_PRESET = MappingProxyType({"h100_sxm": "h100-sxm", "h200_sxm": "h200-sxm", "b200_sxm": "b200"})
PEAK_COLUMN = MappingProxyType(
    {"bfloat16": "peak_flops_bf16", "fp8": "peak_flops_fp8", "fp8_block": "peak_flops_fp8", "nvfp4": "peak_flops_fp4"}
)
# kernel dtype -> the weight format it serves (dtypes not listed are their own format); a format's
# fit takes the fastest of its variants per (gpu, framework, shape)
FORMAT = MappingProxyType({"bfloat16": "bfloat16", "fp8": "fp8", "fp8_block": "fp8", "nvfp4": "nvfp4"})
REQUIRED = ("gpu", "op", "dtype", "m", "measured_time_ms", "flops", "bytes_moved", "num_gpus", "message_bytes", "shape")
SIZE_SCALE = {"tokens": 256.0, "bytes": 2.0**20}  # softplus units for the half sizes


@dataclass(frozen=True)
class Fit:
    """Fitted parameters and the fit's quality for one group of kernels."""

    kind: str
    gpu: str
    dtype: str  # GEMMs: the weight format (FORMAT values); others: the kernel dtype
    params: dict[str, float]
    rows: int
    median_abs_error: float  # |predicted/measured − 1|, after the fit
    max_abs_error: float
    variants: str = ""  # GEMMs: which kernel dtype was fastest on how many fitted rows, e.g. "fp8_block 7"


NUMERIC = ("m", "measured_time_ms", "flops", "bytes_moved", "num_gpus", "message_bytes")


def load_kernels(path: str | Path) -> pd.DataFrame:
    """Read a kernel measurements CSV: every REQUIRED column, numbers (finite, >= 0; times > 0) in NUMERIC."""
    if not isinstance(path, (str, os.PathLike)) or not str(path).strip():
        raise SpecError(f"kernel measurements path = {path!r} is not allowed: must be the path of a CSV file")
    path = Path(path)
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as e:  # ValueError: parser errors, empty file, not UTF-8
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise SpecError(f"{path}: cannot read kernel measurements: {reason}") from None
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise SpecError(f"{path}: column {missing[0]!r} is missing; required: {', '.join(REQUIRED)}")
    for column in NUMERIC:
        numbers = pd.to_numeric(frame[column], errors="coerce")
        bad = frame[column].notna() & ~(np.isfinite(numbers) & (numbers >= 0))
        if column == "measured_time_ms":
            bad |= ~(numbers > 0)
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise SpecError(
                f"{path}: column {column!r} of row {i + 1} is {frame[column].iloc[i]!r}; must be a finite "
                f"number {'> 0' if column == 'measured_time_ms' else '>= 0'}"
            )
        frame[column] = numbers
    return frame[frame.gpu.isin([*GPU_PRESET, *AITER_GPU_PRESET])].reset_index(drop=True)


def _tensor(values: pd.Series | np.ndarray) -> torch.Tensor:
    return torch.tensor(np.asarray(values, dtype=np.float64))


def _shape(shape: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in shape.split(";") if "=" in item)


def _attention_bytes(rows: pd.DataFrame) -> np.ndarray:
    """Flash prefill reads Q, K, V and writes O once: B·S·(2·n_q + 2·n_kv)·d_h·2 bytes (bf16)."""
    return (rows.batch * rows.seq * (2 * rows.num_heads + 2 * rows.num_kv_heads) * rows.head_dim * 2).to_numpy()


def _expert_bytes(rows: pd.DataFrame) -> np.ndarray:
    """Weights of the GPU's E/ep experts that the tokens touch (3 matrices of hidden x inter) plus
    the routed activations in and out; 1 byte per weight for fp8, 2 for bf16."""
    out = []
    for shape, dtype in zip(rows["shape"], rows["dtype"]):
        s = _shape(shape)
        E, ep, k, T = float(s["experts"]), float(s["moe_ep"]), float(s["topk"]), float(s["num_tokens"])
        h, f = float(s["hidden"]), float(s["inter"])
        b = 2.0 if dtype == "bfloat16" else 1.0
        touched = E / ep * (1 - (1 - k / E) ** T)
        out.append(touched * 3 * h * f * b + T * k / ep * 2 * h * 2)
    return np.asarray(out)


def _sig(u: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(u)


def _fit(
    predict: Callable[[Mapping[str, torch.Tensor]], torch.Tensor],
    measured: torch.Tensor,
    init: dict[str, float],
    kinds: dict[str, str],
    steps: int = 1500,
) -> tuple[dict[str, float], torch.Tensor]:
    """Minimize mean (log t_pred − log t_meas)² over bounded parameters; return values and predictions."""
    raw = {}
    for name, value in init.items():
        if kinds[name] == "eff":
            raw[name] = torch.tensor(float(np.log(value / (1 - value))), dtype=torch.float64, requires_grad=True)
        else:
            raw[name] = torch.tensor(
                float(np.log(np.expm1(value / SIZE_SCALE[kinds[name]]))), dtype=torch.float64, requires_grad=True
            )

    def values() -> dict[str, torch.Tensor]:
        return {
            n: _sig(r) if kinds[n] == "eff" else torch.nn.functional.softplus(r) * SIZE_SCALE[kinds[n]]
            for n, r in raw.items()
        }

    opt = torch.optim.Adam(list(raw.values()), lr=0.05)
    target = torch.log(measured)
    for _ in range(steps):  # optimizer iterations, not grid points
        opt.zero_grad()
        loss = ((torch.log(predict(values())) - target) ** 2).mean()
        loss.backward()
        opt.step()
    with torch.no_grad():
        fitted = values()
        return {n: float(v) for n, v in fitted.items()}, predict(fitted)


def _gemm_group(
    rows: pd.DataFrame,
    peak: float,
    bw: float,
    size_column: np.ndarray,
    half: str,
    nbytes_column: np.ndarray | None = None,
) -> tuple[Callable[[Mapping[str, torch.Tensor]], torch.Tensor], dict[str, float], dict[str, str]]:
    flops, size = _tensor(rows.flops), _tensor(size_column)
    nbytes = _tensor(rows.bytes_moved if nbytes_column is None else nbytes_column)

    def predict(p: Mapping[str, torch.Tensor]) -> torch.Tensor:
        eff_c = p["compute"] * saturation(size, p[half])
        return op_time(compute_time(flops, peak, eff_c), memory_time(nbytes, bw, p["memory"]), 1.0)

    return predict, {"compute": 0.7, "memory": 0.7, half: 64.0}, {"compute": "eff", "memory": "eff", half: "tokens"}


def _tokens_per_expert(shape: str) -> float:
    kv = _shape(shape)
    return float(kv["num_tokens"]) * float(kv["topk"]) / float(kv["experts"])


def fastest_variants(rows: pd.DataFrame) -> pd.DataFrame:
    """Per (framework, shape), the row of the fastest kernel dtype: what a runtime that picks the
    fastest kernel for a format runs. Without a framework column all rows are one framework."""
    keys = ["framework", "shape"] if "framework" in rows.columns else ["shape"]
    best = rows.groupby(keys, sort=True, dropna=False)["measured_time_ms"].idxmin()
    return rows.loc[np.sort(best.to_numpy())]


def _variants(rows: pd.DataFrame) -> str:
    return ", ".join(f"{d} {n}" for d, n in rows["dtype"].value_counts().sort_index().items())


def fit_kernels(frame: pd.DataFrame, steps: int = 1500) -> list[Fit]:
    """Fit every group (a loop over a handful of kernel groups); returns one Fit per group.

    GEMM and grouped-expert groups are per (gpu, op, weight format) on the fastest variant per shape
    (:func:`fastest_variants`); the other groups are per (gpu, op, dtype)."""
    fits = []
    formats = frame["dtype"].map(lambda d: FORMAT.get(d, d)).rename("format")
    for (gpu, op, dtype), rows in frame.groupby(["gpu", "op", formats], sort=True):
        hw = presets.hardware_spec(GPU_PRESET[gpu])
        gemm = op in ("gemm", "moe_experts") and dtype in PEAK_COLUMN
        if gemm:
            rows = fastest_variants(rows)
        measured = _tensor(rows.measured_time_ms) * 1e-3
        if op == "gemm" and dtype in PEAK_COLUMN:
            peak = getattr(hw, PEAK_COLUMN[dtype])
            model = _gemm_group(rows, peak, hw.hbm_bandwidth, rows.m.to_numpy(), "gemm_half_tokens")
        elif op == "moe_experts" and dtype in PEAK_COLUMN:
            peak = getattr(hw, PEAK_COLUMN[dtype])
            size = np.array([_tokens_per_expert(s) for s in rows["shape"]])
            model = _gemm_group(rows, peak, hw.hbm_bandwidth, size, "expert_half_tokens", _expert_bytes(rows))
        elif op == "context_attention":
            flops, nbytes = _tensor(rows.flops), _tensor(_attention_bytes(rows))

            def attention(
                p: Mapping[str, torch.Tensor],
                flops: torch.Tensor = flops,
                nbytes: torch.Tensor = nbytes,
                hw: HardwareSpec = hw,
            ) -> torch.Tensor:
                return op_time(
                    compute_time(flops, hw.peak_flops_bf16, p["attention"]),
                    memory_time(nbytes, hw.hbm_bandwidth, p["memory"]),
                    1.0,
                )

            model = (attention, {"attention": 0.5, "memory": 0.7}, {"attention": "eff", "memory": "eff"})
        elif op in ("nccl_all_reduce", "custom_allreduce"):
            n, S = _tensor(rows.num_gpus), _tensor(rows.message_bytes)

            def all_reduce(
                p: Mapping[str, torch.Tensor], n: torch.Tensor = n, S: torch.Tensor = S, hw: HardwareSpec = hw
            ) -> torch.Tensor:
                return ring_all_reduce(
                    S + p["comm_half_bytes"], n, hw.scaleup_bandwidth * p["scaleup"], hw.scaleup_latency
                )

            model = (
                all_reduce,
                {"scaleup": 0.8, "comm_half_bytes": 2.0**20},
                {"scaleup": "eff", "comm_half_bytes": "bytes"},
            )
        else:
            continue
        predict, init, kinds = model
        params, predicted = _fit(predict, measured, init, kinds, steps)
        err = (predicted / measured - 1).abs().numpy()
        fits.append(
            Fit(
                kind=op,
                gpu=GPU_PRESET[gpu],
                dtype=dtype,
                params=params,
                rows=len(rows),
                median_abs_error=float(np.median(err)),
                max_abs_error=float(err.max()),
                variants=_variants(rows) if gemm else "",
            )
        )
    return fits


def fits_table(fits: list[Fit]) -> pd.DataFrame:
    """One row per fitted group: kind, gpu, dtype, variants, rows, fitted parameters, median/max |error|."""
    records = [
        {
            "kind": f.kind,
            "gpu": f.gpu,
            "dtype": f.dtype,
            "variants": f.variants,
            "rows": f.rows,
            **f.params,
            "median_abs_error": f.median_abs_error,
            "max_abs_error": f.max_abs_error,
        }
        for f in fits
    ]
    return pd.DataFrame.from_records(records)


# The kernel tables the streaming fit produces, each fitted on TensorRT-LLM's GEMM rows of one kernel
# dtype (the one framework measured on every device): bf16, per-tensor fp8, block-scaled fp8, nvfp4
LATENCY_TABLES = MappingProxyType({"bf16": "bfloat16", "fp8": "fp8", "fp8_block": "fp8_block", "fp4": "nvfp4"})
# Tables whose measured fixed time includes activation quantization that a deployment does not run as
# a kernel of its own: the per-tensor fp8 rows carry no input scale, so TensorRT-LLM quantizes
# dynamically (an absmax reduction and a quantize kernel per GEMM; aiconfigurator
# collector/trtllm/collect_gemm.py: "the collected fp8 GEMM includes the compute-scale overhead"),
# while a static fp8 checkpoint (ModelOpt FP8) stores its input scales; the nvfp4 rows quantize their
# input with torch.ops.trtllm.fp4_quantize inside the timed Linear. In a model TensorRT-LLM fuses both
# quantizations into the all-reduce + residual + RMSNorm kernel before the GEMM
# (AllReduceFusionOp.RESIDUAL_RMS_NORM_QUANT_FP8 / RESIDUAL_RMS_NORM_QUANT_NVFP4, used by its Llama
# and DeepSeek models). Their deployed fixed time is the bf16 GEMM's. Block-scaled fp8 keeps its own:
# its per-token-group quantization runs as a kernel of its own in the model too (fp8_quantize_1x128).
FUSED_QUANT_TABLES = frozenset({"fp8", "fp4"})


@dataclass(frozen=True)
class LatencyFit:
    """One kernel table fitted as streaming + fixed time (docs/model.md §3.7.1)."""

    gpu: str
    table: str  # a LATENCY_TABLES key
    memory: float  # the device's streaming efficiency (gemm_memory)
    measured_latency: float  # s: the fixed time of the measured kernels (activation quantization included)
    latency: float  # s per GEMM kernel as deployed (gemm_latency)
    compute: float
    gemm_half_tokens: float
    rows: int
    median_abs_error: float
    max_abs_error: float


def streaming_efficiency(frame: pd.DataFrame) -> dict[str, float]:
    """Per GPU preset: the HBM efficiency of its largest measured streams, the best bytes / (t · W)
    of its decode-attention rows with a bf16 KV cache (up to 4.3 GB read per kernel): what a kernel
    streaming GB-sized weights reaches once its fixed time is amortized."""
    out = {}
    rows = frame[(frame.op == "generation_attention") & frame.dtype.str.contains("kv=bfloat16", regex=False)]
    for gpu, g in rows.groupby("gpu", sort=True):
        hw = presets.hardware_spec(GPU_PRESET[gpu])
        out[GPU_PRESET[gpu]] = float((g.bytes_moved / (g.measured_time_ms * 1e-3 * hw.hbm_bandwidth)).max())
    return out


def _beyond_stream(seconds: Any, nbytes: Any, eta: float, bw: float) -> np.ndarray:
    """What each kernel takes beyond streaming its bytes at η · W: t − bytes / (η · W), >= 0."""
    return np.clip(np.asarray(seconds) - np.asarray(nbytes) / (eta * bw), 0, None)


def _fixed_time(rows: pd.DataFrame, eta: float, bw: float) -> float:
    """The median over the rows of at most 64 rows (a weight stream) of t − bytes / (η · W), >= 0."""
    small = rows[rows.m <= 64]
    return float(np.median(_beyond_stream(small.measured_time_ms * 1e-3, small.bytes_moved, eta, bw)))


def fit_latency(frame: pd.DataFrame, steps: int = 1500) -> list[LatencyFit]:
    """Fit each GPU's GEMM kernel tables as a weight stream at the device's streaming efficiency
    (:func:`streaming_efficiency`) plus a fixed time per kernel: t = roofline(F / (compute ·
    m/(m + half) · peak), bytes / (η_stream · W)) + t₀, t₀ from :func:`_fixed_time`; compute and
    half rows fitted with η_stream and t₀ fixed. The deployed t₀ of a FUSED_QUANT_TABLES table
    is the bf16 one's. A loop over a handful of (GPU, table) groups."""
    eta = streaming_efficiency(frame)
    gemm = frame[(frame.op == "gemm") & (frame.framework == "trtllm")]
    fits = []
    for gpu in sorted(gemm.gpu.unique()):
        hw = presets.hardware_spec(GPU_PRESET[gpu])
        e, bw = eta.get(GPU_PRESET[gpu]), hw.hbm_bandwidth
        mine = gemm[gemm.gpu == gpu]
        if e is None or (mine.dtype == "bfloat16").sum() == 0:
            continue
        t_bf16 = _fixed_time(mine[mine.dtype == "bfloat16"], e, bw)
        for table, dtype in LATENCY_TABLES.items():
            rows = mine[mine.dtype == dtype]
            if rows.empty:
                continue
            t0 = _fixed_time(rows, e, bw)
            peak = getattr(hw, PEAK_COLUMN[dtype])
            flops, nbytes, m = _tensor(rows.flops), _tensor(rows.bytes_moved), _tensor(rows.m)

            def predict(
                p: Mapping[str, torch.Tensor],
                flops: torch.Tensor = flops,
                nbytes: torch.Tensor = nbytes,
                m: torch.Tensor = m,
                peak: float = peak,
                e: float = e,
                bw: float = bw,
                t0: float = t0,
            ) -> torch.Tensor:
                t_c = compute_time(flops, peak, p["compute"] * saturation(m, p["gemm_half_tokens"]))
                return op_time(t_c, memory_time(nbytes, bw, e), 1.0) + t0

            measured = _tensor(rows.measured_time_ms) * 1e-3
            params, predicted = _fit(
                predict,
                measured,
                {"compute": 0.7, "gemm_half_tokens": 64.0},
                {"compute": "eff", "gemm_half_tokens": "tokens"},
                steps,
            )
            err = (predicted / measured - 1).abs().numpy()
            fits.append(
                LatencyFit(
                    gpu=GPU_PRESET[gpu],
                    table=table,
                    memory=e,
                    measured_latency=t0,
                    latency=t_bf16 if table in FUSED_QUANT_TABLES else t0,
                    compute=params["compute"],
                    gemm_half_tokens=params["gemm_half_tokens"],
                    rows=len(rows),
                    median_abs_error=float(np.median(err)),
                    max_abs_error=float(err.max()),
                )
            )
    return fits


# Kernel dtype of the fused-MoE rows -> (the kernel table it sets, its weight format's bytes)
EXPERT_TABLES = MappingProxyType(
    {
        "bfloat16": ("bf16", "bf16"),
        "fp8": ("fp8", "fp8"),
        "fp8_block": ("fp8_block", "fp8_block"),
        "nvfp4": ("fp4", "nvfp4"),
    }
)


@dataclass(frozen=True)
class ExpertLatencyFit:
    """One kernel table's fixed time per fused-MoE call (docs/model.md §3.7.2)."""

    gpu: str
    table: str  # an EXPERT_TABLES table
    memory: float  # the table's streaming efficiency the weights are charged at (its gemm_memory)
    latency: float  # s per fused-MoE call (expert_latency)
    rows: int
    spread: float  # s: the interquartile range of t − stream over the rows


def expert_stream_bytes(shape: str, weight_bytes: float) -> float:
    """The bytes one GPU's fused-MoE call moves, as the engine counts them (ops.routed_experts,
    ops.critical_experts): the touched experts of its E/ep, at least one where ep > 1 (the measured
    rank holds a routed expert; 3·h·f/tp weights each), 4·h + 3·f/tp bf16 activations per routed
    pair (expand, first GEMM, second GEMM, finalize; the intermediate) and its own tokens' rows in
    and out (2·h each)."""
    s = _shape(shape)
    E, k, T = float(s["experts"]), float(s["topk"]), float(s["num_tokens"])
    h, f, tp, ep = float(s["hidden"]), float(s["inter"]), float(s["moe_tp"]), float(s["moe_ep"])
    touched = max(E / ep * (1 - (1 - k / E) ** T), 1.0 if ep > 1 else 0.0)
    return touched * 3 * h * f / tp * weight_bytes + T * k / ep * (4 * h + 3 * f / tp) * 2 + 2 * T * h * 2


def fit_expert_latency(frame: pd.DataFrame) -> list[ExpertLatencyFit]:
    """Per GPU and kernel table: the median over its few-token fused-MoE rows (TensorRT-LLM
    moe_experts, at most 16 tokens) of t − bytes / (η · W), η the table's gemm_memory, clipped at 0:
    what the call costs beyond streaming its weights and activations. A loop over a handful of
    (GPU, table) groups."""
    from tensorperf.units import DTYPE_BYTES

    rows = frame[(frame.op == "moe_experts") & (frame.framework == "trtllm") & frame.dtype.isin(list(EXPERT_TABLES))]
    tokens = rows["shape"].map(lambda s: float(_shape(s)["num_tokens"]))
    rows = rows[tokens <= 16]
    fits = []
    for (gpu, dtype), g in rows.groupby(["gpu", "dtype"], sort=True):
        hw = presets.hardware_spec(GPU_PRESET[gpu])
        table, fmt = EXPERT_TABLES[dtype]
        eta = hw.efficiency_for(table).gemm_memory
        nbytes = np.array([expert_stream_bytes(s, DTYPE_BYTES[fmt]) for s in g["shape"]])
        rest = _beyond_stream(g.measured_time_ms.to_numpy() * 1e-3, nbytes, eta, hw.hbm_bandwidth)
        q1, q3 = np.quantile(rest, [0.25, 0.75])
        fits.append(
            ExpertLatencyFit(
                gpu=GPU_PRESET[gpu],
                table=table,
                memory=eta,
                latency=float(np.median(rest)),
                rows=len(g),
                spread=float(q3 - q1),
            )
        )
    return fits


# AMD GPUs in ROCm/aiter's tuned kernel tables (data/aiter_kernel_measurements.csv) -> preset; the
# kernel dtype -> the preset's kernel table (block-scaled fp8 has its own, MXFP4 runs on fp4 math)
AITER_GPU_PRESET = MappingProxyType({"mi300x": "mi300x", "mi355x": "mi355x"})
AITER_TABLES = MappingProxyType({"fp8_block": "fp8_block", "mxfp4": "fp4"})
AITER_PEAK = MappingProxyType({"fp8_block": "peak_flops_fp8", "mxfp4": "peak_flops_fp4"})
AITER_STREAM_ROWS = 16  # GEMMs of at most this many rows are weight streams (and their fixed time)
AITER_STREAM_TOKENS = (32, 64)  # fused-MoE calls that touch nearly every expert yet still stream
AITER_FEW_TOKENS = 16  # fused-MoE calls of at most this many tokens give the fixed time per call


@dataclass(frozen=True)
class AiterFit:
    """One AMD kernel table fitted to AITER's tuned kernel times (docs/model.md §3.7.2)."""

    gpu: str
    table: str  # an AITER_TABLES table
    memory: float  # gemm_memory: the best bytes / (t · W) over the table's streams
    gemm_latency: float | None  # s per GEMM kernel: median of t − B/(η·W) over its GEMMs (None: no GEMM rows)
    expert_latency: float  # s per fused-MoE call: median of t − B/(η·W) over its calls of at most 16 tokens
    gemm_rows: int
    moe_rows: int
    compute: float | None = None  # GEMM compute efficiency at many rows (None: no GEMM rows)
    gemm_half_tokens: float | None = None  # rows at half of it
    expert_compute: float | None = None  # fused-MoE compute efficiency at many tokens per expert
    compute_rows: int = 0  # GEMM rows of the compute fit (every measured M)
    expert_rows: int = 0  # fused-MoE calls of the compute fit (32 or more tokens, copies left out)
    compute_error: float = 0.0  # median |t_fit/t − 1| over those GEMM rows
    expert_error: float = 0.0  # and over those calls


def aiter_copies(frame: pd.DataFrame) -> np.ndarray:
    """True for a fused-MoE row of 32 or more tokens whose time equals that of the same shape at fewer
    tokens: a tuner entry copied from a smaller problem, not a measurement (ROCm/aiter@e404860's
    MI355X block-fp8 TP8 table gives 359.48 us for every count from 1,024 to 32,768 tokens)."""
    out = np.zeros(len(frame), dtype=bool)
    moe = (frame.op == "moe_experts").to_numpy()
    tokens = np.array([float(_shape(s).get("num_tokens", "nan")) if m else np.nan for s, m in zip(frame["shape"], moe)])
    key = [
        (g, d, ";".join(kv for kv in str(s).split(";") if not kv.startswith("num_tokens=")))
        for g, d, s in zip(frame.gpu, frame.dtype, frame["shape"])
    ]
    t = frame.measured_time_ms.to_numpy()
    for i in np.flatnonzero(moe & (tokens >= 32)):  # a loop over a few dozen table rows
        same = np.array([k == key[i] for k in key]) & moe & (tokens < tokens[i])
        out[i] = bool(np.isclose(t[same], t[i], rtol=0.0, atol=1e-9).any())
    return out


def _capped_time(
    flops: torch.Tensor,
    rows: torch.Tensor,
    stream: torch.Tensor,
    latency: float,
    peak: float,
    compute: str,
    half_key: str | None = None,
    half: torch.Tensor | None = None,
) -> Callable[[Mapping[str, torch.Tensor]], torch.Tensor]:
    """t(p) = max(F / (P · p[compute] · rows/(rows + h)), stream) + latency, h = p[half_key] or ``half``:
    a kernel's time with its weight stream and fixed time held (the AMD tables' compute fits)."""

    def time(p: Mapping[str, torch.Tensor]) -> torch.Tensor:
        h = p[half_key] if half_key is not None else half
        return torch.maximum(compute_time(flops, peak, p[compute] * saturation(rows, h)), stream) + latency

    return time


def fit_aiter(frame: pd.DataFrame, steps: int = 1500) -> list[AiterFit]:
    """Per AMD GPU and kernel table:

    - the streaming efficiency of its largest measured streams (the best bytes / (t·W) over its
      GEMMs of at most 16 rows and its fused-MoE calls of 32-64 tokens, which touch nearly every
      expert, as :func:`streaming_efficiency` takes the best stream on NVIDIA);
    - the fixed time per GEMM kernel and per fused-MoE call beyond that stream (medians of the
      residuals, clipped at 0; GEMMs of at most 16 rows, calls of at most 16 tokens, as
      :func:`fit_expert_latency`);
    - the compute efficiency at many rows and the rows at half of it, fitted on every GEMM (all M)
      with the stream and the fixed time above held: t = max(F/(c·m/(m + h)·P), B/(η·W)) + λ;
    - the fused-MoE compute efficiency at many tokens per expert, fitted the same way on its calls of
      32 or more tokens (copied tuner entries left out, :func:`aiter_copies`) with the preset's
      ``expert_half_tokens`` and the fixed time per call held; F = 6·h·f per routed pair (one
      parameter: the least squares of log time on a log grid of 1,001 efficiencies, 0.003-1).

    A loop over a handful of (GPU, table) groups."""
    from tensorperf.units import DTYPE_BYTES

    rows = frame[(frame.framework == "aiter") & frame.dtype.isin(list(AITER_TABLES))]
    copies = aiter_copies(rows)
    fits = []
    for (gpu, dtype), g in rows.groupby(["gpu", "dtype"], sort=True):
        hw = presets.hardware_spec(AITER_GPU_PRESET[gpu])
        table = AITER_TABLES[dtype]
        peak = getattr(hw, AITER_PEAK[dtype])
        copied = copies[rows.index.get_indexer(g.index)]
        t = g.measured_time_ms.to_numpy() * 1e-3
        moe = (g.op == "moe_experts").to_numpy()
        nbytes = np.where(
            moe,
            [expert_stream_bytes(s, DTYPE_BYTES[dtype]) if m else 0.0 for s, m in zip(g["shape"], moe)],
            g.bytes_moved.fillna(0).to_numpy() * DTYPE_BYTES[dtype],
        )
        tokens = np.array([float(_shape(s).get("num_tokens", "inf")) for s in g["shape"]])
        m_rows = g.m.fillna(np.inf).to_numpy()
        # the streams whose bytes are certain and that stay weight-bound: GEMMs of few rows, and MoE
        # calls that touch nearly every local expert with a few tokens per expert
        lo, hi = AITER_STREAM_TOKENS
        sure = (~moe & (m_rows <= AITER_STREAM_ROWS)) | (moe & (tokens >= lo) & (tokens <= hi))
        eta = float((nbytes / (t * hw.hbm_bandwidth))[sure].max())
        rest = _beyond_stream(t, nbytes, eta, hw.hbm_bandwidth)
        gemm = ~moe & (m_rows <= AITER_STREAM_ROWS)
        calls = moe & (tokens <= AITER_FEW_TOKENS)
        gemm_latency = float(np.median(rest[gemm])) if gemm.any() else None
        expert_latency = float(np.median(rest[calls]))
        compute = half = None
        compute_rows, compute_error = 0, 0.0
        if (~moe).any():
            sel = ~moe
            flops = torch.tensor(g.flops.to_numpy()[sel], dtype=torch.float64)
            size = torch.tensor(m_rows[sel], dtype=torch.float64)
            stream = torch.tensor(nbytes[sel] / (eta * hw.hbm_bandwidth), dtype=torch.float64)

            gemm_time = _capped_time(flops, size, stream, gemm_latency or 0.0, peak, "compute", "gemm_half_tokens")
            params, pred = _fit(
                gemm_time,
                torch.tensor(t[sel], dtype=torch.float64),
                {"compute": 0.5, "gemm_half_tokens": 128.0},
                {"compute": "eff", "gemm_half_tokens": "tokens"},
                steps,
            )
            compute, half = params["compute"], params["gemm_half_tokens"]
            compute_rows = int(sel.sum())
            compute_error = float(np.median(np.abs(pred.numpy() / t[sel] - 1)))
        sel = moe & (tokens >= lo) & ~copied
        shapes = [_shape(s) for s in g["shape"][sel]]
        pairs = np.array([float(s["num_tokens"]) * float(s["topk"]) / float(s["moe_ep"]) for s in shapes])
        hf = np.array([float(s["hidden"]) * float(s["inter"]) / float(s["moe_tp"]) for s in shapes])
        per_expert = np.array([_tokens_per_expert(s) for s in g["shape"][sel]])
        half_e = torch.tensor(hw.efficiency_for(table).expert_half_tokens, dtype=torch.float64)
        flops = torch.tensor(6 * pairs * hf, dtype=torch.float64)
        size = torch.tensor(per_expert, dtype=torch.float64)
        stream = torch.tensor(nbytes[sel] / (eta * hw.hbm_bandwidth), dtype=torch.float64)

        moe_time = _capped_time(flops, size, stream, expert_latency, peak, "expert_compute", half=half_e)
        # one parameter under a max(): Adam stalls where every row is on the stream side of it, so the
        # least squares of log time is found on a fine log grid of efficiencies instead (all at once)
        grid = torch.logspace(-2.5, 0, 1001, dtype=torch.float64)
        target = torch.log(torch.tensor(t[sel], dtype=torch.float64))
        loss = ((torch.log(moe_time({"expert_compute": grid[:, None]})) - target) ** 2).mean(dim=1)
        best = grid[int(torch.argmin(loss))]
        params, pred = {"expert_compute": float(best)}, moe_time({"expert_compute": best})
        fits.append(
            AiterFit(
                gpu=AITER_GPU_PRESET[gpu],
                table=table,
                memory=eta,
                gemm_latency=gemm_latency,
                expert_latency=expert_latency,
                gemm_rows=int(gemm.sum()),
                moe_rows=int(calls.sum()),
                compute=compute,
                gemm_half_tokens=half,
                expert_compute=params["expert_compute"],
                compute_rows=compute_rows,
                expert_rows=int(sel.sum()),
                compute_error=compute_error,
                expert_error=float(np.median(np.abs(pred.numpy() / t[sel] - 1))),
            )
        )
    return fits
