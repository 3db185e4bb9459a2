"""Fit the serving stacks' peer-memory all-reduce kernels per GPU (docs/model.md §10.4) to the
``custom_allreduce`` rows of data/kernel_measurements.csv.

Those rows time TensorRT-LLM's ``AllReduce`` with ``strategy=AUTO`` (aiconfigurator
collector/collect_all_reduce.py, TRT-LLM 1.3.0rc20, 2/4/8 GPUs, 1 MiB, 16 MiB and 256 MiB of bf16, in
CUDA graphs): the runtime picks the one-shot kernel, the two-shot kernel or NCCL from a tuned table
(cpp/tensorrt_llm/common/customAllReduceUtils.h, selectStrategyLookUpTable). The model of a row is the
faster of the two kernels (physics.comm):

    one-shot  t = α_os + (n−1)·S/(η·W)
    two-shot  t = 2·α_ts + 2(n−1)/n·S/(η·W)

with W the preset's scale-up bandwidth per GPU per direction; α_os, α_ts and η are fitted per GPU
on log time, by a deterministic grid search refined around its best point (the faster-of-two is not
smooth, and three parameters on a handful of rows need no optimizer). Rows whose message exceeds the
kernels' IPC workspace (TensorRT-LLM getMaxRequiredWorkspaceSize: 64 MiB in 1.x; vLLM's max_size
8 MiB) cannot run them: the runtime runs NCCL there, and they are left out (the 256 MiB rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from tensorperf.analysis.kernel_fit import GPU_PRESET, load_kernels
from tensorperf.catalog import presets
from tensorperf.engine.physics.comm import one_shot_all_reduce, two_shot_all_reduce
from tensorperf.validation import SpecError

OP = "custom_allreduce"
WORKSPACE_BYTES = 64 * 2**20  # TensorRT-LLM 1.x custom all-reduce IPC workspace: larger messages run NCCL
# search box: latencies (s, log-spaced) and efficiency (fraction of the scale-up bandwidth)
LATENCY_RANGE = (1e-7, 1e-4)
EFFICIENCY_RANGE = (0.01, 1.0)
POINTS = 61  # per parameter and round
ROUNDS = 5  # each round zooms to +- 2 steps of the last one around its best point


@dataclass(frozen=True)
class CustomAllReduceFit:
    """Fitted kernel parameters of one GPU and how well they reproduce its rows."""

    gpu: str  # hardware preset id
    latency: float  # s: one-shot alpha (HardwareSpec.custom_allreduce_latency)
    twoshot_latency: float  # s: two-shot alpha per phase (custom_allreduce_twoshot_latency)
    efficiency: float  # fraction of scaleup_bandwidth (custom_allreduce_efficiency)
    rows: int
    median_abs_error: float  # |predicted/measured − 1| over the fitted rows
    max_abs_error: float


def predict(
    nbytes: np.ndarray, n: np.ndarray, bandwidth: float, latency: float, twoshot_latency: float, efficiency: float
) -> np.ndarray:
    """Seconds of the faster of one-shot and two-shot for messages of ``nbytes`` over ``n`` GPUs."""
    S, k = (torch.tensor(np.asarray(v, dtype=np.float64)) for v in (nbytes, n))
    bw = bandwidth * efficiency
    t = torch.minimum(one_shot_all_reduce(S, k, bw, latency), two_shot_all_reduce(S, k, bw, twoshot_latency))
    return t.numpy()


def custom_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows the kernels can run: op custom_allreduce, 2+ GPUs, messages within the workspace."""
    rows = frame[(frame.op == OP) & (frame.num_gpus > 1) & (frame.message_bytes <= WORKSPACE_BYTES)]
    return rows.reset_index(drop=True)


def _search(S: np.ndarray, n: np.ndarray, t: np.ndarray, W: float) -> tuple[float, float, float]:
    """Least squares on log time over (α_os, α_ts, η): a grid, then grids zoomed around the best."""
    lo = np.log([LATENCY_RANGE[0], LATENCY_RANGE[0], EFFICIENCY_RANGE[0]])
    hi = np.log([LATENCY_RANGE[1], LATENCY_RANGE[1], EFFICIENCY_RANGE[1]])
    best = (lo + hi) / 2
    for _ in range(ROUNDS):  # zoom rounds, not grid points
        axes = [np.exp(np.linspace(a, b, POINTS)) for a, b in zip(lo, hi)]
        a_os, a_ts, eta = np.meshgrid(*axes, indexing="ij")
        bw = (eta * W)[..., None]
        one = a_os[..., None] + (n - 1) * S / bw
        two = 2 * a_ts[..., None] + 2 * (n - 1) / n * S / bw
        loss = ((np.log(np.minimum(one, two)) - np.log(t)) ** 2).mean(axis=-1)
        i = np.unravel_index(int(loss.argmin()), loss.shape)
        best = np.log([a_os[i], a_ts[i], eta[i]])
        step = (hi - lo) / (POINTS - 1)
        lo, hi = best - 2 * step, np.minimum(best + 2 * step, np.log([np.inf, np.inf, EFFICIENCY_RANGE[1]]))
    a_os, a_ts, eta = np.exp(best)
    return float(a_os), float(a_ts), float(eta)


def fit_custom_allreduce(frame: pd.DataFrame) -> list[CustomAllReduceFit]:
    """One fit per GPU with custom_allreduce rows (a loop over a handful of GPUs)."""
    rows = custom_rows(frame)
    if rows.empty:
        raise SpecError(f"no {OP!r} rows with 2+ GPUs and at most {WORKSPACE_BYTES} bytes to fit")
    fits = []
    for gpu, group in rows.groupby("gpu", sort=True):
        preset = GPU_PRESET[gpu]
        W = presets.hardware_spec(preset).scaleup_bandwidth
        S, n = group.message_bytes.to_numpy(float), group.num_gpus.to_numpy(float)
        t = group.measured_time_ms.to_numpy(float) * 1e-3
        a_os, a_ts, eta = _search(S, n, t, W)
        err = np.abs(predict(S, n, W, a_os, a_ts, eta) / t - 1)
        fits.append(
            CustomAllReduceFit(
                gpu=preset,
                latency=a_os,
                twoshot_latency=a_ts,
                efficiency=eta,
                rows=len(group),
                median_abs_error=float(np.median(err)),
                max_abs_error=float(err.max()),
            )
        )
    return fits


def fit_file(path: str | Path) -> list[CustomAllReduceFit]:
    """:func:`fit_custom_allreduce` on a kernel measurements CSV (kernel_fit.load_kernels checks it)."""
    return fit_custom_allreduce(load_kernels(path))
