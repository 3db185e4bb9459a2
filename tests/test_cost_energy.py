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


def test_memory_bound_decode_draws_idle_plus_the_hbm_share():
    # Llama-3.1-8B bf16 on one H100, batch 1, a 128-token prompt and 4096 output tokens: decode
    # dominates and streams the weights, so HBM is busy nearly all of each step (u_hbm ≈ 1) and the
    # tensor cores almost never (2 FLOP per weight byte pair at batch 1: u_compute < 0.01). Power:
    # 70 W idle + (700 − 70) W · (0.35 · 1 + ~0) = 290.5 W, within a few percent.
    ds = one(prompt_len=128, output_len=4096, batch=1)
    h = H100
    assert (h.idle_power, h.board_power, h.hbm_power_fraction) == (70.0, 700.0, 0.35)
    assert float(ds.power_per_gpu) == pytest.approx(70 + 630 * 0.35, rel=0.04)
    # J per output token = W / (tokens/s per GPU): ~290 W at one token per TPOT
    assert float(ds.energy_per_output_token) == pytest.approx(float(ds.power_per_gpu) * float(ds.tpot), rel=0.01)
    # all-in: (GPU + host share) · PUE per GPU; tokens/s per MW = tokens/s per GPU / all-in W · 1e6
    all_in = (float(ds.power_per_gpu) + h.host_power_per_gpu) * h.pue
    assert float(ds.tokens_per_s_per_mw) == pytest.approx(float(ds.tokens_per_s_per_gpu) / all_in * 1e6, rel=1e-9)


def test_compute_bound_prefill_draws_near_board_power():
    # a long prompt alone (output_len 1: no decode step) keeps the tensor cores busy: fp8 GEMMs and
    # attention over 32K tokens; the power is the board limit or within 10% of it
    ds = tp.sweep(model="llama-3.1-8b", hardware="h200-sxm", weight_dtype="fp8", prompt_len=32768, output_len=1)
    assert (ds.prefill_op_bound.sel(op=["qkv", "attn", "mlp"]) == 1).all()  # compute-bound ops
    assert float(ds.power_per_gpu) >= 0.9 * 700
    moe = tp.sweep(
        model="deepseek-v3", hardware="h200-sxm", weight_dtype="fp8", prompt_len=32768, output_len=1, tp=8, ep=8
    )
    assert float(moe.power_per_gpu) >= 0.8 * 700  # communication takes part of its time


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


def test_power_what_ifs_outside_their_rules_are_masked_inconsistent():
    # idle 20x (1400 W) above the 700 W board; a PUE of 0.6; an HBM share of 1.75: each point is
    # infeasible with the 'inconsistent' reason, and its power metrics are NaN (not a number above board)
    ds = one(idle_power_scale=[1, 20], pue_scale=[1, 0.5], breakdown=False)
    reason = ds.infeasible_reason.values
    assert reason[0, 0] == 0 and (reason.ravel()[1:] == int(tp.Reason.INCONSISTENT)).all()
    assert np.isnan(ds.power_per_gpu.values.ravel()[1:]).all()
    frac = one(hbm_power_fraction_scale=[5.0], breakdown=False)
    assert (frac.infeasible_reason.values == int(tp.Reason.INCONSISTENT)).all()


def test_cost_and_energy_objectives_are_minimized_by_default():
    grid = dict(model="llama-3.1-70b", hardware=["h100-sxm", "b200"], tp=[4, 8], batch=[1, 64, 256])
    ds = tp.sweep(**grid, breakdown=False)
    cost = ds.cost_per_million_output_tokens.where(ds.feasible)
    for found in (tp.best("cost_per_million_output_tokens", **grid), ds.tperf.best("cost_per_million_output_tokens")):
        assert float(found.cost_per_million_output_tokens) == float(cost.min())  # the cheapest, not the dearest
    dearest = ds.tperf.best("cost_per_million_output_tokens", maximize=True)
    assert float(dearest.cost_per_million_output_tokens) == float(cost.max())
    fastest = ds.tperf.best("tokens_per_s_per_gpu")
    assert float(fastest.tokens_per_s_per_gpu) == float(ds.tokens_per_s_per_gpu.where(ds.feasible).max())
    # a frontier of interactivity (higher is better) against energy per token (lower is better)
    front = ds.tperf.pareto_table("tokens_per_s_per_user", "energy_per_output_token")
    energy = ds.energy_per_output_token.where(ds.feasible)
    for hw in ("h100-sxm", "b200"):  # one frontier per hardware; its least energy is the hardware's least
        mine = front[front["hardware"] == hw]["energy_per_output_token"]
        assert mine.min() == float(energy.sel(hardware=hw).min())
