"""Extreme but valid inputs stay finite; identical inputs give bitwise-identical outputs."""

import numpy as np
import pytest
import torch

import tensorperf as tp

# 1M-token contexts, 10,000 GPUs (tp·pp·dp), a 2T-parameter model (the 1.8T MoE with 10% more layers
# and width), batches of 1e5
EXTREME = dict(
    model=["gpt-moe-1.8t", "deepseek-v3", "llama-3.1-405b"],
    hardware=["b200", "gb200"],
    prompt_len=[1, 1_000_000],
    output_len=[1, 100_000],
    batch=[1, 100_000],
    tp=[1, 8],
    pp=[1, 125],
    dp=[1, 10],
    ep=[1, 8],
    num_layers_scale=[1.0, 1.1],
)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_extreme_inputs_are_finite(dtype):
    ds = tp.sweep(**EXTREME, dtype=dtype)
    assert int(ds.num_gpus.max()) == 8 * 125 * 10  # 10,000 GPUs
    ok = ds.feasible.values
    assert ok.any()
    for name in (
        "ttft",
        "tpot",
        "e2e_latency",
        "tokens_per_s_per_gpu",
        "serving_tokens_per_s_per_gpu",
        "memory_per_gpu",
    ):
        values = ds[name].values[ok]
        assert np.isfinite(values).all() and (values > 0).all(), name
    for name in ("memory_per_gpu", "max_batch", "min_gpus_for_capacity", "num_gpus"):  # never masked
        assert np.isfinite(ds[name].values).all(), name


def test_same_inputs_give_bitwise_identical_outputs():
    kw = dict(
        model=["llama-3.1-70b", "deepseek-v3"],
        hardware=["h100-sxm", "b200"],
        batch=[1, 64],
        tp=[1, 8],
        prompt_len=[1024, 8192],
        chunk_size=[512, 8192],
        cp=[1, 2],
    )
    a, b = tp.sweep(**kw), tp.sweep(**kw)
    for name in a.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


def test_counts_above_2_pow_24_never_round_through_float32():
    """2^24 + 1 = 16,777,217 = 97 · 172,961 is not a float32. Batch, layout degrees, GPU counts and the
    divisibility decisions are exact float64 counts whatever the grid dtype, so a float32 sweep
    reports the same counts and the same infeasibility bits as a float64 one."""
    big = 2**24 + 1
    kw = dict(model="llama-3.1-8b", hardware="h100-sxm", batch=[big, big - 1], dp=[97, 1], world_size=97)
    f64, f32 = tp.sweep(**kw, dtype="float64"), tp.sweep(**kw, dtype="float32")
    for name in ("concurrency", "num_gpus", "infeasible_reason", "max_batch", "min_gpus_for_capacity"):
        np.testing.assert_array_equal(f32[name].values, f64[name].values, err_msg=name)
        assert f32[name].dtype in (np.float64, np.int64), name
    from tensorperf.engine import roofline
    from tensorperf.run.inputs import build_grid

    ev = roofline.evaluate(build_grid(**kw, dtype="float32"), breakdown=False)  # unmasked values
    assert ev.values["concurrency"].dtype == torch.float64
    assert ev.values["concurrency"].reshape(-1)[0].item() == big  # float32(big) would be 2^24
    # big/97 divides, so only memory/world size may fail, never the batch split
    assert not int(f32.infeasible_reason.sel(batch=big, dp=97)) & int(tp.Reason.BATCH)
    assert int(f32.infeasible_reason.sel(batch=big - 1, dp=97)) & int(tp.Reason.BATCH)
    assert (f32.num_gpus.sel(dp=97).values == 97).all()
