"""The DeepSeek-V3 GB200 disaggregation + MTP example (examples/deepseek_gb200_disagg_mtp.py) on its
reduced grid: its frontiers are frontiers, MTP pays where a step is memory-bound, a disaggregated
deployment stays within its pools' own rates, and the plot is written."""

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

import tensorperf as tp
from tensorperf.analysis import speculative_rows

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "deepseek_gb200_disagg_mtp.py"


def _load():
    spec = importlib.util.spec_from_file_location("deepseek_gb200_disagg_mtp", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def example():
    module = _load()
    data = module.sweeps(small=True)
    return module, data, module.frontiers(data)


def _pairs(module):
    """Every (prefill, decode, ratio) pair of the small disaggregated grid, held in memory."""
    a = module.axes(small=True)
    return tp.disagg(
        prefill=a["prefill"],
        decode=a["layouts"],
        ratio=a["ratio"],
        where={"num_gpus": ("<=", module.DOMAIN)},
        **a["shared"],
    )


def test_each_frontier_falls_as_interactivity_rises_and_is_the_brute_force_envelope(example):
    module, data, fronts = example
    X, Y = module.X, module.Y
    assert list(fronts) == list(module.SCENARIOS)
    for name, front in fronts.items():
        x, y = front[X].to_numpy(), front[Y].to_numpy()
        assert len(front) >= 5 and np.all(np.isfinite(x) & np.isfinite(y)), name
        assert np.all(np.diff(x) >= 0) and np.all(np.diff(y) <= 0), name  # more per user, less per GPU
        # each frontier point is the most tokens/s/GPU of any point at least as interactive (numpy
        # on the swept points, not the library's reduction)
        xs, ys = data[name][X].values.ravel(), data[name][Y].values.ravel()
        ok = np.isfinite(xs) & np.isfinite(ys)
        for u, v in zip(x, y):
            assert v == ys[ok & (xs >= u)].max(), (name, u)
        for floor in module.FLOORS:  # the table's rows are ds.tperf.best's winners
            row = module.best_at(front, floor)
            best = data[name].tperf.best(Y, where={X: (">=", floor)})
            if row is None:
                assert not bool(best.found) and x.max() < floor
            else:
                assert row[Y] == float(best[Y]) and row[X] >= floor


def test_mtp_is_at_or_above_no_mtp_where_decode_is_memory_bound(example):
    # alpha = 0.875 (the preset's sourced default) at the MTP module's own position, 0.76x less at each
    # further one (mtp_reuse_decay), k = 3 draft tokens: a step yields
    # E = 1 + 0.875 + 0.875²·0.76 + 0.875³·0.76³ = 2.750954625 tokens. Where a step
    # is memory-bound (few requests: high interactivity) verifying 4 tokens per request costs about
    # one decode step (the weights are read once), so TPOT falls by nearly E: MTP gives more tokens/s
    # per user at the same tokens/s per GPU. Since the verification is never cheaper than a 1-token
    # step and drafting costs time, the fastest MTP point is at most E times the fastest without.
    module, _, fronts = example
    assert module.axes()["mtp"] == {"speculative": "mtp", "spec_tokens": 3}
    # NVIDIA's DeepSeek-R1 NVFP4 checkpoint: experts and MLPs nvfp4, MLA attention block fp8
    assert module.axes()["shared"]["recipe"] == "deepseek-nvfp4"
    alpha = tp.presets.model("deepseek-v3").mtp_acceptance
    assert alpha == 0.875
    e = 1 + alpha + alpha**2 * 0.76 + alpha**3 * 0.76**3
    assert e == pytest.approx(2.750954625, rel=1e-12)
    one = dict(**module.axes()["shared"], **module.axes()["mtp"], tp=8, batch=1, breakdown=False)
    # the same as the constant acceptance that gains e tokens at k = 3 (what validate passes)
    flat = speculative_rows.with_acceptance({"spec_tokens": 3, "acceptance": None}, tp.presets.model("deepseek-v3"))
    assert sum(flat["acceptance"] ** i for i in range(4)) == pytest.approx(e, rel=1e-12)
    default = float(tp.sweep(**one).serving_tpot)
    assert default == pytest.approx(float(tp.sweep(**one, acceptance=flat["acceptance"]).serving_tpot), rel=1e-12)
    X, Y = module.X, module.Y
    for plain, mtp in (("aggregated", "aggregated + MTP"), ("disaggregated", "disaggregated + MTP")):
        for u in fronts[plain][X][fronts[plain][X] >= 40]:  # (at 25 tok/s/user disaggregated decode is compute-heavy)
            assert module.best_at(fronts[mtp], u)[Y] >= module.best_at(fronts[plain], u)[Y], (mtp, u)
        fastest = fronts[mtp][X].max() / fronts[plain][X].max()
        assert 0.85 * e < fastest <= e, mtp  # (the drafter and the wider verification cost < 15%)
        assert fronts[mtp][X].max() >= 200 > fronts[plain][X].max()  # tok/s/user: ~250 vs ~100


def test_disaggregated_frontier_is_the_frontier_of_every_pair_within_the_pools_rates(example):
    module, _, fronts = example
    X, Y = module.X, module.Y
    pairs = _pairs(module)
    # tokens/s per user depends on the decode configuration only: the streamed best per decode
    # configuration has the frontier of every pair (the pools' dims and ratio are the default over)
    every = pairs.tperf.pareto_table(X, Y)
    for col in (X, Y):
        np.testing.assert_allclose(np.unique(every[col]), np.unique(fronts["disaggregated"][col]), rtol=1e-12)
    # per GPU, a deployment never beats either pool's own rate, nor T / (G_p/R_p + G_d/R_d), the
    # balanced ratio's (docs/model.md §3.15); here on every feasible pair
    t_out = module.WORKLOAD["output_len"]
    r_p = pairs.prefill_concurrency / pairs.prefill_batch_time  # requests/s of one prefill instance
    r_d = pairs.decode_concurrency / ((t_out - 1) * pairs.decode_tpot)  # of one decode instance
    g_p, g_d = pairs.prefill_num_gpus, pairs.decode_num_gpus
    y = pairs[Y].where(pairs.feasible)
    assert int(pairs.feasible.sum()) > 1000
    slack = 1 + 1e-12
    assert bool(((y <= r_p / g_p * t_out * slack) | y.isnull()).all())
    assert bool(((y <= r_d / g_d * t_out * slack) | y.isnull()).all())
    assert bool(((y <= t_out / (g_p / r_p + g_d / r_d) * slack) | y.isnull()).all())
    assert bool(((pairs.num_gpus <= module.DOMAIN) | ~pairs.feasible).all())


def test_grids_fit_one_nvlink_domain():
    module = _load()
    full = module.axes()
    lay = list(zip(*(full["layouts"][k] for k in module.LAYOUT)))
    assert len(lay) == len(set(lay)) == 102 * 11
    assert all(t * d <= 64 and (t * d) % e == 0 and 256 % e == 0 and b % d == 0 for t, d, e, b in lay)
    ratios = [tuple(map(int, r.split(":"))) for r in full["ratio"]]
    assert all(math.gcd(x, y) == 1 and x + y <= module.DOMAIN // module.MIN_GPUS for x, y in ratios)
    assert len(ratios) == 395


def test_main_prints_the_table_and_writes_the_png(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    module = _load()
    png = tmp_path / "front.png"
    module.main(small=True, png=png)
    assert png.stat().st_size > 10_000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = capsys.readouterr().out
    assert "Best output tokens/s per GPU at >= N tokens/s per user" in out and "N = 100" in out
    for name in module.SCENARIOS:  # a row of the summary, and one per floor with its layout
        assert out.count(f"\n{name:<20} ") == 1 + len(module.FLOORS)
