"""Power, energy and cost per token (docs/model.md §9): hand-derived values, exact scalings and
bounds that hold at every point."""

import math

import numpy as np
import pytest
import torch
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorperf as tp

H100 = tp.presets.hardware_spec("h100-sxm")


def one(**kw):
    base = dict(model="llama-3.1-8b", hardware="h100-sxm", prompt_len=1024, output_len=256, batch=8)
    return tp.sweep(**(base | kw))


def test_power_of_one_configuration_from_its_utilizations():
    ds = one()
    # busy shares at the achievable rates: decode from the reported mfu and mbu (per GPU, over a TPOT)
    # over the compute and memory efficiencies; prefill from its FLOP and bytes per GPU (tp = pp = 1:
    # one GPU, one microbatch) over the time to the last first token
    h, eff = H100, H100.efficiency_for("bf16")
    busy = min(1.0, float(ds.mfu) / eff.compute + h.hbm_power_fraction * float(ds.mbu) / eff.memory)
    decode = h.idle_power + (h.board_power - h.idle_power) * busy
    pre_c = float(ds.prefill_op_flops.sum()) / (h.peak_flops_bf16 * eff.compute * float(ds.ttft_max))
    pre_m = float(ds.prefill_op_bytes.sum()) / (h.hbm_bandwidth * eff.memory * float(ds.ttft_max))
    prefill = h.idle_power + (h.board_power - h.idle_power) * min(1.0, pre_c + h.hbm_power_fraction * pre_m)
    generation = 255 * float(ds.tpot)  # the 255 decode steps after the first token
    mean = (prefill * float(ds.ttft_max) + decode * generation) / (float(ds.ttft_max) + generation)
    assert float(ds.power_per_gpu) == pytest.approx(mean, rel=1e-9)
    # compute-bound prefill keeps the tensor cores busy most of its time and draws near board power;
    # memory-bound decode draws far less
    assert pre_c > 0.8 and prefill > 0.85 * h.board_power and decode < 0.6 * h.board_power
    # energy per output token: W per GPU over output tokens/s per GPU
    assert float(ds.energy_per_output_token) == pytest.approx(mean / float(ds.tokens_per_s_per_gpu), rel=1e-9)
    # all-in: (GPU + host share) · PUE per GPU; tokens/s per MW = tokens/s per GPU / all-in W · 1e6
    all_in = (mean + h.host_power_per_gpu) * h.pue
    assert float(ds.tokens_per_s_per_mw) == pytest.approx(float(ds.tokens_per_s_per_gpu) / all_in * 1e6, rel=1e-9)


def test_cost_of_one_configuration_by_hand():
    ds = one(price_per_gpu_hour=3.6)  # $3.60 per GPU-hour = $0.001 per GPU-second
    tps = float(ds.tokens_per_s_per_gpu)
    # a million output tokens take 1e6 / tps GPU-seconds at $0.001 each
    assert float(ds.cost_per_million_output_tokens) == pytest.approx(1e6 / tps * 1e-3, rel=1e-12)
    # a million prompt tokens take 1e6 / (prefill tokens/s per GPU) GPU-seconds
    assert float(ds.cost_per_million_input_tokens) == pytest.approx(
        1e6 / float(ds.prefill_tokens_per_s_per_gpu) * 1e-3, rel=1e-12
    )
    serving = float(ds.serving_tokens_per_s_per_gpu)
    assert float(ds.serving_cost_per_million_output_tokens) == pytest.approx(1e6 / serving * 1e-3, rel=1e-12)


def test_halving_the_price_halves_the_cost_exactly():
    ds = one(price_per_gpu_hour_scale=[1.0, 0.5], breakdown=False)
    for name in (
        "cost_per_million_output_tokens",
        "cost_per_million_input_tokens",
        "serving_cost_per_million_output_tokens",
    ):
        full, half = ds[name].values
        assert half == full / 2, name  # exact: a power-of-two scale


def test_cost_sensitivity_to_price_is_cost_over_price():
    s = tp.sensitivity(
        of="cost_per_million_output_tokens",
        wrt=["price_per_gpu_hour", "board_power"],
        model="llama-3.1-8b",
        hardware="h100-sxm",
        batch=[1, 64],
    )
    cost = s.value.values
    price = H100.price_per_gpu_hour
    np.testing.assert_allclose(s.gradient.sel(param="price_per_gpu_hour").values, cost / price, rtol=1e-12)
    np.testing.assert_allclose(s.elasticity.sel(param="price_per_gpu_hour").values, 1.0, rtol=1e-12)
    assert (s.gradient.sel(param="board_power").values == 0).all()  # power does not enter the price


def test_energy_gradient_matches_finite_differences():
    def energy(board):
        return float(one(board_power=board, breakdown=False).serving_energy_per_output_token)

    s = tp.sensitivity(
        of="serving_energy_per_output_token",
        wrt=["board_power"],
        model="llama-3.1-8b",
        hardware="h100-sxm",
        prompt_len=1024,
        output_len=256,
        batch=8,
    )
    h = 1e-3 * H100.board_power
    fd = (energy(H100.board_power + h) - energy(H100.board_power - h)) / (2 * h)
    assert float(s.gradient.sel(param="board_power")) == pytest.approx(fd, rel=1e-4)


GRID = st.fixed_dictionaries(
    {
        "model": st.sampled_from(["llama-3.1-8b", "llama-3.1-70b", "mixtral-8x7b", "deepseek-v3", "gpt-oss-120b"]),
        "hardware": st.lists(
            st.sampled_from(["h100-sxm", "h200-sxm", "b200", "mi300x", "a100-sxm-80g"]),
            min_size=1,
            max_size=3,
            unique=True,
        ),
        "batch": st.lists(st.sampled_from([1, 4, 32, 256]), min_size=1, max_size=3, unique=True),
        "tp": st.lists(st.sampled_from([1, 2, 8]), min_size=1, max_size=2, unique=True),
        "prompt_len": st.sampled_from([128, 2048, 16384]),
        "output_len": st.sampled_from([2, 256, 2048]),
    }
)


@settings(max_examples=25, deadline=None)
@given(kw=GRID)
def test_power_and_energy_between_idle_and_board(kw):
    ds = tp.sweep(**kw, breakdown=False)
    ok = ds.feasible.values
    if not ok.any():
        return

    def field(name):  # a hardware field on the hardware coordinate (a dim or a scalar)
        get = np.vectorize(lambda h: getattr(tp.presets.hardware_spec(h), name))
        return xr.DataArray(get(ds.hardware.values), dims=ds.hardware.dims)

    idle, board = field("idle_power"), field("board_power")
    for power, tps in (
        ("power_per_gpu", "tokens_per_s_per_gpu"),
        ("serving_power_per_gpu", "serving_tokens_per_s_per_gpu"),
    ):
        p = ds[power]
        assert bool(((p >= idle * (1 - 1e-12)) & (p <= board * (1 + 1e-12))).where(ds.feasible, True).all()), power
        energy = ds[power.replace("power_per_gpu", "energy_per_output_token")]
        # the same time at idle and at board power bounds the energy of an output token
        lo, hi = idle / ds[tps], board / ds[tps]
        assert bool(((energy >= lo * (1 - 1e-12)) & (energy <= hi * (1 + 1e-12))).where(ds.feasible, True).all())
    assert bool((np.isfinite(ds.cost_per_million_output_tokens) | ~ds.feasible).all())


def test_faster_hbm_never_raises_energy_per_token_in_decode_bound_serving():
    ds = one(hbm_bandwidth_scale=[1.0, 1.3], batch=1, breakdown=False)
    slow, fast = ds.serving_energy_per_output_token.values
    assert fast <= slow * (1 + 1e-12) and math.isfinite(fast)


def test_metrics_are_on_every_point_of_a_float32_grid():
    ds = tp.sweep(
        model="llama-3.1-70b", hardware=["h100-sxm", "b200"], tp=[4, 8], batch=[1, 64], dtype="float32", breakdown=False
    )
    assert ds.power_per_gpu.dtype == np.float32
    assert ds.power_per_gpu.attrs["units"] == "W" and ds.cost_per_million_output_tokens.attrs["units"] == "$"
    assert torch.isfinite(torch.as_tensor(ds.tokens_per_s_per_mw.where(ds.feasible, 1.0).values)).all()
