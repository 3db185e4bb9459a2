"""Streaming reductions (tensorperf.best / pareto / reduce): chunked results equal the unchunked
reductions of a full sweep exactly, for any chunk size; chunks tile the grid in C order."""

import math
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tensorperf as tp
from tensorperf.run.chunks import BYTES_PER_POINT, Chunk, plan, points_for_memory
from tensorperf.run.inputs import build_grid

SETTINGS = settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])

GRID = dict(
    model=["llama-3.1-70b", "mixtral-8x7b"],
    hardware=["h100-sxm", "b200"],
    prompt_len=[1024, 8192],
    batch=[1, 8, 64],
    tp=[1, 2, 4, 8],
    pp=[1, 2, 4],
    ep=[1, 2, 8],
    weight_dtype=["bf16", "fp8"],
)  # 1728 points
WHERE = {"tokens_per_s_per_user": (">=", 20), "ttft": ("<=", 5.0)}


@pytest.fixture(scope="module")
def full():
    return tp.sweep(**GRID)


def _assert_best_equal(got, ref):
    assert set(got.data_vars) == set(ref.data_vars), set(got.data_vars) ^ set(ref.data_vars)
    for v in ref.data_vars:
        np.testing.assert_array_equal(got[v].values, ref[v].values, err_msg=v)


@SETTINGS
@given(
    chunk=st.integers(5, 4000),
    keep=st.sampled_from([(), ("hardware",), ("model", "prompt_len"), ("tp", "ep")]),
    objective=st.sampled_from(["tokens_per_s_per_gpu", "ttft", "tokens_per_s_per_user", "memory_per_gpu"]),
    maximize=st.booleans(),
)
def test_best_streamed_equals_best_of_the_full_sweep(full, chunk, keep, objective, maximize):
    ref = full.tperf.best(objective, where=WHERE, keep=list(keep), maximize=maximize)
    got = tp.best(objective, where=WHERE, keep=keep, maximize=maximize, chunk_points=chunk, **GRID)
    _assert_best_equal(got, ref)


def test_best_one_point_per_chunk_equals_one_chunk(full):
    kw = {**GRID, "model": "mixtral-8x7b", "hardware": "h100-sxm"}
    one = tp.best("tokens_per_s_per_gpu", where=WHERE, chunk_points=10**9, **kw)
    each = tp.best("tokens_per_s_per_gpu", where=WHERE, chunk_points=1, **kw)
    _assert_best_equal(each, one)
    assert bool(one.found) and float(one.tokens_per_s_per_user) >= 20 and float(one.ttft) <= 5.0


def test_best_reports_not_found_for_groups_without_a_candidate():
    got = tp.best(
        "tokens_per_s_per_gpu", where={"tokens_per_s_per_user": (">=", 1e6)}, keep=["hardware"], chunk_points=50, **GRID
    )
    assert not got.found.any()
    assert np.isnan(got.ttft.values).all() and (got.best_tp.values == 0).all()  # (integers: 0 where not found)


@SETTINGS
@given(
    chunk=st.integers(3, 4000),
    over=st.sampled_from([None, ("tp", "pp", "ep", "batch"), ("batch",)]),
    maximize=st.sampled_from([(True, True), (True, False)]),
)
def test_pareto_streamed_equals_the_frontier_table_of_the_full_sweep(full, chunk, over, maximize):
    y = "tokens_per_s_per_gpu" if maximize[1] else "memory_per_gpu"
    tab = full.tperf.pareto_table(
        "tokens_per_s_per_user", y, over=over, where=WHERE, maximize=maximize, extra=["ttft", "num_gpus"]
    )
    got = tp.pareto("tokens_per_s_per_user", y, over=over, where=WHERE, maximize=maximize, chunk_points=chunk, **GRID)
    df = got.to_dataframe().reset_index(drop=True)
    assert len(df) == len(tab) > 0
    for column in tab.columns:
        np.testing.assert_array_equal(df[column].values, tab[column].values, err_msg=column)


def test_zipped_layouts_stream_like_the_sweep():
    kw = dict(
        model="mixtral-8x7b",
        hardware=["h100-sxm", "b200"],
        batch=[1, 16, 128],
        tp=[1, 2, 8, 4],
        ep=[1, 2, 1, 8],
        zipped=["tp", "ep"],
    )
    ds = tp.sweep(**kw)
    ref = ds.tperf.best("tokens_per_s_per_gpu", keep=["hardware"])
    got = tp.best("tokens_per_s_per_gpu", keep=["hardware"], chunk_points=2, **kw)
    _assert_best_equal(got, ref)
    assert set(got.best_tp.values) <= {1, 2, 4, 8}
    tab = ds.tperf.pareto_table()
    df = tp.pareto(chunk_points=3, **kw).to_dataframe().reset_index(drop=True)
    for column in ("hardware", "tp", "ep", "batch", "tokens_per_s_per_user", "tokens_per_s_per_gpu"):
        np.testing.assert_array_equal(df[column].values, tab[column].values, err_msg=column)


def test_float32_and_seed_convention_stream_identically():
    kw = {**GRID, "dtype": "float32"}
    ref = tp.sweep(**kw).tperf.best("tokens_per_s_per_gpu", keep=["model"])
    _assert_best_equal(tp.best("tokens_per_s_per_gpu", keep=["model"], chunk_points=77, **kw), ref)
    seed = dict(
        model="gpt-moe-1.8t",
        hardware="mi300-seed",
        prompt_len=16384,
        batch=16,
        tp=[1, 2, 4, 8],
        ep=[1, 2, 4, 8, 16],
        pp=[1, 2, 4],
        convention="seed",
    )
    ref = tp.sweep(**seed).tperf.best("ttft", maximize=False)
    _assert_best_equal(tp.best("ttft", maximize=False, chunk_points=4, **seed), ref)
    ref = tp.sweep(**seed).tperf.best("ttft", maximize=False, keep=["tp"])  # seed's tpot is a 0-dim tensor
    _assert_best_equal(tp.best("ttft", maximize=False, keep=["tp"], chunk_points=7, **seed), ref)
    tab = tp.sweep(**seed).tperf.pareto_table("tokens_per_s_per_gpu", "ttft", maximize=(True, False))
    df = tp.pareto("tokens_per_s_per_gpu", "ttft", maximize=(True, False), chunk_points=9, **seed).to_dataframe()
    np.testing.assert_array_equal(df["ttft"].values, tab["ttft"].values)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=5), max_points=st.integers(1, 300))
def test_chunks_tile_the_grid_in_c_order(shape, max_points):
    dims = ("prompt_len", "batch", "tp", "pp", "ep")[: len(shape)]
    kw = {d: list(range(1, n + 1)) for d, n in zip(dims, shape)}
    grid = build_grid(model="llama-3.1-8b", hardware="h100-sxm", **kw)
    count, chunks = plan(grid, max_points)
    chunks = list(chunks)
    assert len(chunks) == count
    flat = np.arange(math.prod(shape)).reshape(shape)
    seen = []
    for c in chunks:
        index = tuple(slice(*c.ranges[d]) if d in c.ranges else slice(None) for d in dims)
        block = flat[index]
        assert 1 <= block.size <= max_points
        seen.extend(block.reshape(-1))
    np.testing.assert_array_equal(seen, np.arange(flat.size))  # every point once, in C order


def test_memory_budget_sets_the_chunk_size():
    import torch

    assert points_for_memory("100MB", torch.float64) == 10**8 // BYTES_PER_POINT[torch.float64]
    assert points_for_memory(2**28, torch.float32) == 2**28 // BYTES_PER_POINT[torch.float32]
    assert points_for_memory("2 GiB", torch.float64) == 2**21  # capped at 16 MiB per tensor (speed)
    assert points_for_memory("2 GiB", torch.float32) == 2**22
    assert points_for_memory(1, torch.float64) == 1  # never below one point


@dataclass(frozen=True)
class _Collect:
    """A user reduction: gather every scalar metric of every chunk into full arrays."""

    shape: tuple

    def partial(self, result):
        return result.chunk, {n: result.metric(n).cpu().numpy() for n in result.values} | {
            "infeasible_reason": result.reason.cpu().numpy()
        }

    def merge(self, state, part):
        chunk, arrays = part
        state = state if state is not None else {n: np.zeros(self.shape, a.dtype) for n, a in arrays.items()}
        dims = ("model", "hardware", "prompt_len", "batch", "tp", "cp", "pp", "ep")
        index = tuple(slice(*chunk.ranges[d]) if d in chunk.ranges else slice(None) for d in dims)
        for n, a in arrays.items():
            state[n][index] = a
        return state

    def finish(self, state, grid):
        return state


@SETTINGS
@given(chunk=st.integers(1, 4000), dtype=st.sampled_from(["float64", "float32"]))
def test_every_metric_is_bitwise_identical_across_chunk_sizes(chunk, dtype):
    """Determinism (issue 8): a point's metrics do not depend on the chunk it is evaluated in."""
    kw = dict(
        model=["llama-3.1-8b", "deepseek-v3"],
        hardware=["h100-sxm", "b200"],
        prompt_len=[1024, 32768],
        batch=[1, 8, 64],
        tp=[1, 8],
        cp=[1, 2],
        pp=[1, 2, 4],
        ep=[1, 8, 32],
        dtype=dtype,
        chunk_size=4096,
    )
    ds = tp.sweep(**kw)
    got = tp.reduce(_Collect(tuple(ds.sizes[d] for d in ds.ttft.dims)), chunk_points=chunk, **kw)
    for name, values in got.items():
        np.testing.assert_array_equal(values, ds[name].values, err_msg=name)


def test_a_user_reduction_counts_feasible_points_per_hardware(full):
    @dataclass(frozen=True)
    class FeasiblePerHardware:
        def partial(self, result):
            hw = result.grid.labels["hardware"]
            per = result.feasible.reshape(len(hw), -1).sum(dim=1).tolist()
            return dict(zip(hw, per))

        def merge(self, state, part):
            state = dict(state or {})
            for k, v in part.items():
                state[k] = state.get(k, 0) + v
            return state

        def finish(self, state, grid):
            return state

    got = tp.reduce(FeasiblePerHardware(), chunk_points=100, **GRID)
    expect = full.feasible.sum([d for d in full.feasible.dims if d != "hardware"])
    assert got == {h: int(expect.sel(hardware=h)) for h in GRID["hardware"]}


def test_progress_bar_on_request_and_silent_off_a_terminal(capsys):
    import time

    @dataclass(frozen=True)
    class Slow:
        def partial(self, result):
            time.sleep(0.4)
            return 1

        def merge(self, state, part):
            return (state or 0) + part

        def finish(self, state, grid):
            return state

    small = dict(model="llama-3.1-8b", hardware="h100-sxm", batch=[1, 2, 4, 8])
    assert tp.reduce(Slow(), chunk_points=1, **small) == 4  # progress=None: stderr is not a terminal
    assert capsys.readouterr().err == ""
    assert tp.reduce(Slow(), chunk_points=1, progress=True, **small) == 4
    err = capsys.readouterr().err
    assert "reduce" in err and "4/4" in err


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(memory="lots"), "memory"),
        (dict(memory=-1), "memory"),
        (dict(memory="3XB"), "memory"),
        (dict(chunk_points=0), "chunk_points"),
        (dict(chunk_points=2.5), "chunk_points"),
        (dict(objective="speed"), "objective"),
        (dict(where={"ttft": ("~", 1)}), "where"),
        (dict(where={"ttfx": ("<", 1)}), "where"),
        (dict(where=[("ttft", "<", 1)]), "where"),
        (dict(keep=["colour"]), "keep"),
        (dict(keep=["tp", "tp"]), "keep"),
        (dict(maximize="yes"), "maximize"),
        (dict(progress="sometimes"), "progress"),
        (dict(client=42), "client"),
        (dict(convention="magic"), "convention"),
        (dict(batch=0), "batch"),
    ],
)
def test_bad_streaming_input_is_a_spec_error_naming_the_field(kwargs, words):
    kw = dict(model="llama-3.1-8b", hardware="h100-sxm", batch=[1, 2], tp=[1, 2]) | kwargs
    objective = kw.pop("objective", "tokens_per_s_per_gpu")
    with pytest.raises(tp.SpecError, match=words):
        tp.best(objective, **kw)


def test_bad_pareto_and_reduce_input():
    kw = dict(model="llama-3.1-8b", hardware="h100-sxm", batch=[1, 2], tp=[1, 2])
    with pytest.raises(tp.SpecError, match="both"):
        tp.pareto("ttft", "ttft", **kw)
    with pytest.raises(tp.SpecError, match="over"):
        tp.pareto(over=["hardware"], **kw)
    with pytest.raises(tp.SpecError, match="layout"):
        tp.pareto(model="llama-3.1-8b", hardware=["h100-sxm", "b200"])
    with pytest.raises(tp.SpecError, match="reduction"):
        tp.reduce(object(), **kw)
    with pytest.raises(tp.SpecError, match="maximize"):
        tp.pareto(maximize=(True,), **kw)


def test_chunk_is_a_frozen_record():
    c = Chunk(0, {"tp": (0, 1)})
    with pytest.raises(AttributeError):
        c.index = 1


def test_count_and_best_combined_in_one_pass(full):
    from types import MappingProxyType

    from tensorperf.run.reductions import Best, Combined, Count, kept_shape

    grid = build_grid(**GRID)
    keep = ("hardware", "weight_dtype")
    where = MappingProxyType({"tokens_per_s_per_user": (">=", 20.0)})
    count, best = tp.reduce(
        Combined(
            (
                Count(where, keep, kept_shape(grid, keep)),
                Best("tokens_per_s_per_gpu", where, keep, True, kept_shape(grid, keep)),
            )
        ),
        chunk_points=333,
        **GRID,
    )
    ok = full.feasible & (full.tokens_per_s_per_user >= 20)
    others = [d for d in full.feasible.dims if d not in keep]
    np.testing.assert_array_equal(count.feasible.values, ok.sum(others).transpose(*keep).values)
    assert (count.points.values == full.feasible.size // (2 * 2)).all()  # 1728 / (2 hardware x 2 dtypes)
    _assert_best_equal(best, full.tperf.best("tokens_per_s_per_gpu", where=dict(where), keep=list(keep)))


def test_streaming_keeps_freed_memory_on_glibc():
    import platform

    from tensorperf.run.allocator import keep_freed_memory

    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert keep_freed_memory() is True and keep_freed_memory() is True  # once per process, then cached
    else:
        assert keep_freed_memory() in (True, False)


def test_sweep_without_breakdown_has_the_same_scalar_metrics_bit_for_bit(full):
    scalar = tp.sweep(**GRID, breakdown=False)
    assert not [v for v in scalar.data_vars if "op" in scalar[v].dims]
    assert set(scalar.data_vars) == {v for v in full.data_vars if "op" not in full[v].dims}
    for v in scalar.data_vars:
        np.testing.assert_array_equal(scalar[v].values, full[v].values, err_msg=v)
    with pytest.raises(tp.SpecError, match="breakdown"):
        tp.sweep(**GRID, breakdown="no")


def test_a_sweep_larger_than_memory_is_refused_with_the_streaming_alternatives(monkeypatch):
    import os

    from tensorperf.interface import api

    # 1,728 points x 2,600 B = 4.5 MB with the breakdown; pretend the machine has 4 MiB (4096 B x 1024 pages)
    real = os.sysconf
    monkeypatch.setattr(
        os, "sysconf", lambda name: {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": 1024}.get(name) or real(name)
    )
    with pytest.raises(tp.SpecError, match=r"1,728 points.*tensorperf.best\(\)"):
        tp.sweep(**GRID)
    assert 1728 * api.SWEEP_BYTES_PER_POINT[False] < 4 * 2**20  # the scalar metrics fit: no error
    assert tp.sweep(**GRID, breakdown=False).ttft.size == 1728


def test_reductions_evaluate_only_the_metrics_they_name_and_report_every_metric_of_the_winners():
    from tensorperf.run.reductions import Best, Combined, Count, Pareto, kept_shape

    grid = build_grid(**GRID)
    best = Best("tokens_per_s_per_gpu", WHERE, ("hardware",), True, kept_shape(grid, ("hardware",)))
    assert best.metrics == ("tokens_per_s_per_gpu", "tokens_per_s_per_user", "ttft")
    assert Pareto(
        "tokens_per_s_per_user", "memory_per_gpu", ("tp",), {"feasible": ("==", 1)}, (True, False)
    ).metrics == ("tokens_per_s_per_user", "memory_per_gpu")
    assert Combined((Count(WHERE, (), ()), best)).metrics == ("tokens_per_s_per_user", "ttft", "tokens_per_s_per_gpu")

    @dataclass(frozen=True)
    class SeenMetrics:  # a user reduction that names no metrics: every chunk carries all of them
        def partial(self, result):
            return set(result.values)

        def merge(self, state, part):
            return part if state is None else state & part

        def finish(self, state, grid):
            return state

    seen = tp.reduce(SeenMetrics(), chunk_points=500, **GRID)
    assert {"mbu", "serving_step_time", "e2e_latency"} <= seen
    assert Combined((SeenMetrics(), best)).metrics is None
    # the winner's every metric, although its chunks computed three of them (and the memory ones)
    got = tp.best("tokens_per_s_per_gpu", where=WHERE, keep=["hardware"], chunk_points=500, **GRID)
    assert {"mbu", "serving_step_time", "e2e_latency"} <= set(got.data_vars)
    front = tp.pareto(chunk_points=500, **GRID)
    assert {"mbu", "serving_step_time", "e2e_latency"} <= set(front.data_vars)


@SETTINGS
@given(chunk=st.integers(1, 3000), breakdown=st.booleans())
def test_a_sweep_in_chunks_equals_the_sweep_in_one_pass(full, chunk, breakdown):
    # sweep(chunk_points=...) evaluates chunk by chunk (what client= does on a cluster's workers) and
    # assembles the same Dataset, bit for bit
    one = full if breakdown else tp.sweep(**GRID, breakdown=False)
    got = tp.sweep(**GRID, breakdown=breakdown, chunk_points=chunk)
    assert list(got.data_vars) == list(one.data_vars) and got.attrs == one.attrs
    for v in one.data_vars:
        assert got[v].dims == one[v].dims, v
        np.testing.assert_array_equal(got[v].values, one[v].values, err_msg=v)


def test_bad_chunked_sweep_input():
    with pytest.raises(tp.SpecError, match="chunk_points"):
        tp.sweep(**GRID, chunk_points=0)
    with pytest.raises(tp.SpecError, match="client"):
        tp.sweep(**GRID, client=42)
