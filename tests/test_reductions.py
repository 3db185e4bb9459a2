"""Vectorized reductions (best under constraints, Pareto frontier) equal brute-force loops."""

import itertools

import numpy as np
import pytest
import xarray as xr

import tensorperf as tp
import tensorperf.interface.accessor  # noqa: F401  (registers Dataset.tperf)
from tensorperf.interface.reductions import best, constraint_mask, pareto, pareto_table

AXES = dict(
    model=["llama-3.1-70b", "mixtral-8x7b"],
    hardware=["h100-sxm", "b200"],
    weight_dtype="fp8",
    prompt_len=2048,
    output_len=512,
    batch=[1, 4, 16, 64, 256],
    tp=[1, 2, 4, 8],
    pp=[1, 2],
    dp=[1, 2],
    ep=[1, 2],
)
WHERE = {"tokens_per_s_per_user": (">=", 20), "ttft": ("<=", 2.0)}
KEEP = ["model", "hardware"]
OPS = {">=": np.greater_equal, ">": np.greater, "<=": np.less_equal, "<": np.less, "==": np.equal}


@pytest.fixture(scope="module")
def ds():
    return tp.sweep(**AXES)


def _groups(ds, keep, var):
    """({kept dim: label}, the variable's other dims) for each combination of the kept dims."""
    rest = [d for d in ds[var].dims if d not in keep]
    for labels in itertools.product(*(ds[k].values for k in keep)):
        yield dict(zip(keep, labels)), rest


def _flat(ds, sel, rest, name):
    """One group's values of ``name`` flattened over ``rest`` in C order."""
    return ds[name].sel(sel).transpose(*rest).values.reshape(-1)


def _brute_mask(ds, sel, rest, where):
    ok = _flat(ds, sel, rest, "feasible").astype(bool)
    for name, (cmp, value) in where.items():
        ok = ok & OPS[cmp](_flat(ds, sel, rest, name), value)
    return ok


# --------------------------------------------------------------------------- best


@pytest.mark.parametrize("objective,maximize", [("tokens_per_s_per_gpu", True), ("e2e_latency", False)])
def test_best_equals_brute_force(ds, objective, maximize):
    res = best(ds, objective, where=WHERE, keep=KEEP, maximize=maximize)
    assert res.found.dims == tuple(KEEP)
    for sel, rest in _groups(ds, KEEP, objective):
        ok = _brute_mask(ds, sel, rest, WHERE)
        values = _flat(ds, sel, rest, objective)
        win, win_i = None, None
        for i in range(values.size):  # the brute-force loop over the flattened group
            if ok[i] and (win is None or (values[i] > win if maximize else values[i] < win)):
                win, win_i = values[i], i
        got = res.sel(sel)
        if win is None:
            assert not bool(got.found)
            assert np.isnan(float(got[objective]))
            continue
        assert bool(got.found)
        assert float(got[objective]) == win
        where_idx = np.unravel_index(win_i, [ds.sizes[d] for d in rest])
        for dim, i in zip(rest, where_idx):
            assert float(got[f"best_{dim}"]) == ds[dim].values[i], (sel, dim)
        # the winner's other metrics are those of that point and it meets the constraints
        point = {**sel, **{d: ds[d].values[i] for d, i in zip(rest, where_idx)}}
        assert float(got.ttft) == float(ds.ttft.sel(point)) <= 2.0
        assert float(got.tokens_per_s_per_user) >= 20


def test_best_all_groups_found_on_real_sweep(ds):
    res = ds.tperf.best("tokens_per_s_per_gpu", where=WHERE, keep=KEEP)
    xr.testing.assert_identical(res, best(ds, "tokens_per_s_per_gpu", where=WHERE, keep=KEEP))
    assert bool(res.found.all())


def test_best_nothing_qualifies():
    res = best(tp.sweep(**AXES), "tokens_per_s_per_gpu", where={"ttft": ("<", 0.0)}, keep=KEEP)
    assert not bool(res.found.any())
    assert bool(res.tokens_per_s_per_gpu.isnull().all())
    # integer results stay integers: 0 (no degree, no GPU) where no point qualifies
    assert res.best_tp.dtype == np.int64 and (res.best_tp.values == 0).all()
    assert res.num_gpus.dtype == np.int64 and (res.num_gpus.values == 0).all()


def test_best_reports_zipped_inputs():
    ds = tp.sweep(
        model="llama-3.1-70b",
        hardware="h100-sxm",
        weight_dtype="fp8",
        prompt_len=2048,
        output_len=512,
        batch=[1, 16, 64],
        tp=[1, 2, 4, 8],
        pp=[1, 1, 2, 2],
        zipped=["tp", "pp"],
    )
    res = best(ds, "tokens_per_s_per_gpu")
    flat = ds.tokens_per_s_per_gpu.where(ds.feasible).transpose("point", "batch").values
    i, j = np.unravel_index(np.nanargmax(flat), flat.shape)
    assert (int(res.best_tp), int(res.best_pp), int(res.best_batch)) == (
        ds.tp.values[i],
        ds.pp.values[i],
        ds.batch.values[j],
    )


# --------------------------------------------------------------------------- pareto


def _brute_frontier(xv, yv, ok, maximize=(True, True)):
    """O(n^2) dominance check: p is out when some other candidate is >= in both and > in one."""
    xs = xv if maximize[0] else -xv
    ys = yv if maximize[1] else -yv
    on = np.zeros(xv.size, dtype=bool)
    for p in range(xv.size):
        if not ok[p]:
            continue
        on[p] = not any(
            ok[q] and xs[q] >= xs[p] and ys[q] >= ys[p] and (xs[q] > xs[p] or ys[q] > ys[p]) for q in range(xv.size)
        )
    return on


@pytest.mark.parametrize(
    "x,y,maximize,where",
    [
        ("tokens_per_s_per_user", "tokens_per_s_per_gpu", (True, True), None),
        ("tokens_per_s_per_user", "tokens_per_s_per_gpu", (True, True), WHERE),
        ("ttft", "tokens_per_s_per_gpu", (False, True), {"tokens_per_s_per_user": (">", 10)}),
    ],
)
def test_pareto_equals_brute_force(ds, x, y, maximize, where):
    front = pareto(ds, x, y, where=where, maximize=maximize)
    over = ["batch", "tp", "pp", "dp", "ep"]
    assert front.on_frontier.dims == (*KEEP, "point")
    assert front.sizes["point"] == int(np.prod([ds.sizes[d] for d in over]))
    n_on = 0
    for sel, rest in _groups(ds, KEEP, x):
        assert rest == over
        xv, yv = _flat(ds, sel, rest, x), _flat(ds, sel, rest, y)
        ok = _brute_mask(ds, sel, rest, where or {})
        expected = _brute_frontier(xv, yv, ok, maximize)
        got = front.sel(sel)
        np.testing.assert_array_equal(got.on_frontier.values, expected, err_msg=str(sel))
        np.testing.assert_array_equal(got[x].values, xv)
        assert bool(got.found) == bool(ok.any())
        n_on += int(expected.sum())
        # the point coordinates are the layout of each point
        i = int(np.flatnonzero(expected)[0])
        point = {**sel, **{d: int(got[d].values[i]) for d in over}}
        assert float(ds[y].sel(point)) == float(got[y].values[i])
    assert n_on > 4


def test_pareto_table_matches_frontier(ds):
    front = pareto(ds, where=WHERE)
    table = ds.tperf.pareto_table(where=WHERE, extra=["ttft"])
    assert list(table.columns) == [
        *KEEP,
        "batch",
        "tp",
        "pp",
        "dp",
        "ep",
        "tokens_per_s_per_user",
        "tokens_per_s_per_gpu",
        "ttft",
    ]
    assert len(table) == int(front.on_frontier.sum())
    assert (table.ttft <= 2.0).all() and (table.tokens_per_s_per_user >= 20).all()
    for _, rows in table.groupby(["model", "hardware"], sort=False):
        assert rows.tokens_per_s_per_user.is_monotonic_increasing
        assert rows.tokens_per_s_per_gpu.is_monotonic_decreasing  # a frontier trades one for the other
        for rec in rows.to_dict("records"):
            point = {k: rec[k] for k in ("model", "hardware", "batch", "tp", "pp", "dp", "ep")}
            assert float(ds.ttft.sel(point)) == rec["ttft"]
    assert list(dict.fromkeys(table.model)) == AXES["model"]  # the Dataset's order, not alphabetical
    xr.testing.assert_identical(ds.tperf.pareto(where=WHERE), front)


def test_pareto_over_a_subset_keeps_the_rest():
    ds = tp.sweep(model="mixtral-8x7b", hardware="h100-sxm", batch=[1, 8, 64], tp=[1, 2, 4, 8], pp=[1, 2])
    front = pareto(ds, over=["tp", "pp"])
    assert front.on_frontier.dims == ("batch", "point") and front.sizes["point"] == 8
    for b in ds.batch.values:
        one = ds.sel(batch=b)
        ok = one.feasible.transpose("tp", "pp").values.reshape(-1)
        xv = one.tokens_per_s_per_user.transpose("tp", "pp").values.reshape(-1)
        yv = one.tokens_per_s_per_gpu.transpose("tp", "pp").values.reshape(-1)
        np.testing.assert_array_equal(front.on_frontier.sel(batch=b).values, _brute_frontier(xv, yv, ok))


def test_pareto_default_over_includes_zipped_layouts():
    ds = tp.sweep(
        model="llama-3.1-70b",
        hardware="h100-sxm",
        prompt_len=[512, 2048],
        batch=[1, 16, 64],
        tp=[2, 4, 8, 8],
        pp=[1, 1, 1, 2],
        zipped=["tp", "pp"],
    )
    front = pareto(ds)
    assert front.on_frontier.dims == ("prompt_len", "point") and front.sizes["point"] == 12
    assert front.tp.dims == ("point",) and front.batch.dims == ("point",)
    table = pareto_table(ds)
    assert set(table.columns) >= {"prompt_len", "tp", "pp", "batch"} and len(table) > 0


def _tiny(x, y, feasible=None):
    """A one-group Dataset over (tp, batch) with the given 2x3 values."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    data = {"tokens_per_s_per_user": (("tp", "batch"), x), "tokens_per_s_per_gpu": (("tp", "batch"), y)}
    if feasible is not None:
        data["feasible"] = (("tp", "batch"), np.asarray(feasible, bool))
    return xr.Dataset(data, coords={"tp": [1, 2], "batch": [1, 8, 64]})


def test_pareto_hand_made():
    #            batch=1     batch=8     batch=64          (x = tokens/s/user, y = tokens/s/GPU)
    # tp=1     (10, 100)   ( 6, 300)   ( 2, 500)
    # tp=2     (12,  90)   ( 7, 250)   ( 3, 200)
    # Expected frontier (x descending): (12, 90) tp2/b1, (10, 100) tp1/b1, (7, 250) tp2/b8,
    # (6, 300) tp1/b8, (2, 500) tp1/b64. (3, 200) tp2/b64 is dominated by (6, 300).
    ds = _tiny([[10, 6, 2], [12, 7, 3]], [[100, 300, 500], [90, 250, 200]])
    front = pareto(ds)
    assert front.attrs["over"] == "['tp', 'batch']"
    on = front.on_frontier.values
    got = sorted(zip(front.tp.values[on].tolist(), front.batch.values[on].tolist()))
    assert got == [(1, 1), (1, 8), (1, 64), (2, 1), (2, 8)]
    table = pareto_table(ds)
    assert table.tokens_per_s_per_user.tolist() == [2, 6, 7, 10, 12]
    assert table.tokens_per_s_per_gpu.tolist() == [500, 300, 250, 100, 90]
    assert table[["tp", "batch"]].values.tolist() == [[1, 64], [1, 8], [2, 8], [1, 1], [2, 1]]
    # minimizing y instead: the frontier is the high-x, low-y corner: (12, 90) only
    mini = pareto(ds, maximize=(True, False))
    assert mini.on_frontier.values.tolist() == [False] * 3 + [True, False, False]


def test_pareto_ties():
    # tp=1: (5, 3) (5, 1) (6, 3)      (6, 3) dominates (5, 3): equal y, larger x
    # tp=2: (4, 7) (4, 7) (4, 2)      the two (4, 7) tie exactly: both kept; (4, 2) out (equal x, worse y)
    # Expected frontier: (6, 3) tp1/b64 and both (4, 7).
    ds = _tiny([[5, 5, 6], [4, 4, 4]], [[3, 1, 3], [7, 7, 2]])
    front = pareto(ds)
    assert front.on_frontier.values.tolist() == [False, False, True, True, True, False]
    xv = ds.tokens_per_s_per_user.values.reshape(-1)
    yv = ds.tokens_per_s_per_gpu.values.reshape(-1)
    np.testing.assert_array_equal(front.on_frontier.values, _brute_frontier(xv, yv, np.ones(6, bool)))
    # infeasible points and points failing `where` neither join nor block the frontier
    ds2 = _tiny([[5, 5, 6], [4, 4, 4]], [[3, 1, 3], [7, 7, 2]], feasible=[[1, 1, 0], [1, 0, 1]])
    assert pareto(ds2).on_frontier.values.tolist() == [True, False, False, True, False, False]
    got = pareto(ds, where={"tokens_per_s_per_gpu": ("<", 7)}).on_frontier.values.tolist()
    assert got == [False, False, True, False, False, False]  # (6,3) dominates (4,2) too


def test_random_ties_match_brute_force():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 4, size=(6, 2, 3)).astype(float)  # few distinct values: many ties
    y = rng.integers(0, 4, size=(6, 2, 3)).astype(float)
    feasible = rng.random((6, 2, 3)) < 0.8
    ds = xr.Dataset(
        {"a": (("g", "tp", "batch"), x), "b": (("g", "tp", "batch"), y), "feasible": (("g", "tp", "batch"), feasible)},
        coords={"g": np.arange(6), "tp": [1, 2], "batch": [1, 2, 4]},
    )
    for maximize in [(True, True), (False, True), (False, False)]:
        front = pareto(ds, "a", "b", maximize=maximize)
        for g in range(6):
            expected = _brute_frontier(x[g].reshape(-1), y[g].reshape(-1), feasible[g].reshape(-1), maximize)
            np.testing.assert_array_equal(front.on_frontier.values[g], expected, err_msg=f"{g} {maximize}")


def test_all_infeasible_group():
    ds = tp.sweep(model=["llama-3.1-70b", "llama-3.1-8b"], hardware="h100-sxm", batch=[1, 8, 64])
    assert not bool(ds.feasible.sel(model="llama-3.1-70b").any())  # 140 GB of bf16 weights on one 80 GB GPU
    front = pareto(ds)
    assert front.found.values.tolist() == [False, True]
    assert not bool(front.on_frontier.sel(model="llama-3.1-70b").any())
    assert bool(front.on_frontier.sel(model="llama-3.1-8b").any())
    res = best(ds, "tokens_per_s_per_gpu", keep=["model"])
    assert res.found.values.tolist() == [False, True]
    table = pareto_table(ds)
    assert set(table.model) == {"llama-3.1-8b"}
    empty = pareto_table(ds.sel(model=["llama-3.1-70b"]))
    assert len(empty) == 0 and "tokens_per_s_per_gpu" in empty.columns


# --------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    "call,words",
    [
        (lambda ds: best(ds, "tokens_per_gpu"), "tokens_per_gpu"),
        (lambda ds: best(ds, "tokens_per_s_per_gpu", keep=["modle"]), "modle"),
        (lambda ds: best(ds, "tokens_per_s_per_gpu", keep=KEEP + ["batch", "tp", "pp", "dp", "ep"]), "nothing"),
        (lambda ds: best(ds, "tokens_per_s_per_gpu", where={"ttfts": ("<=", 2)}), "ttfts"),
        (lambda ds: best(ds, "tokens_per_s_per_gpu", where={"ttft": ("=>", 2)}), "ttft"),
        (lambda ds: best(ds, "tokens_per_s_per_gpu", where={"ttft": ("<=", "2")}), "ttft"),
        (lambda ds: best(ds, "tokens_per_s_per_gpu", where={"ttft": 2.0}), "ttft"),
        (lambda ds: best(ds, "tokens_per_s_per_gpu", where={"ttft": ("<=", float("nan"))}), "ttft"),
        (lambda ds: best(ds, "tokens_per_s_per_gpu", where={"decode_op_time": ("<=", 1)}), "decode_op_time"),
        (lambda ds: best(ds, "tokens_per_s_per_gpu", where=[("ttft", "<=", 2)]), "where"),
        (lambda ds: best(ds, "tokens_per_s_per_gpu", maximize="yes"), "maximize"),
        (lambda ds: pareto(ds, x="tokens_per_user"), "tokens_per_user"),
        (lambda ds: pareto(ds, y="tok_per_gpu"), "tok_per_gpu"),
        (lambda ds: pareto(ds, x="ttft", y="ttft"), "ttft"),
        (lambda ds: pareto(ds, over=["tp", "bacth"]), "bacth"),
        (lambda ds: pareto(ds, over=["tp", "tp"]), "tp"),
        (lambda ds: pareto(ds, over=[]), "over"),
        (lambda ds: pareto(ds, where={"ttft": (">>", 1)}), "ttft"),
        (lambda ds: pareto(ds, maximize=True), "maximize"),
        (lambda ds: pareto(ds.sel(batch=1, tp=1, pp=1, dp=1, ep=1)), "over"),
        (lambda ds: pareto_table(ds, extra=["ttfx"]), "ttfx"),
        (lambda ds: pareto_table(ds, extra=["decode_op_time"]), "decode_op_time"),
        (lambda ds: ds.tperf.pareto(over=["hw"]), "hw"),
        (lambda ds: ds.tperf.best("ttft", keep=["op"]), "op"),
        (lambda ds: constraint_mask(ds, {"feasable": ("==", 1)}), "feasable"),
    ],
)
def test_bad_inputs_name_the_field(ds, call, words):
    with pytest.raises(tp.SpecError, match=words):
        call(ds)


def test_unknown_names_suggest_close_ones(ds):
    with pytest.raises(tp.SpecError, match="Did you mean 'ttft'"):
        best(ds, "tokens_per_s_per_gpu", where={"ttfts": ("<=", 2)})


# --------------------------------------------------------------------------- integer results (issue 20)

COUNTS = ("num_gpus", "max_batch", "min_gpus_for_capacity")


def test_sweep_counts_are_integers(ds):
    for name in COUNTS:
        assert ds[name].dtype == np.int64, name
    # GPUs = tp·pp·dp (cp = 1): 8·2·2 = 32 at the largest layout
    assert int(ds.num_gpus.max()) == 32 and ds.num_gpus.sel(tp=4, pp=2, dp=1).values.flat[0] == 8
    for dim in ("batch", "tp", "pp", "dp", "ep", "prompt_len", "output_len"):
        assert ds[dim].dtype == np.int64, dim


def _integer_best(res, dims):
    for dim in dims:
        assert res[f"best_{dim}"].dtype == np.int64, dim
    for name in COUNTS:
        assert res[name].dtype == np.int64, name
    assert res.found.dtype == bool


def test_best_and_pareto_give_integer_coordinates_and_counts(ds):
    where = {"tokens_per_s_per_user": (">=", 200)}  # Llama-70B reaches 133-139 tok/s/user, Mixtral 472-556
    kw = dict(where=where, keep=KEEP)
    in_memory = best(ds, "tokens_per_s_per_gpu", **kw)
    streamed = tp.best("tokens_per_s_per_gpu", chunk_points=97, **kw, **AXES)
    for res in (in_memory, streamed):
        _integer_best(res, ("batch", "tp", "pp", "dp", "ep"))
        found = res.found.values
        assert found.any() and not found.all()
        assert (res.best_tp.values[~found] == 0).all() and (res.best_tp.values[found] >= 1).all()
        # the winner's GPUs are its layout's: tp·pp·dp
        gpus = res.best_tp.values * res.best_pp.values * res.best_dp.values
        np.testing.assert_array_equal(res.num_gpus.values[found], gpus[found])
    xr.testing.assert_identical(in_memory.drop_attrs(), streamed.drop_attrs())
    front = pareto(ds)
    for dim in ("batch", "tp", "pp", "dp", "ep"):
        assert front[dim].dtype == np.int64, dim
    table = pareto_table(ds, extra=["num_gpus"])
    assert table.num_gpus.dtype == np.int64 and table.tp.dtype == np.int64
    streamed = tp.pareto(chunk_points=97, **AXES)
    for name in ("batch", "tp", "pp", "dp", "ep", *COUNTS):
        assert streamed[name].dtype == np.int64, name
    np.testing.assert_array_equal(streamed.num_gpus.values, table.num_gpus.values)


def test_best_keeps_float_inputs_and_positions_as_their_kind():
    # a rate stays a float; the position on a zipped dim and the zipped counts are integers
    ds = tp.sweep(
        model="llama-3.1-8b",
        hardware="h100-sxm",
        batch=16,
        tp=[1, 2],
        pp=[1, 2],
        zipped=["tp", "pp"],
        request_rate=[0.5, 1.5],
        breakdown=False,
    )
    res = best(ds, "serving_tokens_per_s_per_gpu")
    assert res.best_request_rate.dtype == np.float64 and float(res.best_request_rate) in (0.5, 1.5)
    assert res.best_point.dtype == np.int64 and res.best_tp.dtype == np.int64 and res.best_pp.dtype == np.int64
    i = int(res.best_point)
    assert (int(res.best_tp), int(res.best_pp)) == (ds.tp.values[i], ds.pp.values[i])


def test_best_of_a_single_point_says_to_sweep_something():
    ds = tp.sweep(model="llama-3.1-8b", hardware="h100-sxm")
    with pytest.raises(tp.SpecError, match="has no swept dimension.*tp=\\[1, 2, 4, 8\\]"):
        best(ds, "tokens_per_s_per_gpu")
