"""batch='max' and the steady-state continuous-batching (serving) metrics."""

import numpy as np
import pytest

import tensorperf as tp

KW = dict(
    model="llama-3.3-70b",
    hardware=["h100-sxm", "b200"],
    weight_dtype="fp8",
    tp=[2, 4, 8],
    prompt_len=[128, 2048],
    output_len=[128, 2048],
)


def test_batch_max_is_each_points_max_batch():
    ds = tp.sweep(**KW, batch="max")
    ok = ds.feasible
    assert bool(ok.any())
    np.testing.assert_array_equal(ds.concurrency.where(ok).values, ds.max_batch.where(ok).values)
    # one step more would not fit: the fixed-batch sweep at max_batch + 1 overflows memory
    point = dict(hardware="h100-sxm", tp=8, prompt_len=2048, output_len=2048)
    b = int(ds.max_batch.sel(point))
    fixed = tp.sweep(**{**KW, **{k: v for k, v in point.items()}}, batch=[b, b + 1])
    assert fixed.feasible.values.tolist() == [True, False]


def test_max_num_seqs_caps_the_batch():
    ds = tp.sweep(**KW, batch="max", max_num_seqs=[64, 100000], dp=2)
    small = ds.concurrency.sel(max_num_seqs=64)
    assert float(small.max()) == 64 and bool((small % 2 == 0).all())
    assert bool((ds.concurrency.sel(max_num_seqs=100000) >= small).all())


def test_serving_step_between_decode_step_and_decode_plus_prefill():
    # a serving step carries the decode tokens of the requests in flight plus the others' prompt
    # chunks: at least a decode step at the same batch (same mean context), far less than a whole
    # prefill of the batch; a request's life is its TTFT steps plus T_out − 1 decode steps
    ds = tp.sweep(model="llama-3.1-8b", hardware="h100-sxm", prompt_len=1024, output_len=[2, 1024], batch=[1, 32], tp=1)
    assert bool((ds.serving_tpot >= ds.tpot * (1 - 1e-12)).all())
    assert bool((ds.serving_step_time.sel(output_len=1024) < ds.ttft_max.sel(output_len=1024)).all())
    np.testing.assert_allclose(
        ds.serving_tokens_per_s_per_gpu.values,
        (ds.concurrency * ds.output_len / ds.serving_e2e_latency / ds.num_gpus).values,
        rtol=1e-12,
    )


def test_seed_convention_rejects_batch_max():
    with pytest.raises(tp.SpecError, match="batch='max'"):
        tp.sweep(model="gpt-moe-1.8t", hardware="mi300-seed", convention="seed", batch="max")


def test_batch_string_other_than_max_is_an_error():
    with pytest.raises(tp.SpecError, match=r"batch = 'all' is not allowed"):
        tp.sweep(model="llama-3.1-8b", hardware="h100-sxm", batch="all")
