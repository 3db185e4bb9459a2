"""The expert all-to-all as deployed (docs/model.md §3.9.2, §8.8.1): DeepEP's kernels (fp8 dispatch,
bf16 combine, a token sent once per remote node by the normal kernels) and two-batch overlap."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import tensorperf as tp
from tensorperf.analysis import fidelity
from tensorperf.engine.physics import routing

# DeepSeek-V3 with attention DP and EP (SGLang's large-scale EP layout), H100 nodes of 8 GPUs
DSV3 = dict(
    model="deepseek-v3",
    hardware="h100-sxm",
    weight_dtype="fp8",
    kv_dtype="fp8",
    recipe="deepseek-fp8",
    tp=1,
    prompt_len=2000,
    output_len=100,
)


def ep_comm(ds, phase="decode"):
    return ds[f"{phase}_op_time"].sel(op="ep_comm")


def test_the_defaults_are_the_plain_all_to_all():
    # equal to rounding: with two-batch overlap on the grid, decode adds each layer's attention core
    # inside the layer sum rather than after it (stages.layer_times), a different order of additions
    plain = tp.sweep(**DSV3, dp=32, ep=32, batch=32 * 64)
    mixed = tp.sweep(**DSV3, dp=32, ep=32, batch=32 * 64, ep_overlap=["none", "two_batch"], ep_a2a=["nccl", "deepep"])
    for name in ("ttft", "tpot", "serving_tpot", "serving_ttft", "decode_tokens_per_s_per_gpu"):
        got = mixed[name].sel(ep_overlap="none", ep_a2a="nccl").values
        np.testing.assert_allclose(plain[name].values, got, rtol=1e-13, atol=0)


def test_fp8_dispatch_and_bf16_combine():
    # per layer, NCCL moves S bytes (bf16 activations) each way: 2·(S·c + L); DeepEP's low-latency
    # kernels dispatch 1 + 4/128 = 1.03125 B per element (fp8 with an fp32 scale per 128) and combine
    # 2 B: S·(1.03125/2)·c + L + S·c + L. So between two batches (S ∝ tokens, L and the imbalance
    # aside) the difference of their times shrinks by (1.03125/2 + 1)/2 = 0.7578125
    ds = tp.sweep(**DSV3, dp=32, ep=32, batch=[32 * 64, 32 * 128], ep_a2a=["nccl", "deepep_ll"], imbalance=1.0)
    t = ep_comm(ds)
    d_nccl = float(t.sel(ep_a2a="nccl")[1] - t.sel(ep_a2a="nccl")[0])
    d_ll = float(t.sel(ep_a2a="deepep_ll")[1] - t.sel(ep_a2a="deepep_ll")[0])
    assert d_ll == pytest.approx(0.7578125 * d_nccl, rel=1e-9)


def test_the_normal_kernels_send_a_token_once_per_remote_node():
    # D(1 − C(E − E/D, k)/C(E, k))/k of the copies cross: E = 256, k = 8, D = 4 nodes -> 0.4518
    E, k, D = 256, 8, 4
    by_hand = D * (1 - math.comb(E - E // D, k) / math.comb(E, k)) / k
    f64 = lambda x: torch.tensor(x, dtype=torch.float64)
    got = float(routing.dedup_factor(f64(256.0), f64(8.0), f64(4.0)))
    assert got == pytest.approx(by_hand, rel=1e-9) and by_hand == pytest.approx(0.4518, abs=1e-4)
    # inside one node (EP8 on an 8-GPU H100 domain) nothing crosses: normal = low latency, bit for bit
    one = tp.sweep(**DSV3, dp=8, ep=8, batch=8 * 64, ep_a2a=["deepep", "deepep_ll"])
    np.testing.assert_array_equal(ep_comm(one).sel(ep_a2a="deepep").values, ep_comm(one).sel(ep_a2a="deepep_ll").values)
    # across 4 nodes the inter-node part (the larger one: 24/32 of the copies at 50 GB/s per GPU against
    # 7/32 at 450 GB/s) carries 0.4518 of the copies: between two batches the time grows that much less
    four = tp.sweep(**DSV3, dp=32, ep=32, batch=[32 * 128, 32 * 256], ep_a2a=["deepep", "deepep_ll"], imbalance=1.0)
    t = ep_comm(four)
    d_normal = float(t.sel(ep_a2a="deepep")[1] - t.sel(ep_a2a="deepep")[0])
    d_ll = float(t.sel(ep_a2a="deepep_ll")[1] - t.sel(ep_a2a="deepep_ll")[0])
    assert d_normal == pytest.approx(by_hand * d_ll, rel=1e-6)


def test_two_batch_overlap_hides_the_all_to_all_only_where_there_is_one():
    # prefill of 4 x 4096 tokens per GPU over 4 nodes (EP32): the all-to-all is as long as the compute,
    # and overlapping halves hides most of the shorter one
    kw = dict(DSV3, dp=32, ep=32, batch=32 * 4, prompt_len=4096, output_len=1)
    ds = tp.sweep(**kw, ep_overlap=["none", "two_batch"])
    none, two = (float(ds.ttft.sel(ep_overlap=v)) for v in ("none", "two_batch"))
    assert 1.2 < none / two < 2.0  # max(C, A) >= (C + A)/2: never more than 2x
    # a dense model has no all-to-all: two half batches only add their weight reads and kernel times
    dense = tp.sweep(model="llama-3.1-8b", hardware="h100-sxm", batch=[1, 64], ep_overlap=["none", "two_batch"])
    np.testing.assert_array_equal(
        dense.tpot.sel(ep_overlap="none").values, dense.tpot.sel(ep_overlap="two_batch").values
    )
    # MoE without EP: nothing to hide, and each half re-reads the weights: never faster
    moe = tp.sweep(
        model="mixtral-8x7b", hardware="h100-sxm", tp=2, batch=[1, 32, 256], ep_overlap=["none", "two_batch"]
    )
    assert bool((moe.tpot.sel(ep_overlap="two_batch") >= moe.tpot.sel(ep_overlap="none")).all())
    assert float(moe.tpot.sel(ep_overlap="two_batch", batch=1)) > float(moe.tpot.sel(ep_overlap="none", batch=1))


def test_bad_labels_name_the_field():
    with pytest.raises(tp.SpecError, match="ep_overlap.*tbo.*two_batch"):
        tp.sweep(model="mixtral-8x7b", hardware="h100-sxm", ep_overlap="tbo")
    with pytest.raises(tp.SpecError, match="ep_a2a.*mooncake.*deepep"):
        tp.sweep(model="mixtral-8x7b", hardware="h100-sxm", ep_a2a="mooncake")


def test_rows_that_state_deepep_and_two_batch_overlap():
    rows = fidelity.load_measurements("data/measurements.csv")
    m = fidelity.map_rows(rows).set_index(rows["id"])
    # SGLang's large-scale EP blog: DeepEP (normal kernels for prefill, low latency for decode) and TBO
    assert tuple(m.loc["M0350", ["ep_overlap", "ep_a2a"]]) == ("two_batch", "deepep")
    assert tuple(m.loc["M0353", ["ep_overlap", "ep_a2a"]]) == ("two_batch", "deepep_ll")
    # DeepSeek's profile data: "fp8 GEMM/dispatch", "two micro-batch overlap"
    assert tuple(m.loc["M0355", ["ep_overlap", "ep_a2a"]]) == ("two_batch", "deepep")
    # RTP-LLM states neither
    assert tuple(m.loc["M0367", ["ep_overlap", "ep_a2a"]]) == ("none", "nccl")
    ok = m[m["status"] == "ok"]
    assert (ok["ep_overlap"] == "two_batch").sum() == 4 and (ok["ep_a2a"] != "nccl").sum() == 4


def test_inferencex_trtllm_rows_with_attention_dp_balance_their_context_requests():
    # InferenceX's TensorRT-LLM DeepSeek-R1 scripts set attention_dp_config {enable_balance: true,
    # timeout_iters: 60}; SGLang rows and rows without attention DP have no such wait
    rows = fidelity.load_measurements("data/measurements-2.csv")
    m = fidelity.map_rows(rows).set_index(rows["id"])
    assert m.loc["N0900", "adp_balance_iters"] == 60 and m.loc["N1000", "adp_balance_iters"] == 60
    ok = m[m["status"] == "ok"]
    balanced = ok["adp_balance_iters"].notna()
    assert (ok.loc[balanced, "stack"] == "trtllm-1").all() and (ok.loc[balanced, "dp"] > 1).all()
    assert balanced.sum() == 44
