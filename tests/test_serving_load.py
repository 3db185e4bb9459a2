"""Serving under load (docs/model.md §10): the closed loop at a concurrency, an open loop at a
request rate, N requests queued at once, and lengths drawn from a range. Laws on real numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tensorperf as tp
from tensorperf.engine.masks import Reason

SETTINGS = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SERVING = [
    "serving_ttft",
    "serving_tpot",
    "serving_e2e_latency",
    "serving_requests_per_s",
    "serving_tokens_per_s_per_gpu",
    "serving_tokens_per_s_per_user",
]
DENSE = dict(model="llama-3.1-70b", hardware="h100-sxm", weight_dtype="fp8", kv_dtype="fp8", tp=4)
MODELS = st.sampled_from(
    [
        dict(model="llama-3.1-8b", hardware="h100-sxm", tp=1),
        dict(model="llama-3.1-70b", hardware="h200-sxm", tp=[2, 8], weight_dtype="fp8", kv_dtype="fp8"),
        dict(model="mixtral-8x7b", hardware="a100-sxm-80g", tp=[2, 4], ep=[1, 2]),
        dict(model="deepseek-v3", hardware="b200", tp=1, dp=8, ep=8, weight_dtype="fp8", kv_dtype="fp8"),
        dict(model="qwen3-235b-a22b", hardware="mi300x", tp=[4, 8], pp=[1, 2], weight_dtype="fp8"),
    ]
)


def _fine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.isfinite(a) & np.isfinite(b)


def _server_rate(closed, per_replica: int):
    """The requests/s the server sustains at a closed loop's batch: the loop's own rate (Little's law
    over the client's e2e) less the slots' idle time while each next request waits one decode step
    for admission (docs/model.md §10.1; none at one request per replica; no speculation here)."""
    e = closed.serving_e2e_latency
    return closed.serving_requests_per_s * e / (e - (per_replica > 1) * closed.serving_tpot)


# ---- the closed loop --------------------------------------------------------------------------
def test_littles_law_in_the_closed_loop():
    ds = tp.sweep(**DENSE, prompt_len=[128, 1000, 8000], output_len=[1, 200, 1000], batch=[1, 8, 64, 256])
    ok = ds.feasible
    assert bool(ok.sum() > 30)
    np.testing.assert_allclose(
        ds.serving_requests_per_s.where(ok), (ds.concurrency / ds.serving_e2e_latency).where(ok), rtol=1e-9
    )
    T = ds.output_len
    np.testing.assert_allclose(
        (ds.serving_tokens_per_s_per_gpu * ds.num_gpus).where(ok), (ds.serving_requests_per_s * T).where(ok), rtol=1e-9
    )
    np.testing.assert_allclose(ds.serving_tokens_per_s_per_user.where(ok), (1 / ds.serving_tpot).where(ok), rtol=1e-12)
    # e2e = TTFT + (T − 1)·TPOT
    np.testing.assert_allclose(
        ds.serving_e2e_latency.where(ok), (ds.serving_ttft + (T - 1) * ds.serving_tpot).where(ok), rtol=1e-12
    )


@pytest.mark.parametrize(
    "spec",
    [
        dict(model="llama-3.1-8b", hardware="h100-sxm"),
        dict(model="llama-3.1-70b", hardware="h200-sxm", tp=[4, 8], weight_dtype="fp8", kv_dtype="fp8"),
        dict(model="mixtral-8x7b", hardware="a100-sxm-80g", tp=4, ep=[1, 4]),
        dict(model="deepseek-v3", hardware="b200", tp=8, ep=8, weight_dtype="fp8", kv_dtype="fp8"),
        dict(model="gpt-oss-120b", hardware="h100-sxm", tp=2, pp=2),
    ],
)
def test_serving_ttft_at_batch_one_is_the_static_ttft(spec):
    # one request alone, its prompt within the token budget: its TTFT is the static prefill at batch 1
    ds = tp.sweep(**spec, prompt_len=[1, 100, 1000, 8192], output_len=[1, 100], batch=1)
    assert bool(ds.feasible.all())
    np.testing.assert_allclose(ds.serving_ttft, ds.ttft, rtol=1e-9)


def test_long_prompts_are_chunked_at_the_budget():
    # S = 20000 > M = 8192: ⌈S/M⌉ = 3 chunks at batch 1, as the static prefill in chunks of M
    kw = dict(**DENSE, prompt_len=20000, output_len=64, batch=1)
    served = tp.sweep(**kw, max_num_tokens=8192)
    whole = tp.sweep(**kw)
    chunked = tp.sweep(**kw, chunk_size=8192)
    assert float(served.serving_ttft) > float(whole.ttft)  # each chunk re-reads the weights
    # equal-size chunks (20000/3) vs 8192 + 8192 + 3616: the same FLOP and weight reads
    np.testing.assert_allclose(float(served.serving_ttft), float(chunked.ttft), rtol=0.02)


@SETTINGS
@given(
    spec=MODELS,
    S=st.integers(16, 16000),
    T=st.integers(2, 4000),
    budget=st.sampled_from([2048, 8192, 16384]),
    ratio=st.sampled_from([1.0, 0.8, 0.5]),
)
def test_closed_loop_bounds_and_monotone_in_batch(spec, S, T, budget, ratio):
    batches = [1, 2, 8, 32, 128, 512]
    dp = spec.get("dp", 1)
    batches = [b * dp for b in batches]
    ds = tp.sweep(
        **spec,
        prompt_len=S,
        output_len=T,
        batch=batches,
        max_num_tokens=budget,
        isl_range_ratio=ratio,
        osl_range_ratio=ratio,
        breakdown=False,
    )
    ttft, tpot = ds.serving_ttft.values, ds.serving_tpot.values
    # TTFT at least the request's own prefill on an idle deployment (batch 1 of the same sweep)
    first = ds.serving_ttft.isel(batch=0)
    assert bool((ds.serving_ttft >= first * (1 - 1e-12)).where(ds.feasible, True).all())
    # TPOT against the decode step at the same batch with no prefill (same lengths), where the budget
    # does not bind (where it binds, prompts wait for room: fewer than B requests decode, docs/model.md
    # §10.1). A request spends n0 of its n0 + T - 1 steps prefilling, and a prefilling request reads
    # only its prompt's cache, not the decode context: at most that share f = n0/(n0 + T - 1) of the
    # in-flight requests is missing from a step's decode work, and a step time affine in its requests
    # (a + c·B) keeps at least (1 - f) of itself, so serving_tpot >= (1 - f)·tpot. With long outputs
    # f is small and the bound is nearly tpot itself (S = 16, T = 1414: f = 1/1414).
    if ratio == 1.0:
        n0 = max(1, -(-S // budget))
        free = ds.concurrency / dp * (S + T - 1) / budget <= n0 + T - 1
        floor = ds.tpot * (1 - n0 / (n0 + T - 1)) * (1 - 1e-12)
        assert bool((ds.serving_tpot >= floor).where(ds.feasible & free, True).all())
    axis = ds.serving_ttft.dims.index("batch")
    for values in (ttft, tpot):
        d = np.diff(values, axis=axis)
        base = np.take(values, range(len(batches) - 1), axis=axis)
        ok = _fine(d, base)
        assert bool((d[ok] >= -1e-12 * np.abs(base[ok])).all())


# ---- the open loop ------------------------------------------------------------------------------
def test_request_rate_below_capacity_and_overloaded():
    rates = [0.005, 0.5, 2.0, 4.0, 7.5, 8.0, 9.0, 50.0]
    ds = tp.sweep(**DENSE, prompt_len=1000, output_len=1000, batch=256, request_rate=rates)
    closed = tp.sweep(**DENSE, prompt_len=1000, output_len=1000, batch=256)
    capacity = float(closed.serving_requests_per_s)  # the closed loop at the cap: B / e2e (8.03 req/s)
    assert capacity == pytest.approx(256 / float(closed.serving_e2e_latency), rel=1e-12)
    assert 8.0 < capacity < 9.0  # the rates below straddle it: 0.005-8 below, 9 and 50 above
    over = ds.request_rate >= capacity
    reason = ds.infeasible_reason.values
    np.testing.assert_array_equal((reason & int(Reason.OVERLOADED)) != 0, over.values)
    assert tp.describe(int(reason[-1])) == "overloaded"
    fine = ds.serving_ttft.where(~over)
    assert bool((fine.dropna("request_rate") > 0).all())  # never a negative time
    assert bool(ds.serving_ttft.where(over).isnull().all())  # masked, with its reason
    # throughput is the arrival rate; times grow with it, TTFT sharply near capacity
    np.testing.assert_allclose(ds.serving_requests_per_s.where(~over).dropna("request_rate"), rates[:6])
    for name in ("serving_ttft", "serving_tpot", "serving_e2e_latency"):
        v = ds[name].where(~over).dropna("request_rate").values
        assert (np.diff(v) > 0).all(), name
    # a trickle of requests sees the idle deployment: TTFT → batch-1 TTFT, TPOT → batch-1 TPOT
    idle = tp.sweep(**DENSE, prompt_len=1000, output_len=1000, batch=1)
    assert float(ds.serving_tpot.isel(request_rate=0)) == pytest.approx(float(idle.serving_tpot), rel=5e-3)
    assert float(ds.serving_ttft.isel(request_rate=0)) == pytest.approx(float(idle.serving_ttft), rel=0.03)
    # at the cap the closed loop's TPOT bounds the open loop's
    assert bool((ds.serving_tpot.where(~over, 0) <= float(closed.serving_tpot) * (1 + 1e-12)).all())


def test_one_slot_is_the_md1_queue():
    # batch 1 is a single server of deterministic service e: M/D/1 waits ρ·e / (2(1 − ρ))
    idle = tp.sweep(**DENSE, prompt_len=1000, output_len=1000, batch=1)
    e = float(idle.serving_e2e_latency)
    step = float(idle.serving_step_time)
    lam = 0.04
    ds = tp.sweep(**DENSE, prompt_len=1000, output_len=1000, batch=1, request_rate=lam)
    rho = lam * e
    wait = rho * e / (2 * (1 - rho))
    busy = 1 - np.exp(-lam * e)
    expected = busy * step / 2 + wait + float(idle.serving_ttft)
    assert float(ds.serving_ttft) == pytest.approx(expected, rel=1e-9)


@SETTINGS
@given(spec=MODELS, S=st.integers(16, 8000), T=st.integers(2, 2000), B=st.sampled_from([1, 16, 256]))
def test_open_loop_monotone_in_the_rate(spec, S, T, B):
    dp = spec.get("dp", 1)
    closed = tp.sweep(**spec, prompt_len=S, output_len=T, batch=B * dp, breakdown=False)
    cap = float(_server_rate(closed, B).max())  # Poisson arrivals wait for no step boundary
    if not np.isfinite(cap):
        return
    rates = list(np.linspace(0.02, 1.2, 12) * cap)
    ds = tp.sweep(**spec, prompt_len=S, output_len=T, batch=B * dp, request_rate=rates, breakdown=False)
    axis = ds.serving_ttft.dims.index("request_rate")
    for name in ("serving_ttft", "serving_tpot", "serving_e2e_latency"):
        v = ds[name].values
        assert not (v[np.isfinite(v)] < 0).any()
        d = np.diff(v, axis=axis)
        base = np.take(v, range(len(rates) - 1), axis=axis)
        ok = _fine(d, base)
        assert bool((d[ok] >= -1e-12 * np.abs(base[ok])).all()), name
    over = (ds.infeasible_reason & int(Reason.OVERLOADED)) != 0
    assert bool(over.isel(request_rate=-1).where(closed.feasible, True).all())  # 1.2x the capacity


def test_an_open_loop_far_below_its_cap_does_not_see_the_cap():
    # 32 req/s of 467/16 tokens on one H100 keep about 4 requests in flight: a request's times there
    # do not depend on whether the server could hold 64 or 256 (its cap), since they are read on the
    # secant to a closed loop near the load (docs/model.md §10.2). Read on the secant to the cap, as
    # before, TTFT rose 1.1% and TPOT 3.1% from a cap of 64 to 256 (16.76, 17.04, 17.23 ms and 7.26,
    # 7.77, 8.01 ms at caps 16, 64, 256), and more the higher the cap
    ds = tp.sweep(
        model="llama-3.1-8b",
        hardware="h100-sxm",
        tp=1,
        prompt_len=467,
        output_len=16,
        batch=[64, 256],
        request_rate=32.0,
    )
    for name in ("serving_ttft", "serving_tpot", "serving_e2e_latency"):
        a, b = ds[name].values.ravel()
        assert b == pytest.approx(a, rel=0.005), name
    assert float(ds.serving_requests_per_s.isel(batch=0)) == 32.0


# ---- N requests at once -----------------------------------------------------------------------
def test_num_requests_burst_then_steady_state():
    ns = [1, 100, 256, 257, 512, 1000, 1024, 10**4, 10**9]
    ds = tp.sweep(**DENSE, prompt_len=1000, output_len=1000, batch=256, num_requests=ns)
    steady = tp.sweep(**DENSE, prompt_len=1000, output_len=1000, batch=256)
    rate = ds.serving_tokens_per_s_per_gpu
    # never above the server's steady state, and equal to it in the limit (a server-held queue: a
    # freed slot takes the next request at once, without the closed loop's admission wait)
    server = float(steady.serving_tokens_per_s_per_gpu * _server_rate(steady, 256) / steady.serving_requests_per_s)
    assert bool((rate <= server * (1 + 1e-12)).all())
    assert float(rate.sel(num_requests=10**9)) == pytest.approx(server, rel=1e-6)
    # the burst's cost is spread over more requests: up over whole waves of the batch
    assert bool((rate.sel(num_requests=[256, 512, 1024, 10**9]).diff("num_requests") > 0).all())
    # a last, partial wave takes the life of its own requests: the 257th request of a run at batch 256
    # decodes its 1000 tokens alone after the first wave, i.e. adds one request's e2e at batch 1
    waves = tp.sweep(**DENSE, prompt_len=1000, output_len=1000, batch=256, num_requests=[256, 257])
    total = waves.num_requests / waves.serving_requests_per_s
    alone1 = float(tp.sweep(**DENSE, prompt_len=1000, output_len=1000, batch=1).serving_e2e_latency)
    assert total.diff("num_requests").item() == pytest.approx(alone1, rel=1e-3)
    assert float(rate.sel(num_requests=257)) < float(rate.sel(num_requests=256))
    # one request alone is the closed loop at batch 1: its TTFT the static prefill, its TPOT a decode step
    alone = tp.sweep(**DENSE, prompt_len=1000, output_len=1000, batch=1)
    for name in ("serving_ttft", "serving_tpot", "serving_e2e_latency"):
        assert float(ds[name].sel(num_requests=1)) == pytest.approx(float(alone[name]), rel=1e-12), name
    # 256 prompts of 1000 tokens at once: 256,000 tokens at <= 8192 per step, first come first served,
    # so the mean TTFT is about half the burst's ~32 prefill steps, seconds rather than the steady 70 ms
    assert 3.0 < float(ds.serving_ttft.sel(num_requests=256)) < 10.0
    assert float(steady.serving_ttft) < 0.1


@pytest.mark.parametrize("n", [1, 7, 64])
def test_num_requests_within_the_batch_is_one_wave(n):
    # N <= the batch: all N run at once, whatever the cap above them
    ds = tp.sweep(**DENSE, prompt_len=2000, output_len=300, batch=[64, 128, 512], num_requests=n)
    for name in SERVING:
        v = ds[name].values
        np.testing.assert_array_equal(v, np.full_like(v, v[0]), err_msg=name)


def test_a_finite_run_above_capacity_has_a_mean():
    # 500 requests at 4-30 req/s against a capacity of ~3.9 req/s: the queue grows through the run
    # (never masked); delivered throughput tops out at the capacity, TTFT grows with the rate
    kw = dict(**DENSE, prompt_len=1000, output_len=1000, batch=64)
    cap = float(_server_rate(tp.sweep(**kw), 64))
    ds = tp.sweep(**kw, request_rate=[1.0, 0.9 * cap, 1.1 * cap, 4 * cap], num_requests=500)
    assert bool(ds.feasible.all())
    assert bool((ds.serving_requests_per_s <= ds.request_rate).all())
    assert bool((ds.serving_requests_per_s <= cap * (1 + 1e-12)).all())
    assert (np.diff(ds.serving_ttft.values) > 0).all()
    # far above the capacity: the last of 500 requests waits (500 − 64)·(1/μ − 1/λ), the mean half that
    lam, late = 4 * cap, 500 - 64
    queued = (1 / cap - 1 / lam) / 2 * late**2 / 500
    assert float(ds.serving_ttft[-1]) == pytest.approx(queued, rel=0.02)


def test_a_client_held_queue_times_requests_from_sending():
    # benchmark_serving --num-prompts N --max-concurrency b (InferenceX: N = 10·b): the first b start
    # together (the burst of num_requests = b), each later one is sent as a slot frees and its TTFT
    # starts then, so the mean TTFT is (b·burst + (N − b)·steady)/N; the server sees the same run
    kw = dict(**DENSE, prompt_len=1000, output_len=1000, batch=64)
    run = tp.sweep(**kw, num_requests=640, queue=["server", "client"])
    burst = float(tp.sweep(**kw, num_requests=64).serving_ttft)
    steady = float(tp.sweep(**kw).serving_ttft)
    client = float(run.serving_ttft.sel(queue="client"))
    assert client == pytest.approx((64 * burst + 576 * steady) / 640, rel=1e-12)
    # the server-held queue adds the slots' wait: 576 requests queued behind a ~16 s request life
    assert float(run.serving_ttft.sel(queue="server")) > 10 * client
    assert run.serving_tpot.values[0] == run.serving_tpot.values[1]
    # a client sends the next request as a slot frees, and it waits a decode step for admission
    # (docs/model.md §10.1); a server-held queue fills the slot at once: the later 576 requests turn
    # over at 64/e against 64/(e − one step)
    ratio = float(run.serving_requests_per_s.sel(queue="server") / run.serving_requests_per_s.sel(queue="client"))
    assert 1 < ratio < 1.01
    # within one wave nobody waits: client and server are the same run, bit for bit
    one = tp.sweep(**kw, num_requests=[1, 64], queue=["server", "client"])
    for name in SERVING:
        np.testing.assert_array_equal(one[name].sel(queue="server"), one[name].sel(queue="client"), err_msg=name)


@SETTINGS
@given(spec=MODELS, rate=st.floats(0.05, 50.0), n=st.sampled_from([None, 300]))
def test_a_client_held_queue_never_lengthens_ttft(spec, rate, n):
    kw = dict(spec, prompt_len=1000, output_len=200, batch=32, request_rate=rate)
    if n is not None:
        kw["num_requests"] = n
    ds = tp.sweep(**kw, queue=["server", "client"])
    server, client = ds.serving_ttft.sel(queue="server").values, ds.serving_ttft.sel(queue="client").values
    fine = _fine(server, client)
    assert (client[fine] <= server[fine] * (1 + 1e-12)).all()
    np.testing.assert_array_equal(ds.serving_tpot.sel(queue="server"), ds.serving_tpot.sel(queue="client"))


# ---- lengths drawn from a range ---------------------------------------------------------------
def test_range_ratio_one_is_the_fixed_length_bit_for_bit():
    kw = dict(**DENSE, prompt_len=[100, 3000], output_len=[10, 500], batch=[1, 64])
    fixed = tp.sweep(**kw)
    ranged = tp.sweep(**kw, isl_range_ratio=[1.0, 0.8], osl_range_ratio=[1.0, 0.5])
    for name in SERVING:
        a = fixed[name].values
        b = ranged[name].sel(isl_range_ratio=1.0, osl_range_ratio=1.0).values
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_range_ratio_means():
    # lengths uniform in [r·L, L]: the mean output is L(1 + r)/2, so requests/s·E[T] is the throughput
    kw = dict(**DENSE, prompt_len=1000, output_len=1000, batch=64)
    ds = tp.sweep(**kw, isl_range_ratio=0.8, osl_range_ratio=0.5)
    mean_T = 1000 * 1.5 / 2
    assert float(ds.serving_tokens_per_s_per_gpu * ds.num_gpus) == pytest.approx(
        float(ds.serving_requests_per_s) * mean_T, rel=1e-12
    )
    np.testing.assert_allclose(
        float(ds.serving_e2e_latency), float(ds.serving_ttft + (mean_T - 1) * ds.serving_tpot), rtol=1e-12
    )
    # shorter prompts on average: a shorter TTFT than the fixed length's
    fixed = tp.sweep(**kw)
    assert float(ds.serving_ttft) < float(fixed.serving_ttft)


# ---- inputs -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kw, words",
    [
        (dict(request_rate=0), "request_rate = 0 is not allowed: must be a finite number > 0"),
        (dict(request_rate=float("inf")), "request_rate = inf is not allowed"),
        (dict(isl_range_ratio=1.5), r"isl_range_ratio = 1.5 is not allowed: must be a number in \(0, 1\]"),
        (dict(osl_range_ratio=0), "osl_range_ratio = 0 is not allowed"),
        (dict(num_requests=0), "num_requests = 0 is not allowed: must be an integer >= 1"),
        (dict(max_num_tokens=2.5), "max_num_tokens = 2.5 is not allowed"),
        (dict(queue="browser"), "queue.*browser.*client"),
    ],
)
def test_bad_serving_inputs_name_the_field(kw, words):
    with pytest.raises(tp.SpecError, match=words):
        tp.sweep(model="llama-3.1-8b", hardware="h100-sxm", **kw)


# ---- gradients --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "extra",
    [dict(batch=64), dict(batch=256, request_rate=6.0), dict(batch=64, num_requests=1000, isl_range_ratio=0.8)],
)
def test_gradients_equal_finite_differences(extra):
    kw = dict(**DENSE, prompt_len=1000, output_len=500, **extra)
    for of in ("serving_ttft", "serving_tpot", "serving_e2e_latency", "serving_tokens_per_s_per_gpu"):
        sens = tp.sensitivity(of=of, wrt=["memory", "hbm_bandwidth"], **kw)
        g = sens.gradient.sel(param="memory").values
        eta = float(tp.presets.hardware_spec("h100-sxm").efficiency.memory)
        h = 1e-6
        up = tp.sweep(**kw, efficiency={"memory": eta + h})[of].values
        down = tp.sweep(**kw, efficiency={"memory": eta - h})[of].values
        np.testing.assert_allclose(g, (up - down) / (2 * h), rtol=1e-4, err_msg=of)
        bw = float(tp.presets.hardware_spec("h100-sxm").hbm_bandwidth)
        gb = sens.gradient.sel(param="hbm_bandwidth").values
        hb = bw * 1e-6
        up = tp.sweep(**kw, hbm_bandwidth=bw + hb)[of].values
        down = tp.sweep(**kw, hbm_bandwidth=bw - hb)[of].values
        np.testing.assert_allclose(gb, (up - down) / (2 * hb), rtol=1e-4, err_msg=of)
    assert torch.is_grad_enabled()


# ---- searches over the serving variables ------------------------------------------------------
def test_best_and_pareto_take_the_serving_variables():
    grid = dict(**{**DENSE, "tp": [1, 2, 4, 8]}, prompt_len=1000, output_len=1000, batch=[1, 8, 32, 64, 128, 256])
    where = {"serving_ttft": ("<=", 2.0), "serving_tokens_per_s_per_user": (">=", 50)}
    streamed = tp.best("serving_tokens_per_s_per_gpu", where=where, chunk_points=7, **grid)
    ds = tp.sweep(**grid)
    in_memory = ds.tperf.best("serving_tokens_per_s_per_gpu", where=where)
    ok = (ds.serving_ttft <= 2.0) & (ds.serving_tokens_per_s_per_user >= 50)
    expected = float(ds.serving_tokens_per_s_per_gpu.where(ok).max())
    assert float(streamed.serving_tokens_per_s_per_gpu) == float(in_memory.serving_tokens_per_s_per_gpu) == expected
    winner = ds.sel(tp=int(streamed.best_tp), batch=int(streamed.best_batch))
    assert float(winner.serving_ttft) <= 2.0 and float(winner.serving_tokens_per_s_per_user) >= 50
    # the frontier of throughput per GPU against interactivity, streamed and in memory
    front = tp.pareto("serving_tokens_per_s_per_user", "serving_tokens_per_s_per_gpu", chunk_points=5, **grid)
    table = ds.tperf.pareto_table(x="serving_tokens_per_s_per_user", y="serving_tokens_per_s_per_gpu")
    got = np.sort(front.serving_tokens_per_s_per_gpu.values[np.isfinite(front.serving_tokens_per_s_per_gpu.values)])
    np.testing.assert_array_equal(got, np.sort(table.serving_tokens_per_s_per_gpu.values))
    assert len(got) >= 3


# ---- serving stacks -----------------------------------------------------------------------------
STACK = tp.StackSpec(name="slow-host", step_overhead=0.002, request_overhead=0.08)


def test_a_stack_adds_its_overheads():
    # 2 ms of host time per step and 80 ms per request: TPOT + 2 ms exactly (every step of the mixture
    # carries it), TTFT + 80 ms + 2 ms per prefill step (one here: 1000 tokens within the budget);
    # the static passes get the step overhead only
    kw = dict(**DENSE, prompt_len=1000, output_len=500, batch=[1, 64])
    ds = tp.sweep(**kw, stack=["ideal", STACK])
    ideal, slow = ds.sel(stack="ideal"), ds.sel(stack="slow-host")
    np.testing.assert_allclose(slow.serving_tpot - ideal.serving_tpot, 0.002, rtol=1e-9)
    np.testing.assert_allclose(slow.tpot - ideal.tpot, 0.002, rtol=1e-9)
    np.testing.assert_allclose(slow.serving_ttft.sel(batch=1) - ideal.serving_ttft.sel(batch=1), 0.082, rtol=1e-9)
    np.testing.assert_allclose(slow.ttft.sel(batch=1) - ideal.ttft.sel(batch=1), 0.002, rtol=1e-9)
    # Little's law still holds, on the client's end-to-end time
    np.testing.assert_allclose(slow.serving_requests_per_s, slow.concurrency / slow.serving_e2e_latency, rtol=1e-12)
    assert "slow-host" in ds.attrs["stack_specs"]


def test_the_ideal_stack_is_the_default_bit_for_bit():
    kw = dict(**DENSE, prompt_len=[100, 3000], output_len=[10, 500], batch=[1, 64])
    a, b = tp.sweep(**kw), tp.sweep(**kw, stack="ideal")
    for name in a.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


def test_an_unknown_stack_names_the_choices():
    with pytest.raises(tp.SpecError, match="unknown stack preset 'sglangg'"):
        tp.sweep(model="llama-3.1-8b", hardware="h100-sxm", stack="sglangg")
    with pytest.raises(tp.SpecError, match="request_overhead"):
        tp.StackSpec(name="x", request_overhead=-1.0)


# ---- attention-DP context balancing (docs/model.md §10.5) ---------------------------------------
def test_balance_wait_limits():
    from tensorperf.engine.physics.balance import balance_wait

    f = lambda x: torch.tensor(x, dtype=torch.float64)
    # one rank: nothing to wait for; no arrivals: the counter's phase, T_o/2 on average
    assert balance_wait(f(5.0), f(1.0), f(2.0)).item() == 0.0
    assert balance_wait(f(1e-9), f(8.0), f(2.0)).item() == pytest.approx(1.0, rel=1e-6)
    # two ranks at λ = 1/s, no timeout: τ = max of two Exp(1), E[τ] = 1.5, E[τ²] = Var + E² = 1.25 +
    # 2.25 = 3.5, so W = 3.5 / (2·1.5) = 1.1667 s
    assert balance_wait(f(1.0), f(2.0), f(30.0)).item() == pytest.approx(3.5 / 3, rel=1e-5)


def test_attention_dp_balancing_delays_the_prefill_only():
    kw = dict(
        model="deepseek-v3",
        hardware="b200",
        weight_dtype="fp8",
        kv_dtype="fp8",
        recipe="deepseek-fp8",
        ep=8,
        prompt_len=1024,
        output_len=1024,
        batch=256,
    )
    # one replica (TP8): nothing to balance, bit for bit
    one, one_held = tp.sweep(**kw, tp=8), tp.sweep(**kw, tp=8, adp_balance_iters=60)
    for name in SERVING:
        assert float(one[name]) == float(one_held[name]), name
    # eight (attention DP): the TTFT and the e2e latency grow by the same wait, at most T_o = 60
    # steps, and TPOT does not
    plain, held = tp.sweep(**kw, dp=8), tp.sweep(**kw, dp=8, adp_balance_iters=60)
    wait = float(held.serving_ttft - plain.serving_ttft)
    assert 0 < wait <= 60 * float(plain.serving_step_time)
    assert float(held.serving_e2e_latency - plain.serving_e2e_latency) == pytest.approx(wait, rel=1e-9)
    assert float(held.serving_tpot) == float(plain.serving_tpot)
    with pytest.raises(tp.SpecError, match="adp_balance_iters = 0 is not allowed"):
        tp.sweep(**kw, tp=1, dp=8, adp_balance_iters=0)


# ---- admission: the scheduler's checks for new requests (docs/model.md §10.1) -------------------
def test_admission_interval_waits():
    kw = dict(**DENSE, prompt_len=1000, output_len=500)
    closed = tp.sweep(**kw, batch=[1, 32], admission_interval=[1, 10, 30])
    tpot = closed.serving_tpot.sel(admission_interval=1)
    # alone, the engine idles and checks at once: no wait at any interval
    alone = closed.serving_ttft.sel(batch=1).values
    np.testing.assert_array_equal(alone, np.full_like(alone, alone[0]))
    # with others in flight the next request arrives just after a step began and joins after
    # (R + 1)/2 decode steps: 5.5 and 15.5 steps at R = 10, 30 against 1 at R = 1
    t = closed.serving_ttft.sel(batch=32)
    step = float(tpot.sel(batch=32))
    assert float(t.sel(admission_interval=10) - t.sel(admission_interval=1)) == pytest.approx(4.5 * step, rel=1e-9)
    assert float(t.sel(admission_interval=30) - t.sel(admission_interval=1)) == pytest.approx(14.5 * step, rel=1e-9)
    np.testing.assert_array_equal(closed.serving_tpot.values[..., 0], closed.serving_tpot.values[..., 2])
    # Little's law over the client's e2e: the slots idle while a request waits, fewer requests/s
    rps = closed.serving_requests_per_s.sel(batch=32).values
    assert rps[0] > rps[1] > rps[2]
    # Poisson arrivals wait for the next check at a random phase: busy x step x R/2
    rate = float(_server_rate(closed.sel(batch=32, admission_interval=1), 32)) / 2
    opened = tp.sweep(**kw, batch=32, request_rate=rate, admission_interval=[1, 10])
    extra = float(opened.serving_ttft.sel(admission_interval=10) - opened.serving_ttft.sel(admission_interval=1))
    busy_step = float(opened.serving_ttft.sel(admission_interval=1))  # (only a bound: the wait is a part)
    assert 0 < extra < 4.5 * busy_step
    step = float(opened.serving_step_time.sel(admission_interval=1))
    assert extra == pytest.approx(4.5 * step, rel=0.05)  # busy ~ 1 at half the capacity of 32 slots
