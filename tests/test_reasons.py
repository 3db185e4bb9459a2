"""Issue 8, item 2: over random valid grids, every infeasibility bit is set exactly when its rule is
broken (each rule re-derived here from the specs and the coordinates, in numpy), feasible points
have finite positive metrics, and `tensorperf explain` spells out the reasons of an infeasible point."""

import contextlib
import io

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tensorperf as tp
from tensorperf.interface.cli import main
from tensorperf.units import MATH_COLUMN

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
MODELS = [
    "llama-3.1-8b",
    "llama-3.1-70b",
    "mixtral-8x7b",
    "deepseek-v3",
    "gpt-oss-120b",
    "llama-4-scout",
    "falcon-180b",
]
HARDWARE = ["h100-sxm", "a100-sxm-80g", "b200", "gb200", "mi300x"]


def _some(pool, max_size=3):
    return st.lists(st.sampled_from(pool), min_size=1, max_size=max_size, unique=True)


@st.composite
def grids(draw):
    return dict(
        model=draw(_some(MODELS, 2)),
        hardware=draw(_some(HARDWARE, 2)),
        weight_dtype=draw(_some(["bf16", "fp8", "fp4"], 2)),
        prompt_len=draw(_some([128, 4096, 131072], 2)),
        batch=draw(_some([1, 3, 8, 64, 512], 2)),
        tp=draw(_some([1, 2, 3, 8, 16, 32], 3)),
        pp=draw(_some([1, 2, 4, 128], 2)),
        dp=draw(_some([1, 2, 4], 2)),
        ep=draw(_some([1, 2, 8, 16], 2)),
        microbatches=draw(st.none() | _some([1, 2, 3], 2)),
        world_size=draw(st.none() | _some([8, 16, 64], 2)),
    )


def _coords(ds, name):
    """Coordinate ``name`` broadcast to the Dataset's grid dims (as a numpy array)."""
    return ds[name].broadcast_like(ds.infeasible_reason).transpose(*ds.infeasible_reason.dims).values


def _spec_field(ds, kind, field, specs):
    table = {s: getattr(specs(s), field) for s in np.unique(ds[kind].values)}
    return np.vectorize(lambda s: table[s], otypes=[float])(_coords(ds, kind))


def _oracle(ds, kw):
    """The reason bits re-derived from the rules (docs/model.md §8; masks.Reason)."""
    m = lambda f: _spec_field(ds, "model", f, tp.presets.model)  # noqa: E731
    hw = lambda f: _spec_field(ds, "hardware", f, tp.presets.hardware_spec)  # noqa: E731
    tp_, pp, dp, ep, batch = (_coords(ds, n).astype(float) for n in ("tp", "pp", "dp", "ep", "batch"))
    heads, kv, d_ff, n_exp, d_ffe = m("num_heads"), m("num_kv_heads"), m("d_ff"), m("num_experts"), m("d_ff_expert")
    layers, first_dense, freq = m("num_layers"), m("first_dense_layers"), m("moe_layer_freq")
    n_moe = np.floor((layers - first_dense) / freq) * (n_exp > 0)
    stage = tp_ * dp  # cp = 1
    etp = stage / ep
    div = lambda a, b: np.remainder(a, b) == 0  # noqa: E731
    ok_heads = div(heads, tp_) & (div(kv, tp_) | div(tp_, kv))
    ok_mlp = div(d_ff, tp_) | (layers - n_moe == 0)
    ok_experts = np.where(n_exp > 0, div(n_exp, ep) & div(stage, ep) & div(d_ffe, etp), ep == 1)
    wdt = _coords(ds, "weight_dtype")
    peak = np.vectorize(
        lambda h, w: getattr(tp.presets.hardware_spec(h), f"peak_flops_{MATH_COLUMN[w]}"), otypes=[float]
    )(_coords(ds, "hardware"), wdt)
    per_replica = batch / dp
    if kw["microbatches"] is None:
        ok_batch = div(batch, dp)  # the default microbatch count divides the replica's batch
    else:
        ok_batch = div(batch, dp) & div(per_replica, _coords(ds, "microbatches").astype(float))
    G = hw("scaleup_size")
    bits = {
        tp.Reason.DIVISIBILITY: ~(ok_heads & ok_mlp & ok_experts),
        tp.Reason.PIPELINE: pp > layers,
        tp.Reason.BATCH: ~ok_batch,
        tp.Reason.DTYPE: peak <= 0,
        tp.Reason.PLACEMENT: (tp_ > G) & ~div(tp_, G),
        tp.Reason.MEMORY: ds.memory_per_gpu.values
        > ds.memory_capacity_per_gpu.broadcast_like(ds.memory_per_gpu).transpose(*ds.memory_per_gpu.dims).values,
    }
    if kw["world_size"] is not None:
        bits[tp.Reason.WORLD_SIZE] = ds.num_gpus.values != _coords(ds, "world_size")
    return bits


@SETTINGS
@given(kw=grids())
def test_every_reason_bit_is_set_exactly_when_its_rule_is_broken(kw):
    ds = tp.sweep(**{k: v for k, v in kw.items() if v is not None})
    reason = ds.infeasible_reason.values
    for bit, broken in _oracle(ds, kw).items():
        got = (reason & int(bit)) > 0
        assert (got == broken).all(), (bit.name, int((got != broken).sum()), "points disagree")
    assert ((reason == 0) == ds.feasible.values).all()
    ok = reason == 0
    for name in (
        "ttft",
        "tpot",
        "e2e_latency",
        "tokens_per_s_per_gpu",
        "tokens_per_s_per_user",
        "serving_tokens_per_s_per_gpu",
        "memory_per_gpu",
        "mfu",
        "mbu",
    ):
        values = ds[name].values
        assert (np.isfinite(values[ok]) & (values[ok] > 0)).all(), name
        if name != "memory_per_gpu":  # masked metrics are NaN where infeasible (memory stays, to say why)
            assert np.isnan(values[~ok]).all(), name


@settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(kw=grids(), pick=st.integers(0, 10**6))
def test_explain_spells_out_the_reasons_of_an_infeasible_point(kw, pick):
    ds = tp.sweep(**{k: v for k, v in kw.items() if v is not None})
    bad = np.argwhere(ds.infeasible_reason.values > 0)
    if not len(bad):
        return
    where = dict(zip(ds.infeasible_reason.dims, bad[pick % len(bad)]))
    point = ds.isel(where)
    code = int(point.infeasible_reason)
    argv = ["explain"]
    for name in (
        "model",
        "hardware",
        "weight_dtype",
        "prompt_len",
        "batch",
        "tp",
        "pp",
        "dp",
        "ep",
        "microbatches",
        "world_size",
    ):
        if name in point.coords:
            argv += [f"--{name.replace('_', '-')}", str(point[name].item())]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(argv, out=out) == 0, err.getvalue()
    text = out.getvalue()
    assert f"feasible: no ({tp.describe(code)}; infeasible_reason {code})" in text
    for bit in tp.Reason:
        if code & bit:
            assert bit.name.lower().replace("_", " ") in text


@SETTINGS
@given(kw=grids())
def test_the_rules_spelled_out_are_the_checks(kw):
    """Issue 20: the engine's named rules (checks.rules, what tp.explain says) AND to each reason's
    check of checks.feasibility, bit for bit, at every point."""
    import torch

    from tensorperf.engine.roofline import checks
    from tensorperf.engine.roofline.build import build

    grid = tp.build_grid(**{k: v for k, v in kw.items() if v is not None})
    w, r, d, _ = build(grid, {}, {}, False)
    needed = d.capacity * torch.linspace(0.5, 1.5, grid.shape[-1], dtype=torch.float64)  # some fit, some not
    world = grid.axis("world_size", torch.float64) if "world_size" in grid.values else None
    spelled = checks.rules(w, r, d, needed, world)
    for reason, ok in checks.feasibility(w, r, d, needed <= d.capacity, world).items():
        mine = torch.ones((), dtype=torch.bool)
        for rule in spelled:
            mine = mine & rule.ok if rule.reason == reason else mine
        assert torch.equal(*torch.broadcast_tensors(mine, ok)), reason.name
    assert {rule.reason for rule in spelled} >= set(checks.feasibility(w, r, d, needed <= d.capacity, world))


@settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(kw=grids())
def test_explain_finds_a_broken_rule_for_every_bit(kw):
    """Issue 20: every reason bit of the example points tp.explain picks has its own sentence (a rule
    re-derived from the point's inputs, or the point's memory and GPU counts), none unexplained."""
    ds = tp.sweep(**{k: v for k, v in kw.items() if v is not None}, breakdown=False)
    why = tp.explain(ds)
    codes = ds.infeasible_reason.values
    assert why.points == codes.size and why.feasible == int((codes == 0).sum())
    assert {f.reason for f in why} == {r for r in tp.Reason if (codes & r).any()}
    assert all(f.rule for f in why), why.text()
    for f in why:  # the example point has the reason it illustrates
        assert int(ds.infeasible_reason.sel({k: v for k, v in f.point.items()})) & f.reason
