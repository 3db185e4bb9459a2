"""The engine's shortcuts are exact: every metric equals the general computation bit for bit.

Without a gradient the engine leaves out terms that are exact zeros at the defaults (overlap = 1: no
min(t_compute, t_memory) term; launch_overhead = 0; comm_overlap = 0: collectives fully exposed;
step_overhead = 0) and writes results into its own temporaries. A factor that needs a gradient keeps
its term and every op allocates, so evaluating with such leaves (of the same values) runs the general
path; both must give the same bits on grids that exercise every branch (dense, MoE with leading
dense layers, MLA, context parallelism, chunked prefill, microbatches, float32).
"""

from __future__ import annotations

import pytest
import torch

from tensorperf.engine import roofline
from tensorperf.engine.roofline import phases
from tensorperf.run.inputs import build_grid

LAYOUT = dict(tp=[1, 2, 8], pp=[1, 3, 4], dp=[1, 2], ep=[1, 8], batch=[1, 8, 64])
GRIDS = {
    "moe+dense+mla": dict(
        model=["gpt-moe-1.8t", "deepseek-v3", "llama-3.1-70b"],
        hardware=["h100-sxm", "b200"],
        weight_dtype=["bf16", "fp8"],
        prompt_len=[512, 8192],
        output_len=[1, 256],
        **LAYOUT,
    ),
    "cp+chunked+micro": dict(
        model=["qwen3-235b-a22b", "llama-4-scout"],
        hardware="gb200",
        prompt_len=[4096, 32768],
        output_len=128,
        cp=[1, 2],
        chunk_size=[2048, 65536],
        microbatches=[1, 2],
        **LAYOUT,
    ),
}
# factors at their defaults, as leaves that need a gradient: the general path. A *_scale of 1 leaves
# each preset's own value unchanged exactly (η·1 / (1 + η·0) = η).
LEAVES = ("overlap_scale", "comm_overlap", "step_overhead")


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("name", sorted(GRIDS))
def test_default_shortcuts_equal_the_general_path_bit_for_bit(name, dtype):
    grid = build_grid(**GRIDS[name], dtype=dtype)
    with torch.no_grad():
        fast = roofline.evaluate(grid, {}, breakdown=False)
    values = {"overlap_scale": 1.0, "comm_overlap": 0.0, "step_overhead": 0.0}
    efficiency = {k: torch.tensor(values[k], dtype=dtype, requires_grad=True) for k in LEAVES}
    fields = {"launch_overhead": torch.tensor(0.0, dtype=dtype, requires_grad=True)}
    general = roofline.evaluate(grid, efficiency, fields, breakdown=False)
    assert general.values["tpot"].requires_grad  # the general path indeed ran
    assert torch.equal(fast.reason, general.reason)
    feasible = fast.reason == 0
    assert 0 < int(feasible.sum()) < grid.size  # both kinds of point are present
    for k, v in fast.values.items():
        g = general.values[k].detach()
        v, g = torch.broadcast_tensors(v, g)
        assert torch.equal(v, g), k


def test_a_non_default_factor_takes_effect():
    # the shortcut is taken only where the factor is identically its default: one hardware with
    # overlap 0.5 in a grid changes that hardware's times only
    grid = build_grid(**GRIDS["moe+dense+mla"])
    base = roofline.evaluate(grid, {}, breakdown=False).values["ttft"]
    half = roofline.evaluate(grid, {"overlap": 0.5}, breakdown=False).values["ttft"]
    ok = torch.isfinite(base)
    assert bool((half[ok] > base[ok]).all())  # (1 − 0.5)·min(t_c, t_m) > 0 added to every op


def test_decode_candidates_grouped_by_layer_count_give_the_same_bits(monkeypatch):
    # leading dense layers (deepseek-v3: 3 of 61) make 5 candidate stages; decode adds its attention
    # to two groups (q + 1 and q layers) instead of to each candidate. Ungrouped, as before:
    from tensorperf.engine.physics import pipeline

    grid = build_grid(
        model=["deepseek-v3", "gpt-moe-1.8t"],
        hardware=["h200-sxm", "mi355x"],
        weight_dtype="fp8",
        prompt_len=[1024, 32768],
        output_len=[2, 1024],
        batch=[1, 16, 256],
        tp=[1, 8],
        pp=[1, 2, 3, 4, 5, 7, 8, 16, 61],
        dp=[1, 2],
        ep=[1, 8],
    )
    grouped = roofline.evaluate(grid, {}, breakdown=False)
    calls = []

    def each_candidate(mix, candidates):
        calls.append(len(candidates))
        return candidates, [mix.layers[..., i] for i in range(len(candidates))]

    monkeypatch.setattr(pipeline, "by_layer_count", each_candidate)
    plain = roofline.evaluate(grid, {}, breakdown=False)
    assert calls == [5]  # the grouping ran (for the 5 candidates of leading dense layers)
    assert int((grouped.reason == 0).sum()) > 100
    for k in ("tpot", "e2e_latency", "tokens_per_s_per_gpu", "mfu", "mbu"):
        assert torch.equal(grouped.values[k], plain.values[k]), k


def test_simpson_into_its_first_node_gives_the_same_bits(monkeypatch):
    # TPOT's quadrature accumulates into its first node's temporary (first + 4·middle fused: 4·middle
    # is exact); out of place, as for every other quadrature:
    grid = build_grid(**GRIDS["moe+dense+mla"])
    fused = roofline.evaluate(grid, {}, breakdown=False).values["tpot"]
    plain_simpson = phases.simpson
    monkeypatch.setattr(phases, "simpson", lambda a, b, c, into_first=False: plain_simpson(a, b, c))
    assert torch.equal(fused, roofline.evaluate(grid, {}, breakdown=False).values["tpot"])


@pytest.mark.parametrize(
    "wanted",
    [
        ("tokens_per_s_per_user",),
        ("ttft",),
        ("tokens_per_s_per_gpu", "ttft"),
        ("serving_tokens_per_s_per_gpu",),
        ("mfu", "memory_per_gpu"),
        (),
    ],
)
def test_asking_for_some_metrics_computes_them_bit_for_bit_and_skips_the_rest(wanted):
    grid = build_grid(**GRIDS["cp+chunked+micro"])
    every = roofline.evaluate(grid, {}, breakdown=False)
    some = roofline.evaluate(grid, {}, breakdown=False, metrics=wanted)
    assert torch.equal(some.reason, every.reason)
    assert set(wanted) <= set(some.values)
    for k, v in some.values.items():
        assert torch.equal(v, every.values[k]), k
    # exactly what was asked for, and memory and counts (always there: feasibility needs them)
    always = {
        "concurrency",
        "memory_per_gpu",
        "weight_memory_per_gpu",
        "kv_cache_memory_per_gpu",
        "activation_memory_per_gpu",
        "memory_capacity_per_gpu",
        "max_batch",
        "min_gpus_for_capacity",
        "num_gpus",
    }
    assert set(some.values) == set(wanted) | always


@pytest.mark.parametrize("name", sorted(GRIDS))
def test_the_engine_axis_order_changes_no_bit(name, monkeypatch):
    # the engine computes with its axes in EVAL_ORDER and hands back views in the grid's order; in
    # the grid's own order (no permutation) every metric and the reasons are the same
    from tensorperf.axes import DIM_ORDER, EVAL_ORDER

    grid = build_grid(**GRIDS[name])
    assert grid.in_order(EVAL_ORDER)[0].dims != grid.dims  # the test permutes something
    reordered = roofline.evaluate(grid, {}, breakdown=False)
    monkeypatch.setattr(roofline, "EVAL_ORDER", DIM_ORDER)
    plain = roofline.evaluate(grid, {}, breakdown=False)
    assert torch.equal(reordered.reason, plain.reason)
    for k, v in plain.values.items():
        assert reordered.values[k].shape == v.shape, k
        assert torch.equal(reordered.values[k], v), k


def test_overrides_on_the_grid_axes_follow_the_engine_axis_order():
    # an efficiency given per point of the grid (numpy or torch, full rank or right-aligned) is taken
    # in the grid's order, whatever order the engine computes in; with the breakdown the engine runs
    # in the grid's own order, so the two must agree (found by review: numpy arrays were not reordered)
    import numpy as np

    grid = build_grid(model=["llama-3.1-70b", "deepseek-v3"], hardware="h100-sxm", tp=[1, 2, 8], batch=[1, 8, 64])
    assert grid.dims == ("model", "batch", "tp")  # the engine's order puts tp before batch
    along_tp = np.array([0.2, 0.6, 1.0])
    for overlap in (along_tp.reshape(1, 1, 3), along_tp, torch.from_numpy(along_tp)):
        fast = roofline.evaluate(grid, {"overlap": overlap}, breakdown=False).values["tpot"]
        plain = roofline.evaluate(grid, {"overlap": overlap}, breakdown=True).values["tpot"]
        assert torch.equal(fast, plain)
    per_tp = roofline.evaluate(grid, {"overlap": along_tp}, breakdown=False).values["tpot"]
    for i, value in enumerate(along_tp):  # tp's i-th column has the i-th overlap, as a scalar override gives
        uniform = roofline.evaluate(grid, {"overlap": float(value)}, breakdown=False).values["tpot"]
        assert torch.equal(per_tp[..., i], uniform[..., i])
    assert not torch.equal(per_tp, roofline.evaluate(grid, {"overlap": 0.2}, breakdown=False).values["tpot"])
