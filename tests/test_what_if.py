"""What-if axes: any numeric model or hardware field as a swept dimension (absolute or scaled)."""

import numpy as np
import pytest

import tensorperf as tp

H100 = tp.presets.hardware_spec("h100-sxm")
L8 = tp.presets.model("llama-3.1-8b")


def test_override_axis_equals_hand_built_specs():
    bws = [3.35e12, 4.8e12, 8e12]
    kvs = [1, 4, 8]
    ds = tp.sweep(
        hardware="h100-sxm", hbm_bandwidth=bws, model="llama-3.1-8b", num_kv_heads=kvs, tp=2, batch=16, prompt_len=8192
    )
    assert ds.tpot.dims == ("hbm_bandwidth", "num_kv_heads")
    for bw in bws:
        for kv in kvs:
            hand = tp.sweep(
                hardware=H100.replace(hbm_bandwidth=bw),
                model=L8.replace(num_kv_heads=kv),
                tp=2,
                batch=16,
                prompt_len=8192,
            )
            for name in ("ttft", "tpot", "memory_per_gpu", "max_batch"):
                assert float(ds[name].sel(hbm_bandwidth=bw, num_kv_heads=kv)) == float(hand[name]), name


def test_scale_one_equals_the_preset_bit_for_bit():
    base = tp.sweep(hardware=["h100-sxm", "b200"], model="mixtral-8x7b", tp=[2, 8], batch=[1, 64])
    scaled = tp.sweep(
        hardware=["h100-sxm", "b200"],
        model="mixtral-8x7b",
        tp=[2, 8],
        batch=[1, 64],
        hbm_bandwidth_scale=1.0,
        num_layers_scale=1.0,
    )
    for name in base.data_vars:
        np.testing.assert_array_equal(base[name].values, scaled[name].values, err_msg=name)


def test_scale_multiplies_each_presets_own_value():
    ds = tp.sweep(hardware=["h100-sxm", "b200"], hbm_bandwidth_scale=[1.0, 1.3], model="llama-3.1-8b", batch=8)
    for hw in ("h100-sxm", "b200"):
        spec = tp.presets.hardware_spec(hw)
        hand = tp.sweep(hardware=spec.replace(hbm_bandwidth=spec.hbm_bandwidth * 1.3), model="llama-3.1-8b", batch=8)
        assert float(ds.tpot.sel(hardware=hw, hbm_bandwidth_scale=1.3)) == pytest.approx(float(hand.tpot), rel=1e-15)


def test_inconsistent_override_is_masked_with_a_reason():
    ds = tp.sweep(model="llama-3.1-8b", hardware="h100-sxm", num_kv_heads=[8, 5])
    assert int(ds.infeasible_reason.sel(num_kv_heads=5)) & int(tp.Reason.INCONSISTENT)
    assert int(ds.infeasible_reason.sel(num_kv_heads=8)) == 0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(hbm_bandwidth=[-1.0]), r"HardwareSpec.hbm_bandwidth = -1.0 is not allowed"),
        (dict(num_layers=[0]), r"ModelSpec.num_layers = 0 is not allowed"),
        (dict(num_layers=[2.5]), r"ModelSpec.num_layers = 2.5 is not allowed"),
        (dict(hbm_bandwidth_scale=[0]), r"hbm_bandwidth_scale = 0 is not allowed"),
        (dict(hbm_bandwith=[1e12]), r"unknown sweep input 'hbm_bandwith'.*hbm_bandwidth"),
    ],
)
def test_bad_what_if_values(kwargs, match):
    with pytest.raises(tp.SpecError, match=match):
        tp.sweep(model="llama-3.1-8b", hardware="h100-sxm", **kwargs)


def test_seed_convention_rejects_hardware_what_if():
    with pytest.raises(tp.SpecError, match="what-if hardware inputs"):
        tp.sweep(model="gpt-moe-1.8t", hardware="mi300-seed", convention="seed", hbm_bandwidth_scale=[1, 2])
