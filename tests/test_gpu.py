"""device="cuda": the whole evaluation on the GPU equals the CPU's (1e-9 relative in float64, 1e-4 in
float32), streamed reductions on the GPU pick the CPU's winners, and GPU runs are deterministic
across repeats and chunk sizes. Skipped where CUDA is absent."""

import numpy as np
import pytest
import torch

import tensorperf as tp

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

GRID = dict(
    model=["llama-3.1-70b", "mixtral-8x7b", "deepseek-v3"],
    hardware=["h100-sxm", "b200", "mi300x"],
    prompt_len=[1024, 32768],
    batch=[1, 8, 64],
    tp=[1, 2, 4, 8],
    pp=[1, 2, 4],
    ep=[1, 8, 32],
    weight_dtype=["bf16", "fp8"],
    chunk_size=[4096, 65536],
)


@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-9), ("float32", 1e-4)])
def test_gpu_sweep_equals_cpu(dtype, rtol):
    cpu = tp.sweep(**GRID, dtype=dtype)
    gpu = tp.sweep(**GRID, dtype=dtype, device="cuda")
    for name in cpu.data_vars:
        a, b = cpu[name].values, gpu[name].values
        if a.dtype.kind == "f":
            np.testing.assert_allclose(b, a, rtol=rtol, atol=0, equal_nan=True, err_msg=name)
        else:
            np.testing.assert_array_equal(b, a, err_msg=name)


def test_gpu_is_deterministic_across_runs_and_chunk_sizes():
    where = {"tokens_per_s_per_user": (">=", 20)}
    runs = [
        tp.best("tokens_per_s_per_gpu", where=where, keep=["hardware"], device="cuda", chunk_points=c, **GRID)
        for c in (None, 1000, 1000, 37)
    ]
    for other in runs[1:]:
        for v in runs[0].data_vars:
            np.testing.assert_array_equal(other[v].values, runs[0][v].values, err_msg=v)
    cpu = tp.best("tokens_per_s_per_gpu", where=where, keep=["hardware"], **GRID)
    for dim in ("best_tp", "best_pp", "best_ep", "best_batch"):
        np.testing.assert_array_equal(runs[0][dim].values, cpu[dim].values, err_msg=dim)
    np.testing.assert_allclose(runs[0].tokens_per_s_per_gpu.values, cpu.tokens_per_s_per_gpu.values, rtol=1e-9)


def test_gpu_pareto_matches_cpu():
    cpu = tp.pareto(**GRID).to_dataframe()
    gpu = tp.pareto(device="cuda", **GRID).to_dataframe()
    assert len(gpu) == len(cpu)
    np.testing.assert_allclose(gpu.tokens_per_s_per_gpu.values, cpu.tokens_per_s_per_gpu.values, rtol=1e-9)


SERVING_GRID = dict(
    model=["llama-3.1-70b", "deepseek-v3"],
    hardware=["h100-sxm", "b200"],
    prompt_len=[1000, 8000],
    output_len=[100, 1000],
    batch=[16, 256],
    tp=[4, 8],
    ep=[1, 8],
    weight_dtype="fp8",
    request_rate=[0.5, 4.0, 1e3],
    isl_range_ratio=[0.8, 1.0],
    osl_range_ratio=0.8,
)


@pytest.mark.parametrize("extra", [dict(), dict(num_requests=[100, 5000])])
def test_gpu_serving_under_load_equals_cpu(extra):
    # the serving pass (closed loops at 1 and at the cap, the open loop's queue, waves, quadrature)
    grid = dict(SERVING_GRID, **extra)
    if extra:
        grid.pop("request_rate")
    cpu = tp.sweep(**grid, breakdown=False)
    gpu = tp.sweep(**grid, breakdown=False, device="cuda")
    assert bool(cpu.feasible.any())
    for name in [v for v in cpu.data_vars if v.startswith("serving_")] + ["infeasible_reason"]:
        a, b = cpu[name].values, gpu[name].values
        if a.dtype.kind == "f":
            np.testing.assert_allclose(b, a, rtol=1e-9, atol=0, equal_nan=True, err_msg=name)
        else:
            np.testing.assert_array_equal(b, a, err_msg=name)
