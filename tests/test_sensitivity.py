"""Per-point sensitivities (autograd) against central finite differences; no NaN anywhere."""

import numpy as np
import pytest

import tensorperf as tp
from tensorperf.interface.api import sensitivity

AXES = dict(
    model=["llama-3.1-70b", "mixtral-8x7b", "deepseek-v3"],
    hardware=["h100-sxm", "b200"],
    weight_dtype="fp8",
    tp=[1, 8],
    batch=[1, 64],
    prompt_len=2048,
    output_len=256,
)
H = 1e-6


def _fd_efficiency(of, eff, name):
    base = eff[name]
    up = tp.sweep(**AXES, efficiency=eff | {name: base * (1 + H)})[of]
    down = tp.sweep(**AXES, efficiency=eff | {name: base * (1 - H)})[of]
    return (up - down) / (2 * H * base)


@pytest.mark.parametrize("of", ["tpot", "ttft", "tokens_per_s_per_gpu", "serving_tokens_per_s_per_gpu"])
def test_efficiency_gradients_match_finite_differences(of):
    eff = {"memory": 0.7, "compute": 0.6}
    s = sensitivity(of=of, wrt=["memory", "compute"], efficiency=eff, **AXES)
    ok = s.feasible.values
    for name in eff:
        fd = _fd_efficiency(of, eff, name).values
        g = s.gradient.sel(param=name).values
        np.testing.assert_allclose(g[ok], fd[ok], rtol=1e-4, atol=1e-9 * np.abs(s.value.values[ok]).max())


def test_hardware_field_gradient_matches_scaled_sweeps():
    s = sensitivity(of="tpot", wrt=["hbm_bandwidth", "scaleup_bandwidth"], **AXES)
    for name in ("hbm_bandwidth", "scaleup_bandwidth"):
        ds = tp.sweep(**AXES, **{f"{name}_scale": [1 - H, 1 + H]})
        x = xr_field(name)
        fd = (ds.tpot.sel({f"{name}_scale": 1 + H}) - ds.tpot.sel({f"{name}_scale": 1 - H})) / (2 * H * x)
        ok = s.feasible.values
        np.testing.assert_allclose(s.gradient.sel(param=name).values[ok], fd.values[ok], rtol=1e-4, atol=1e-12)


def xr_field(name):
    import xarray as xr

    hws = AXES["hardware"]
    vals = [getattr(tp.presets.hardware_spec(h), name) for h in hws]
    return xr.DataArray(vals, dims=["hardware"], coords={"hardware": hws})


def test_elasticity_of_a_memory_bound_time_is_minus_one():
    # batch-1 decode of a dense model on one GPU is memory-bound everywhere (no comm):
    # t = Σ bytes_i / (eta_i · W) + L (L: the GEMM kernels' fixed time, n · gemm_latency), so the
    # HBM-bandwidth elasticity is −(1 − L/t) and the two memory efficiencies' elasticities (GEMM
    # weight streams, other streams) add up to the same; gemm_latency's elasticity is L/t
    s = sensitivity(
        of="tpot",
        wrt=["memory", "gemm_memory", "hbm_bandwidth", "compute", "gemm_latency"],
        model="llama-3.1-8b",
        hardware="h100-sxm",
        batch=1,
        prompt_len=128,
        output_len=2,
    )
    e = s.elasticity
    fixed = float(e.sel(param="gemm_latency"))
    assert 0 < fixed < 0.05  # 32 layers x 4 GEMM kernels + the LM head at 0.81 us each, of a ~6 ms step
    assert float(e.sel(param="memory") + e.sel(param="gemm_memory")) == pytest.approx(fixed - 1.0, abs=1e-12)
    assert float(e.sel(param="gemm_memory")) < -0.93  # the weights dominate
    assert float(e.sel(param="hbm_bandwidth")) == pytest.approx(fixed - 1.0, abs=1e-12)
    assert float(e.sel(param="compute")) == 0.0
    # and the inverse for throughput
    s = sensitivity(
        of="tokens_per_s_per_user",
        wrt=["hbm_bandwidth"],
        model="llama-3.1-8b",
        hardware="h100-sxm",
        batch=1,
        prompt_len=128,
        output_len=2,
    )
    assert float(s.elasticity.sel(param="hbm_bandwidth")) == pytest.approx(1.0 - fixed, abs=1e-12)


def test_no_nan_anywhere_infeasible_points_included():
    s = sensitivity(
        of="tpot",
        wrt=[
            "memory",
            "compute",
            "attention",
            "scaleup",
            "scaleout",
            "overlap",
            "comm_overlap",
            "hbm_capacity",
            "peak_flops_fp8",
            "num_kv_heads",
        ],
        model=["llama-3.1-70b", "deepseek-v3", "gpt-oss-120b"],
        hardware=["a100-sxm-80g", "b200"],
        weight_dtype=["fp8", "fp4"],
        tp=[1, 3, 8],
        batch=[1, 7, 64],
        dp=[1, 2],
    )
    assert not bool(s.feasible.all()) and bool(s.feasible.any())
    assert np.isfinite(s.gradient.values).all() and np.isfinite(s.elasticity.values).all()
    assert s.gradient.dims[-1] == "param"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(of="tpott", wrt=["memory"]), r"unknown metric \(of\) 'tpott'"),
        (dict(of="tpot", wrt=["memroy"]), r"unknown parameter in wrt 'memroy'"),
        (dict(of="tpot", wrt="memory"), r"wrt = 'memory' is not allowed"),
        (dict(of="tpot", wrt=["memory"], convention="seed"), r"convention='roofline'"),
        (dict(of="tpot", wrt=["memory"], efficiency={"memory": 0}), r"Efficiency.memory = 0 is not allowed"),
    ],
)
def test_bad_sensitivity_input(kwargs, match):
    with pytest.raises(tp.SpecError, match=match):
        sensitivity(model="llama-3.1-8b", hardware="h100-sxm", **kwargs)
