"""Disaggregated prefill/decode (tp.disagg, `tensorperf disagg`, docs/model.md §3.15) and the
disaggregated rows of the measurement tables."""

import io
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorperf as tp
from tensorperf.analysis import disagg_rows, fidelity
from tensorperf.engine.masks import Reason
from tensorperf.engine.physics import disagg as physics
from tensorperf.interface import disaggregated
from tensorperf.interface.cli import main

DATA = Path(__file__).resolve().parents[1] / "data"
LLAMA = dict(model="llama-3.1-8b", hardware="h100-sxm", prompt_len=1024, output_len=128)


@pytest.fixture(scope="module")
def pairs():
    return tp.disagg(
        prefill={"tp": [1, 2], "batch": [1, 8]},
        decode={"tp": [1, 2], "batch": [16, 128]},
        ratio=["balanced", "1:8", "8:1", "2:3"],
        **LLAMA,
    )


def _pool_rates(pairs):
    """Each pool's own requests/s per instance, from the pools' own sweeps (not from tp.disagg)."""
    p = tp.sweep(**{**LLAMA, "output_len": 1}, tp=[1, 2], batch=[1, 8], breakdown=False)
    d = tp.sweep(**LLAMA, tp=[1, 2], batch=[16, 128], breakdown=False)
    r_p = (p.concurrency / p.ttft_max).rename(batch="prefill_batch", tp="prefill_tp")
    r_d = (d.concurrency / ((LLAMA["output_len"] - 1) * d.tpot)).rename(batch="decode_batch", tp="decode_tp")
    g_p = p.num_gpus.rename(batch="prefill_batch", tp="prefill_tp")
    g_d = d.num_gpus.rename(batch="decode_batch", tp="decode_tp")
    return r_p, r_d, g_p, g_d


def _same(a, b):
    """Labelled arrays equal to 1e-12 (each broadcast to both's dims, in one order)."""
    a, b = xr.broadcast(a, b)
    np.testing.assert_allclose(a.values, b.transpose(*a.dims).values, rtol=1e-12)


# --------------------------------------------------------------------------------- the tests


def test_a_ratio_where_one_pool_saturates_gives_that_pools_rate(pairs):
    r_p, r_d, _, _ = _pool_rates(pairs)
    one_prefill = pairs.sel(ratio="1:8")  # 1 prefill instance feeding 8 decode instances
    one_decode = pairs.sel(ratio="8:1")
    prefill_bound = 1 * r_p < 8 * r_d
    decode_bound = 1 * r_d < 8 * r_p
    assert bool(prefill_bound.any()) and bool(decode_bound.any())
    _same(one_prefill.serving_requests_per_s.where(prefill_bound), (1 * r_p).where(prefill_bound))
    _same(one_decode.serving_requests_per_s.where(decode_bound), (1 * r_d).where(decode_bound))
    # the saturated pool is fully busy, the other less
    assert np.all(one_prefill.prefill_utilization.where(prefill_bound).fillna(1) == 1)
    assert np.all(one_prefill.decode_utilization.where(prefill_bound).fillna(0) < 1)


def test_kv_transfer_time_equals_the_hand_computation():
    ds = tp.disagg(prefill={"batch": 1}, decode={"batch": 8}, kv_tier="scaleout", kv_overlap=0, **LLAMA)
    # Llama-3.1-8B bf16 KV: 2 (K, V) · 32 layers · 8 KV heads · 128 · 2 B = 131,072 B per token
    # (docs/model.md §4 G2), × 1024 prompt tokens = 134,217,728 B. H100 scale-out: 50e9 B/s per GPU
    # × efficiency 0.9 = 45e9 B/s, α = 4 µs. tp = pp = 1: one shard, one link; one request per batch:
    # (1 + 1)/2 = 1 request's bytes. t = 4e-6 + 134,217,728 / 45e9 = 4e-6 + 0.0029826162 = 0.0029866162 s.
    assert float(ds.kv_bytes_per_request) == 134_217_728
    assert float(ds.kv_transfer_time) == pytest.approx(0.0029866161777778, rel=1e-12)
    # nothing hidden (kv_overlap=0): all of it adds to TTFT, after the prefill and the wait of a
    # saturated pool for half a batch (balanced ratio: utilization 1)
    assert float(ds.kv_transfer_exposed) == float(ds.kv_transfer_time)
    expected_ttft = float(ds.prefill_batch_time) / 2 + float(ds.prefill_ttft) + float(ds.kv_transfer_time)
    assert float(ds.serving_ttft) == pytest.approx(expected_ttft, rel=1e-12)
    # layer by layer (the default): only the last of 32 layers' share is exposed while the link keeps up
    layered = tp.disagg(prefill={"batch": 1}, decode={"batch": 8}, kv_tier="scaleout", **LLAMA)
    assert float(layered.kv_transfer_exposed) == pytest.approx(float(ds.kv_transfer_time) / 32, rel=1e-12)


def test_disaggregation_never_beats_either_pools_own_per_gpu_rate(pairs):
    r_p, r_d, g_p, g_d = _pool_rates(pairs)
    T = LLAMA["output_len"]
    better = np.maximum(T * r_p / g_p, T * r_d / g_d)
    worse = np.minimum(T * r_p / g_p, T * r_d / g_d)  # even the worse pool's per-GPU rate bounds it
    ok = pairs.feasible
    rate = pairs.serving_tokens_per_s_per_gpu
    assert bool(ok.any())
    assert bool((rate <= better * (1 + 1e-12)).where(ok, True).all())
    assert bool((rate <= worse * (1 + 1e-12)).where(ok, True).all())
    # the balanced ratio reaches the harmonic bound T / (G_p/R_p + G_d/R_d) (links do not bind here)
    bal = pairs.sel(ratio="balanced")
    harmonic = T / (g_p / r_p + g_d / r_d)
    _same(bal.serving_tokens_per_s_per_gpu, harmonic)


@settings(max_examples=200, deadline=None)
@given(
    r_p=st.floats(0.01, 1e4),
    r_d=st.floats(0.01, 1e4),
    g_p=st.integers(1, 64),
    g_d=st.integers(1, 64),
    x=st.integers(1, 16),
    y=st.integers(1, 16),
)
def test_system_rate_per_gpu_is_bounded_by_both_pools(r_p, r_d, g_p, g_d, x, y):
    t = lambda v: torch.tensor(float(v), dtype=torch.float64)  # noqa: E731
    rate = physics.system_rate(t(x), t(y), t(r_p), t(r_d))
    per_gpu = float(rate / (x * g_p + y * g_d))
    assert per_gpu <= min(r_p / g_p, r_d / g_d) * (1 + 1e-12)
    bx, by = physics.balanced_instances(t(r_p), t(r_d))
    balanced = float(physics.system_rate(bx, by, t(r_p), t(r_d)) / (bx * g_p + by * g_d))
    assert per_gpu <= balanced * (1 + 1e-12)  # no whole-number ratio beats the balanced one
    assert balanced == pytest.approx(1 / (g_p / r_p + g_d / r_d), rel=1e-12)
    assert min(float(bx), float(by)) == 1.0


# --------------------------------------------------------------------------------- the Dataset


def test_pairs_are_the_outer_product_with_prefixed_dims(pairs):
    assert dict(pairs.serving_ttft.sizes) == {
        "prefill_batch": 2,
        "prefill_tp": 2,
        "decode_batch": 2,
        "decode_tp": 2,
        "ratio": 4,
    }
    assert pairs.prefill_ttft.dims == ("prefill_batch", "prefill_tp")
    assert pairs.decode_tpot.dims == ("decode_batch", "decode_tp")
    assert pairs.serving_tokens_per_s_per_gpu.attrs["units"] == "tokens/s"
    assert pairs.serving_ttft.attrs["units"] == "s" and "long_name" in pairs.num_gpus.attrs
    # a whole-number ratio counts its GPUs: 2 prefill + 3 decode instances
    sel = pairs.sel(ratio="2:3", prefill_tp=2, decode_tp=1, prefill_batch=1, decode_batch=16)
    assert float(sel.num_gpus) == 2 * 2 + 3 * 1
    # TPOT is the decode instance's own at its batch
    d = tp.sweep(**LLAMA, tp=2, batch=128, breakdown=False)
    assert float(
        pairs.serving_tpot.sel(decode_tp=2, decode_batch=128).isel(prefill_tp=0, prefill_batch=0, ratio=0)
    ) == float(d.tpot)


def test_chunks_do_not_change_a_bit(pairs, monkeypatch):
    monkeypatch.setattr(disaggregated, "CHUNK_POINTS", 5)  # a chunk of one prefill configuration
    chunked = tp.disagg(
        prefill={"tp": [1, 2], "batch": [1, 8]},
        decode={"tp": [1, 2], "batch": [16, 128]},
        ratio=["balanced", "1:8", "8:1", "2:3"],
        **LLAMA,
    )
    for name in disaggregated.PAIR_VARIABLES:
        np.testing.assert_array_equal(chunked[name].values, pairs[name].values)


def test_the_streamed_best_is_the_in_memory_best(pairs, monkeypatch):
    monkeypatch.setattr(disaggregated, "CHUNK_POINTS", 7)  # one or two prefill configurations a chunk
    where = {"serving_tpot": ("<=", 0.006)}
    streamed = tp.disagg(
        prefill={"tp": [1, 2], "batch": [1, 8]},
        decode={"tp": [1, 2], "batch": [16, 128]},
        ratio=["balanced", "1:8", "8:1", "2:3"],
        where=where,
        objective="serving_tokens_per_s_per_gpu",
        **LLAMA,
    )
    whole = pairs.tperf.best("serving_tokens_per_s_per_gpu", where=where)
    for name in ("serving_tokens_per_s_per_gpu", "serving_ttft", "num_gpus", "best_prefill_tp", "best_prefill_batch"):
        assert float(streamed[name]) == float(whole[name]), name
    assert str(streamed.best_ratio.values) == str(whole.best_ratio.values) and bool(streamed.found)
    assert streamed.serving_ttft.attrs["units"] == "s"


def test_an_infeasible_pool_masks_its_pairs_with_its_reason():
    ds = tp.disagg(prefill={"batch": 1}, decode={"batch": [8, 100_000]}, **LLAMA)  # 100k requests: no memory
    bad = ds.sel(decode_batch=100_000)
    assert int(bad.decode_infeasible_reason) & int(Reason.MEMORY)
    assert int(bad.infeasible_reason) & int(Reason.MEMORY) and not bool(bad.feasible)
    assert math.isnan(float(bad.serving_tokens_per_s_per_gpu)) and math.isnan(float(bad.serving_ttft))
    assert tp.describe(int(bad.infeasible_reason)) == "memory"
    assert bool(ds.sel(decode_batch=8).feasible)


def test_where_limits_mark_pairs_and_best_picks_among_the_rest(pairs):
    limited = tp.disagg(
        prefill={"tp": [1, 2], "batch": [1, 8]},
        decode={"tp": [1, 2], "batch": [16, 128]},
        ratio=["balanced", "1:8", "8:1", "2:3"],
        where={"serving_tpot": ("<=", 0.006), "serving_ttft": ("<=", 0.1)},
        **LLAMA,
    )
    met = (pairs.serving_tpot <= 0.006) & (pairs.serving_ttft <= 0.1)
    np.testing.assert_array_equal(limited.limits_met.values, met.values)
    np.testing.assert_array_equal(limited.feasible.values, (met & (pairs.infeasible_reason == 0)).values)
    np.testing.assert_array_equal(limited.serving_ttft.values, pairs.serving_ttft.values)  # values kept
    best = limited.tperf.best("serving_tokens_per_s_per_gpu")
    assert bool(best.found)
    expected = float(pairs.serving_tokens_per_s_per_gpu.where(met).max())
    assert float(best.serving_tokens_per_s_per_gpu) == expected
    assert float(best.serving_tpot) <= 0.006 and float(best.serving_ttft) <= 0.1
    assert {"best_prefill_tp", "best_decode_batch", "best_ratio"} <= set(best.data_vars)
    front = limited.tperf.pareto_table(
        "serving_tokens_per_s_per_user",
        "serving_tokens_per_s_per_gpu",
        over=["prefill_tp", "prefill_batch", "decode_tp", "decode_batch", "ratio"],
    )
    assert len(front) and front["serving_tokens_per_s_per_gpu"].max() == expected


def test_pareto_takes_the_pools_layout_dims_and_the_ratio_by_default(pairs):
    import ast

    import pandas as pd

    x, y = "serving_tokens_per_s_per_user", "serving_tokens_per_s_per_gpu"
    named = ["prefill_batch", "prefill_tp", "decode_batch", "decode_tp", "ratio"]
    front = pairs.tperf.pareto_table(x, y)
    pd.testing.assert_frame_equal(front, pairs.tperf.pareto_table(x, y, over=named))
    assert ast.literal_eval(pairs.tperf.pareto(x, y).attrs["over"]) == named  # the frontier's own record of its dims
    # a pool's zipped inputs (its prefill_point / decode_point dim) count too; a pool input that is no
    # layout (decode_kv_dtype) stays a kept dim: one frontier per value
    zipped = tp.disagg(
        prefill={"tp": [1, 2], "batch": [1, 8], "zipped": ["tp", "batch"]},
        decode={"tp": [1, 2], "batch": [16, 128], "kv_dtype": ["bf16", "fp8"]},
        ratio=["balanced", "1:8"],
        **LLAMA,
    )
    front = zipped.tperf.pareto(x, y)
    assert ast.literal_eval(front.attrs["over"]) == ["prefill_point", "decode_batch", "decode_tp", "ratio"]
    assert "decode_kv_dtype" in front[y].dims
    best = zipped.serving_tokens_per_s_per_gpu.max(["prefill_point", "decode_batch", "decode_tp", "ratio"])
    np.testing.assert_array_equal(front[y].max(front.attrs["point_dim"]).values, best.values)


def test_kv_stays_in_the_scaleup_domain_where_the_deployment_fits_one():
    ds = tp.disagg(prefill={"batch": 1}, decode={"batch": 8}, ratio=["1:1", "4:4", "8:8"], **LLAMA)
    # H100: 8 GPUs per NVLink domain; 1+1 and 4+4 GPUs fit, 8+8 do not
    assert ds.kv_scaleup.values.tolist() == [True, True, False]
    assert float(ds.kv_transfer_time.sel(ratio="1:1")) < float(ds.kv_transfer_time.sel(ratio="8:8"))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(prefill={"model": "llama-3.1-70b"}), "both pools serve one model"),
        (dict(prefill={"tp": 2}, tp=4), "given both"),
        (dict(output_len=1), "output_len"),
        (dict(ratio="1:0"), "ratio"),
        (dict(ratio=["balanced", "balanced"]), "twice"),
        (dict(kv_overlap=1.5), "kv_overlap"),
        (dict(kv_tier="nvlink"), "kv_tier"),
        (dict(request_rate=2.0), "saturation"),
        (dict(prefill={"bogus": 1}), "bogus"),
        (dict(where={"serving_ttft": ("<", "x")}), "where"),
    ],
)
def test_bad_inputs_raise_naming_the_field(kwargs, match):
    given = {**LLAMA, **kwargs}
    with pytest.raises(tp.SpecError, match=match):
        tp.disagg(**given)


def test_cli_prints_the_best_deployment_and_the_frontier(tmp_path):
    out = io.StringIO()
    path = tmp_path / "pairs.nc"
    code = main(
        [
            "disagg",
            "--model",
            "llama-3.1-8b",
            "--hardware",
            "h100-sxm",
            "--prompt-len",
            "1024",
            "--output-len",
            "128",
            "--prefill",
            "tp=1,2",
            "--decode",
            "batch=16,128",
            "--ratio",
            "balanced,1:2",
            "--where",
            "serving_tpot<=0.02",
            "--pareto",
            "-o",
            str(path),
        ],
        out,
    )
    text = out.getvalue()
    assert code == 0, text
    assert "Best disaggregated deployment by serving_tokens_per_s_per_gpu with serving_tpot <= 0.02" in text
    assert "Pareto frontier" in text and path.exists()
    out = io.StringIO()  # without --pareto and -o: the best, streamed
    assert main(["disagg", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--decode", "batch=16,128"], out) == 0
    assert "Best disaggregated deployment" in out.getvalue() and "points;" not in out.getvalue()


# --------------------------------------------------------------------------------- measured rows


def _disagg_rows(path):
    rows = fidelity.load_measurements(path)
    return rows[rows["mode"].astype(str).str.startswith("disagg_")]


@pytest.fixture(scope="module")
def disagg_report():
    return fidelity.predict(_disagg_rows(DATA / "measurements.csv"))


def test_every_disaggregated_row_is_predicted_or_names_what_it_lacks(disagg_report):
    assert len(_disagg_rows(DATA / "measurements-2.csv")) == 0  # the second table has none
    assert len(disagg_report) == 11
    ok = disagg_report[disagg_report["status"] == "ok"]
    assert len(ok) >= 6 and np.isfinite(ok["predicted"]).all()
    rows = _disagg_rows(DATA / "measurements.csv").set_index("id")
    for _, r in disagg_report[disagg_report["status"] != "ok"].iterrows():
        if isinstance(rows.loc[r["id"], "speculative"], str):
            continue  # speculative decoding's rows: that mapping's own reasons
        assert "not modelled" not in r["status"] and "divisibility" not in r["status"], (r["id"], r["status"])


def test_redundant_experts_batch_rounding_and_both_pools_are_mapped():
    rows = _disagg_rows(DATA / "measurements.csv")
    m = fidelity.map_rows(rows).set_index(rows["id"])
    # "EPLB (288 experts incl. 32 redundant)" is stated; EP48 and EP144 round 256 up to 288
    assert m.loc["M0350", "num_experts"] == 288 and m.loc["M0360", "num_experts"] == 288
    assert m.loc["M0367", "num_experts"] == 288 and math.isnan(m.loc["M0355", "num_experts"])
    # 13,200 requests over 144 ranks: 92 per rank, the throughput scaled back by 13200 / 13248
    assert m.loc["M0367", "batch"] == 13248 and m.loc["M0367", "factor"] == pytest.approx(13200 / 13248)
    # 4 prefill instances of 32 GPUs (EP32, 256 experts split evenly) feed 1 decode instance
    x, y, g, ep, experts = m.loc["M0367", "pools"]
    assert (x, y, g, ep) == (4, 1, 32, 32) and math.isnan(experts)
    assert disagg_rows.physical_experts("", 256, 72) == 288 and disagg_rows.physical_experts("", 256, 32) is None


def test_a_both_pool_row_is_its_decode_pools_throughput_times_its_share():
    rows = _disagg_rows(DATA / "measurements.csv")
    rows = rows[rows["id"] == "M0367"]
    full = fidelity.predict(rows)
    alone = fidelity.predict(rows.assign(notes=rows["notes"].str.replace("4 prefill + 1 decode instances", "")))
    share = float(full["predicted"].iloc[0]) / float(alone["predicted"].iloc[0])
    assert 0 < share <= 1  # the decode pool's utilization in the 4P1D deployment
