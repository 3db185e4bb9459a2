"""The grid engine: one broadcast pass equals point-by-point evaluation; dims, coords and masks."""

import numpy as np
import pytest
import torch

import tensorperf as tp

ROOFLINE_AXES = dict(
    model=["llama-3.1-8b", "mixtral-8x7b", "deepseek-v3"],
    hardware=["h100-sxm", "b200", "mi300x"],
    weight_dtype=["bf16", "fp8"],
    prompt_len=[128, 4096],
    output_len=[2, 512],
    batch=[1, 8, 64],
    tp=[1, 2, 8],
    pp=[1, 3],
    dp=[1, 2],
    ep=[1, 2, 8],
)
SEED_AXES = dict(
    model="gpt-moe-1.8t",
    hardware="mi300-seed",
    convention="seed",
    prompt_len=[1000, 16384],
    batch=[1, 16],
    tp=[1, 4, 16],
    pp=[1, 2, 8],
    dp=[1, 2, 32],
    ep=[1, 16],
)


def _points(axes, n, seed):
    rng = np.random.default_rng(seed)
    dims = [k for k, v in axes.items() if isinstance(v, list)]
    for _ in range(n):
        yield {d: axes[d][rng.integers(len(axes[d]))] for d in dims}


@pytest.mark.parametrize("axes", [ROOFLINE_AXES, SEED_AXES], ids=["roofline", "seed"])
def test_grid_equals_pointwise(axes):
    ds = tp.sweep(**axes)
    assert ds.ttft.dims == tuple(k for k, v in axes.items() if isinstance(v, list))
    for point in _points(axes, 24, seed=0):
        one = tp.sweep(**{**axes, **point})  # every input a scalar: a one-point grid
        whole = ds.sel(point)
        for name in one.data_vars:
            a, b = whole[name].values, one[name].values
            assert a.shape == b.shape, name
            np.testing.assert_array_equal(a, b, err_msg=f"{name} at {point}")


def test_float32_close_to_float64():
    d64 = tp.sweep(**ROOFLINE_AXES)
    d32 = tp.sweep(**ROOFLINE_AXES, dtype="float32")
    assert d32.ttft.dtype == np.float32
    np.testing.assert_array_equal(d32.feasible.values, d64.feasible.values)
    for name in ("ttft", "tpot", "e2e_latency", "tokens_per_s_per_gpu", "memory_per_gpu"):
        np.testing.assert_allclose(d32[name].values, d64[name].values, rtol=1e-5, err_msg=name)


def test_scalars_are_scalar_coords_and_lists_are_dims():
    ds = tp.sweep(model="llama-3.1-8b", hardware="h100-sxm", batch=[1, 4], prompt_len=512)
    assert ds.ttft.dims == ("batch",)
    assert ds.coords["prompt_len"].ndim == 0 and int(ds.prompt_len) == 512
    assert ds.coords["model"].item() == "llama-3.1-8b"
    assert list(ds.batch.values) == [1, 4]
    assert ds.ttft.attrs == {"units": "s", "long_name": "time to first token (mean over the batch)"}
    assert ds.prefill_op_time.dims == ("batch", "op")
    # a size-1 list is a dimension of length 1, with the same numbers as the scalar
    one = tp.sweep(model=["llama-3.1-8b"], hardware="h100-sxm", batch=[1, 4], prompt_len=[512])
    assert one.ttft.dims == ("model", "prompt_len", "batch")
    np.testing.assert_array_equal(one.ttft.values[0, 0], ds.ttft.values)


def test_specs_and_presets_mix_on_one_axis():
    custom = tp.presets.model("llama-3.1-8b").replace(name="llama-8b-4kv", num_kv_heads=4)
    ds = tp.sweep(model=["llama-3.1-8b", custom], hardware="h100-sxm", prompt_len=8192, batch=32)
    kv = ds.kv_cache_memory_per_gpu
    assert float(kv.sel(model="llama-8b-4kv")) * 2 == float(kv.sel(model="llama-3.1-8b"))


def test_infeasible_points_are_masked_with_reasons():
    ds = tp.sweep(model="llama-3.1-70b", hardware="h100-sxm", tp=[1, 3, 8], batch=[3, 4], dp=2)
    # tp = 1: 141 GB of weights on one 85.5 GB GPU; tp = 3: 64 heads do not split over 3
    assert int(ds.infeasible_reason.sel(tp=1, batch=4)) & int(tp.Reason.MEMORY)
    assert int(ds.infeasible_reason.sel(tp=3, batch=4)) & int(tp.Reason.DIVISIBILITY)
    assert int(ds.infeasible_reason.sel(tp=8, batch=3)) == int(tp.Reason.BATCH)  # 3 requests on 2 replicas
    assert int(ds.infeasible_reason.sel(tp=8, batch=4)) == 0
    assert bool(ds.ttft.sel(tp=1).isnull().all()) and not bool(ds.ttft.sel(tp=8, batch=4).isnull())
    assert (ds.feasible == (ds.infeasible_reason == 0)).all()
    assert tp.describe(int(ds.infeasible_reason.sel(tp=3, batch=3))) == "divisibility, batch"
    # memory stays reported where it does not fit, so a user can see by how much
    assert float(ds.memory_per_gpu.sel(tp=1, batch=4)) > float(ds.memory_capacity_per_gpu.sel(tp=1, batch=4))


def test_unsupported_dtype_is_masked_not_raised():
    ds = tp.sweep(
        model="llama-3.1-8b", hardware=["a100-sxm-80g", "h100-sxm", "b200"], weight_dtype=["bf16", "fp8", "fp4"]
    )
    dtype_bit = (ds.infeasible_reason & int(tp.Reason.DTYPE)) > 0
    assert dtype_bit.sel(weight_dtype="bf16").values.tolist() == [False, False, False]
    assert dtype_bit.sel(weight_dtype="fp8").values.tolist() == [True, False, False]
    assert dtype_bit.sel(weight_dtype="fp4").values.tolist() == [True, True, False]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(model="llama-3.1-8bb"), r"unknown model preset 'llama-3.1-8bb'.*llama-3.1-8b.*Available:"),
        (dict(hardware="h100"), r"unknown hardware preset 'h100'.*h100-sxm.*Available:"),
        (dict(batch=0), r"batch = 0 is not allowed: must be an integer >= 1"),
        (dict(prompt_len=[128, -5]), r"prompt_len = -5 is not allowed"),
        (dict(tp=2.5), r"tp = 2.5 is not allowed"),
        (dict(tp=True), r"tp = True is not allowed"),
        (dict(output_len=[]), r"output_len is an empty list"),
        (dict(batch=[1, 1]), r"batch lists 1 twice"),
        (
            dict(weight_dtype="fp6"),
            r"unknown weight_dtype 'fp6'.*Available: bf16, fp16, fp32, fp4, fp8, fp8_block, int4, int8, mxfp4, nvfp4",
        ),
        (dict(convention="exact"), r"unknown convention 'exact'"),
        (dict(efficiency={"memroy": 0.5}), r"unknown efficiency factor 'memroy'.*memory"),
        (dict(efficiency={"memory": 1.5}), r"Efficiency.memory = 1.5 is not allowed: must be a number in \(0, 1\]"),
        (dict(dtype="float16"), r"unknown dtype 'float16'"),
        (dict(model=42), r"model must be a preset id"),
    ],
)
def test_bad_input_names_field_and_value(kwargs, match):
    args = dict(model="llama-3.1-8b", hardware="h100-sxm") | kwargs
    with pytest.raises(tp.SpecError, match=match):
        tp.sweep(**args)


def test_bad_spec_names_class_field_value_rule():
    with pytest.raises(tp.SpecError, match=r"ModelSpec.num_layers = 0 is not allowed: must be an integer >= 1"):
        tp.presets.model("llama-3.1-8b").replace(num_layers=0)
    with pytest.raises(tp.SpecError, match=r"ModelSpec.num_kv_heads = 5 .*divides num_heads"):
        tp.presets.model("llama-3.1-8b").replace(num_kv_heads=5)
    with pytest.raises(tp.SpecError, match=r"HardwareSpec.hbm_bandwidth = -1.0 .*> 0"):
        tp.presets.hardware_spec("h100-sxm").replace(hbm_bandwidth=-1.0)


def test_device_and_dtype_recorded():
    ds = tp.sweep(model="llama-3.1-8b", hardware="h100-sxm", dtype=torch.float32)
    assert ds.attrs["dtype"] == "float32" and ds.attrs["convention"] == "roofline"


def test_zipped_inputs_form_a_list_of_points():
    ds = tp.sweep(
        model=["llama-3.1-8b", "mixtral-8x7b", "llama-3.1-8b"],
        hardware=["h100-sxm", "b200", "b200"],
        tp=[1, 2, 4],
        batch=[1, 8],
        zipped=["model", "hardware", "tp"],
    )
    assert ds.ttft.dims == ("point", "batch")
    assert ds.model.dims == ("point",) and list(ds.tp.values) == [1, 2, 4]
    for i in range(3):  # each point equals its own Cartesian sweep
        one = tp.sweep(
            model=str(ds.model.values[i]), hardware=str(ds.hardware.values[i]), tp=int(ds.tp.values[i]), batch=[1, 8]
        )
        np.testing.assert_array_equal(one.ttft.values, ds.ttft.isel(point=i).values)


@pytest.mark.parametrize(
    "zipped, match",
    [
        (["model", "tp"], r"zipped inputs must have one length"),
        (["model", "pp"], r"zipped input 'pp' must be a list"),
        (["model", "tpp"], r"unknown input in zipped 'tpp'"),
        ("model", r"zipped = 'model' is not allowed"),
    ],
)
def test_bad_zipped(zipped, match):
    with pytest.raises(tp.SpecError, match=match):
        tp.sweep(model=["llama-3.1-8b", "mixtral-8x7b"], hardware="h100-sxm", tp=[1, 2, 4], zipped=zipped)
