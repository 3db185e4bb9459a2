"""MoE routing imbalance and all-to-all deduplication (docs/model.md §3.5.1).

The analytic max/mean of the token-expert pairs over the EP ranks (physics.routing.imbalance)
against Monte-Carlo sampling of uniform top-k routing; its limits (1 at ep = 1, → 1 with many
tokens) and monotonicity; how it enters the engine (the slowest rank's expert GEMMs, weights and
all-to-all), bit for bit where it is 1; the ``imbalance`` input (sweep, CLI, sensitivity).
"""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tensorperf as tp
from tensorperf.engine.physics import comm, ops, routing
from tensorperf.interface.cli import main
from tensorperf.validation import SpecError

F64 = torch.float64
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# (E, k) of the MoE presets: Mixtral, Llama-4 Scout / Maverick, gpt-oss-20b / 120b, Qwen3, DeepSeek-V3
MOE_SHAPES = ((8, 2), (16, 1), (128, 1), (32, 4), (128, 4), (128, 8), (256, 8))


def t(x: float) -> torch.Tensor:
    return torch.tensor(float(x), dtype=F64)


def lam(tokens: float, E: int, k: int, ep: int) -> float:
    return float(routing.imbalance(t(tokens), t(E), t(k), t(ep)))


# ------------------------------------------------------------------------------------------ limits


@pytest.mark.parametrize("E, k", MOE_SHAPES + ((0, 0), (1, 1), (2, 2)))
def test_one_rank_is_exactly_balanced(E, k):
    tokens = torch.tensor([0.0, 0.3, 1.0, 7.0, 1e3, 1e9], dtype=F64)
    out = routing.imbalance(tokens, t(E), t(k), t(1))
    assert torch.equal(out, torch.ones_like(out))  # exactly 1.0, not 1 + rounding


def test_every_expert_chosen_or_dense_is_balanced():
    for n in (2, 4, 8):
        assert lam(5, 8, 8, n) == 1.0  # k = E: every rank holds k/n of each token's pairs
    assert lam(5, 0, 0, 4) == 1.0  # a dense model (no routed work anyway)


def test_tends_to_one_with_many_tokens_and_is_bounded():
    for E, k in MOE_SHAPES:
        for n in (2, 8, E):
            assert 1 < lam(1e12, E, k, n) < 1 + 1e-4
            # at least one pair lands somewhere; a rank takes at most min(k, E/n) of a token's pairs
            assert lam(1, E, k, n) <= min(n, E / k) + 1e-12
            assert lam(0, E, k, n) == min(n, E / k)  # finite where there are no tokens (0·λ = 0)


def test_blom_expected_maximum_of_normals():
    exact = {2: 1 / math.sqrt(math.pi), 4: 1.0294, 8: 1.4236, 64: 2.3437}  # E[max of n] (numerical)
    for n, value in exact.items():
        blom = float(routing.expected_max_normal(t(n)))
        assert abs(blom - value) / value < (0.05 if n == 2 else 0.02)
    assert float(routing.expected_max_normal(t(1))) == 0.0


def test_a_hand_computed_value():
    # DeepSeek-V3 experts (E = 256, k = 8) on ep = 8 ranks, 32 tokens: μ = 32·8/8 = 32 pairs per rank.
    # e_8 = Φ⁻¹((8 − 3/8)/(8 + 1/4)) = Φ⁻¹(0.924242...) = 1.434200
    # c = (E − k)/(E − 1) = 248/255 = 0.972549;  a = e_8·√c = 1.434200·0.986179 = 1.414378
    # g = (1 − 2/8)·(E − 2k)/(E − 2) = 0.75·240/254 = 0.708661
    # b = (e_8² − 1)/6·g = (2.056930 − 1)/6·0.708661 = 0.124834
    # λ = 1 + a/√μ + b/μ = 1 + 1.414378/5.656854 + 0.124834/32 = 1 + 0.250029 + 0.003901 = 1.253930
    # (Monte-Carlo below: 1.2539)
    assert lam(32, 256, 8, 8) == pytest.approx(1.253930, abs=2e-6)


# ---------------------------------------------------------------------------------- monotonicity


@st.composite
def shape_and_ranks(draw):
    E, k = draw(st.sampled_from(MOE_SHAPES))
    ranks = [n for n in (1, 2, 4, 8, 16, 32, 64, 128, 256) if E % n == 0]
    return E, k, ranks


@SETTINGS
@given(shape_and_ranks(), st.floats(0, 1e7), st.floats(0, 1e7))
def test_decreasing_in_tokens(shape, t1, t2):
    E, k, ranks = shape
    lo, hi = sorted((t1, t2))
    for n in ranks:
        assert lam(hi, E, k, n) <= lam(lo, E, k, n) * (1 + 1e-12), (E, k, n, lo, hi)


@SETTINGS
@given(shape_and_ranks(), st.floats(0, 1e7))
def test_increasing_in_ranks(shape, tokens):
    E, k, ranks = shape
    values = [lam(tokens, E, k, n) for n in ranks]
    assert all(b >= a * (1 - 1e-12) for a, b in zip(values, values[1:])), (E, k, tokens, values)
    assert all(v >= 1 for v in values)


def test_vectorized_and_differentiable():
    tokens = torch.tensor([1.0, 8.0, 64.0, 4096.0], dtype=F64, requires_grad=True)
    n = torch.tensor([[1.0], [8.0], [64.0]], dtype=F64)
    out = routing.imbalance(tokens, t(256), t(8), n)  # one broadcast call, no loop over points
    assert out.shape == (3, 4)
    for j in range(4):
        assert out[1, j].item() == lam(tokens[j].item(), 256, 8, 8)
    (g,) = torch.autograd.grad(out.sum(), tokens)
    assert torch.isfinite(g).all() and (g[1:] < 0).all()


# ----------------------------------------------------------------------------------- Monte-Carlo


def sampled_max_over_mean(rng, tokens: int, E: int, k: int, ep: int, trials: int) -> float:
    """E[max over ranks of the pairs a rank receives] / mean, sampled: each token picks k distinct
    experts uniformly; the number of them on each rank (E/ep experts each) is multivariate
    hypergeometric (k draws from E experts coloured by rank: exactly the rank-level marginal of
    uniform top-k, checked against explicit sampling below)."""
    colours = np.full(ep, E // ep)
    total, done = 0.0, 0
    while done < trials:
        batch = min(trials - done, max(1, 2_000_000 // (tokens * ep)))
        counts = rng.multivariate_hypergeometric(colours, k, size=(batch, tokens), method="marginals")
        total += counts.sum(axis=1).max(axis=1).sum()
        done += batch
    return total / trials / (tokens * k / ep)


def explicit_max_over_mean(rng, tokens: int, E: int, k: int, ep: int, trials: int) -> float:
    """The same by drawing each token's k experts (the k smallest of E random keys)."""
    experts = np.argpartition(rng.random((trials, tokens, E)), k, axis=-1)[..., :k]
    loads = np.stack([np.bincount(x.ravel() // (E // ep), minlength=ep) for x in experts])
    return loads.max(axis=1).mean() / (tokens * k / ep)


def tolerance(mu: float) -> float:
    """The approximation's error bound by pairs per rank μ (docs/model.md §3.5.1)."""
    return 0.03 if mu >= 8 else 0.10 if mu >= 0.25 else 0.30


def test_rank_marginal_sampling_equals_explicit_top_k():
    rng = np.random.default_rng(7)
    a = sampled_max_over_mean(rng, 16, 16, 4, 4, 20_000)
    b = explicit_max_over_mean(rng, 16, 16, 4, 4, 20_000)
    assert abs(a - b) / b < 0.01


CASES = [(256, 8, ep, T) for ep in (8, 16, 32, 64) for T in (1, 8, 64, 512, 4096)]  # DeepSeek-V3
CASES += [(8, 2, ep, T) for ep in (2, 4, 8) for T in (1, 8, 64, 512, 8192)]  # Mixtral


@pytest.mark.parametrize("E, k, ep, tokens", CASES)
def test_matches_monte_carlo_top_k_routing(E, k, ep, tokens):
    rng = np.random.default_rng(1000 * ep + tokens)
    trials = max(40, 40_000 // tokens)
    sampled = sampled_max_over_mean(rng, tokens, E, k, ep, trials)
    mu = tokens * k / ep
    assert abs(lam(tokens, E, k, ep) - sampled) / sampled < tolerance(mu), (sampled, lam(tokens, E, k, ep))


@pytest.mark.parametrize("E, k, ep, tokens", [(256, 8, 8, 1), (256, 8, 8, 16), (128, 4, 8, 4), (8, 2, 8, 1)])
def test_critical_rank_reads_about_the_max_of_touched_experts(E, k, ep, tokens):
    rng = np.random.default_rng(tokens)
    trials = 400
    experts = np.argpartition(rng.random((trials, tokens, E)), k, axis=-1)[..., :k]
    hit = np.zeros((trials, E), dtype=bool)
    np.put_along_axis(hit, experts.reshape(trials, -1), True, axis=1)
    sampled = hit.reshape(trials, ep, E // ep).sum(axis=2).max(axis=1).mean()
    read = ops.critical_experts(t(E), t(k), t(tokens), routing.imbalance(t(tokens), t(E), t(k), t(ep)), t(ep)) / ep
    mean = ops.expected_experts(t(E), t(k), t(tokens)) / ep
    assert abs(float(read) - sampled) / sampled < 0.10
    assert float(mean) < float(read)


# ------------------------------------------------------------------------------ all-to-all dedup


def test_remote_domains_hand_value_and_sampling():
    # E = 256 experts on D = 4 domains of 64, k = 8: a domain is missed with probability
    # C(192, 8)/C(256, 8) = Π_{i<8} (192 − i)/(256 − i) = 0.096446, so a token reaches
    # 3·(1 − 0.096446) = 2.710661 other domains (uniform approximation 3·(1 − (3/4)^8) = 2.699661)
    assert float(routing.remote_domains(t(256), t(8), t(4))) == pytest.approx(2.710661, abs=1e-6)
    assert float(routing.dedup_factor(t(256), t(8), t(4))) == pytest.approx(4 * (1 - 0.096446) / 8, abs=1e-6)
    rng = np.random.default_rng(3)
    experts = np.argpartition(rng.random((40_000, 256)), 8, axis=-1)[:, :8]
    domains = np.zeros((40_000, 4), dtype=bool)
    np.put_along_axis(domains, experts // 64, True, axis=1)
    sampled = domains[:, 1:].sum(axis=1).mean()  # the token's own domain is domain 0, by symmetry
    assert abs(sampled - 2.710661) < 0.02


def test_dedup_factor_limits_and_all_to_all():
    assert float(routing.dedup_factor(t(256), t(8), t(1))) == 1.0  # one domain: nothing crosses
    assert float(routing.dedup_factor(t(128), t(1), t(4))) == pytest.approx(1.0)  # one copy per token
    assert float(routing.dedup_factor(t(8), t(2), t(8))) == pytest.approx(1.0)  # one expert per domain
    for D in (2, 4, 8, 16):
        assert 0 < float(routing.dedup_factor(t(256), t(8), t(D))) <= 1
    tiers = comm.Tiers(bw_in=t(450e9), lat_in=t(2e-6), bw_out=t(50e9), lat_out=t(5e-6), domain=t(8))
    send, n = t(64e6), t(32)
    plain = comm.group_all_to_all(send, n, tiers)
    assert torch.equal(comm.group_all_to_all(send, n, tiers, dedup=t(1.0)), plain)
    dedup = routing.dedup_factor(t(256), t(8), n / 8)
    faster = comm.group_all_to_all(send, n, tiers, dedup=dedup)
    latency = 7 * 2e-6 + 24 * 5e-6
    assert float(faster - latency) == pytest.approx(float(plain - latency) * float(dedup))  # inter-bound here


# ------------------------------------------------------------------------------------ the engine

MOE = dict(model="deepseek-v3", hardware="h200-sxm", weight_dtype="fp8", prompt_len=1024, output_len=256, tp=1)


def same(a, b) -> None:
    """Every variable of two Datasets equal bit for bit (NaN where NaN)."""
    for k in a.data_vars:
        x, y = a[k].values, b[k].values
        assert x.dtype == y.dtype and np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), k


def test_dense_model_unchanged_bit_for_bit():
    kw = dict(model="llama-3.1-8b", hardware="h100-sxm", batch=[1, 64], tp=[1, 2], dp=[1, 4])
    base = tp.sweep(**kw)
    same(base, tp.sweep(**kw, imbalance=1.0))
    same(base, tp.sweep(**kw, imbalance=[1.0, 1.7]).sel(imbalance=1.7, drop=True))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("given", [None, 1.4])
def test_ep_one_points_unchanged_bit_for_bit(given, dtype):
    kw = dict(MOE, batch=[8, 256], dp=8, imbalance=given, dtype=dtype)
    alone = tp.sweep(**kw, ep=1)  # no point with ep > 1: the imbalance is left out
    mixed = tp.sweep(**kw, ep=[1, 8]).sel(ep=1)  # computed, exactly 1 at ep = 1
    same(alone, mixed)


def test_imbalance_one_equals_the_balanced_engine_bit_for_bit():
    kw = dict(MOE, batch=[8, 256], dp=8, ep=8)
    balanced = tp.sweep(**kw, imbalance=1.0)  # identically 1: left out
    with_two = tp.sweep(**kw, imbalance=[1.0, 2.0]).sel(imbalance=1.0, drop=True)  # computed, λ = 1
    same(balanced, with_two)


def test_the_slowest_rank_scales_expert_work_and_all_to_all():
    ds = tp.sweep(**MOE, batch=64, dp=8, ep=8, imbalance=[1.0, 1.5, 2.0])
    flops = ds.decode_op_flops.sel(op="experts").values
    moved = ds.decode_op_bytes.sel(op="experts").values
    assert flops[0] < flops[1] < flops[2] and moved[0] < moved[1] < moved[2]
    assert flops[1] - flops[0] == pytest.approx(flops[2] - flops[1], rel=1e-12)  # affine in λ (the GEMMs)
    a2a = ds.decode_op_time.sel(op="ep_comm").values
    assert a2a[0] < a2a[1] < a2a[2]
    assert (ds.tpot.values[1:] > ds.tpot.values[:-1]).all()
    for op in ("attn", "qkv", "lm_head"):  # nothing else waits for the slowest EP rank
        assert np.unique(ds.decode_op_time.sel(op=op).values).size == 1


def test_analytic_default_is_between_balanced_and_its_bound():
    kw = dict(MOE, batch=8, dp=8, ep=8)
    default, balanced = tp.sweep(**kw), tp.sweep(**kw, imbalance=1.0)
    # 8 stage tokens on 8 ranks: μ = 8 pairs per rank, λ ≈ 1.52
    lam8 = lam(8, 256, 8, 8)
    assert 1.4 < lam8 < 1.6
    assert float(balanced.tpot) < float(default.tpot) < float(tp.sweep(**kw, imbalance=lam8 * 1.01).tpot)
    # with many tokens the default tends to the balanced result
    big = dict(MOE, batch=64, dp=8, ep=8, prompt_len=4096)  # prefill: 262,144 stage tokens
    assert float(tp.sweep(**big).ttft) == pytest.approx(float(tp.sweep(**big, imbalance=1.0).ttft), rel=0.02)


def test_gradient_wrt_imbalance_equals_finite_differences():
    kw = dict(MOE, batch=64, dp=8, ep=8)
    se = tp.sensitivity(of="tpot", wrt=["imbalance"], imbalance=1.3, **kw)
    g = float(se.gradient.sel(param="imbalance"))
    h = 1e-4
    tpot = lambda x: float(tp.sweep(**kw, imbalance=x, breakdown=False).tpot)  # noqa: E731
    fd = (tpot(1.3 + h) - tpot(1.3 - h)) / (2 * h)
    assert g > 0 and g == pytest.approx(fd, rel=1e-4)
    with pytest.raises(SpecError, match="imbalance"):  # the default is not a parameter
        tp.sensitivity(of="tpot", wrt=["imbalance"], **kw)


# ------------------------------------------------------------------------------------- the input


@pytest.mark.parametrize("bad", [0.5, 0.0, -1.0, float("nan"), float("inf"), True, "x"])
def test_bad_imbalance_is_a_clear_error(bad):
    with pytest.raises(SpecError, match=r"imbalance = .* is not allowed: must be a finite number >= 1"):
        tp.sweep(**MOE, imbalance=bad)


def test_imbalance_is_a_dimension_and_a_coordinate():
    ds = tp.sweep(**MOE, batch=64, dp=8, ep=8, imbalance=[1.0, 1.25])
    assert "imbalance" in ds.dims and list(ds.imbalance.values) == [1.0, 1.25]
    assert "imbalance" not in tp.sweep(**MOE).coords  # absent unless given


def test_cli_flag():
    argv = ["sweep", "--model", "deepseek-v3", "--hardware", "h200-sxm", "--weight-dtype", "fp8", "--dp", "8"]
    argv += ["--ep", "8", "--batch", "64"]
    out = io.StringIO()
    assert main([*argv, "--imbalance", "1,1.5"], out=out) == 0
    assert "imbalance" in out.getvalue()


@pytest.mark.parametrize("value", ["0.5", "nan"])
def test_cli_bad_value_is_one_line_exit_2(value, capsys):
    code = main(["sweep", "--model", "deepseek-v3", "--hardware", "h200-sxm", "--imbalance", value])
    err = capsys.readouterr().err
    assert code == 2 and "imbalance" in err and ">= 1" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
