"""Golden checks of the roofline convention (docs/model.md §4 G3-G9 and §8.6), arithmetic in comments."""

import math

import pytest
import torch

import tensorperf as tp
from tensorperf.engine.physics import comm, ops, pipeline

IDEAL = dict(
    compute=1,
    attention=1,
    memory=1,
    gemm_memory=1,
    gemm_latency=0,  # no fixed time per GEMM kernel (§3.7.1)
    scaleup=1,
    scaleout=1,
    gemm_half_tokens=0,
    expert_half_tokens=0,
    comm_half_bytes=0,
)


def free_links(preset: str, **changes) -> tp.HardwareSpec:
    """The preset with infinitely fast links (to isolate compute and memory) and, optionally, more."""
    return tp.presets.hardware_spec(preset).replace(
        name=f"{preset}-nocomm",
        scaleup_bandwidth=1e30,
        scaleup_latency=0.0,
        scaleout_bandwidth=1e30,
        scaleout_latency=0.0,
        **changes,
    )


BIG = free_links("h100-sxm", hbm_capacity=1e15)  # so that one GPU "fits" any model for FLOP counts


@pytest.mark.parametrize(
    "model, matmul_flops",
    [
        # G3: decode FLOPs per token = 2 x matmul parameters (embedding gather and norms excluded,
        # LM head included). Llama-3.1-70B: 2·(80·855,638,016 + 1,050,673,152)
        ("llama-3.1-70b", 139_003_428_864),
        ("llama-3.1-8b", 15_009_316_864),
        ("llama-3.1-405b", 807_495_794_688),
        # MoE rows add, per token and MoE layer, the router's score + top-k work E·(5 + ceil(log2 k))
        # and the weighted combine of the k expert outputs 2·k·d
        ("mixtral-8x7b", 25_497_174_016 + (8 * (5 + 1) + 2 * 2 * 4096) * 32),  # top-2 experts + router GEMM
        # MLA projections counted once per token (absorbed = naive)
        ("deepseek-v3", 73_249_193_984 + (256 * (5 + 3) + 2 * 8 * 7168) * 58),
        # seed 1.8T: 2·(4h² + k·2·f·h²)·n_L + 2·V·h = 1,000,987,459,584 plus the router the seed omits:
        # 2·h·E·n_L = 2·10752·16·120 = 41,287,680
        ("gpt-moe-1.8t", 1_000_987_459_584 + 41_287_680 + (16 * (5 + 2) + 2 * 4 * 10752) * 120),
    ],
)
def test_decode_flops_per_token(model, matmul_flops):
    ds = tp.sweep(model=model, hardware=BIG, prompt_len=8191, output_len=2)
    flops = ds.decode_op_flops
    assert float(flops.drop_sel(op=["attn", "norm"]).sum()) == matmul_flops


def test_decode_attention_flops_llama_70b():
    # G3: 4·n_q·d_h·n_L = 4·64·128·80 = 2,621,440 FLOP per cached token; at L = 8192 (S = 8191,
    # the first decode step) 21,474,836,480
    ds = tp.sweep(model="llama-3.1-70b", hardware=BIG, prompt_len=8191, output_len=2)
    assert float(ds.decode_op_flops.sel(op="attn")) == pytest.approx(21_474_836_480, rel=1e-12)


def test_prefill_flops_and_compute_bound_ttft_llama_70b():
    # G5: B = 1, S = 8192, causal, last-position logits:
    # linear 2·8192·68,451,041,280 + LM head 2·8192·128,256 + attention 4·64·128·(8192·8193/2)·80
    total = 1_121_501_860_331_520 + 2_101_346_304 + 87_971_667_640_320
    assert total == 1_209_475_629_318_144
    ds = tp.sweep(model="llama-3.1-70b", hardware=BIG, tp=8, prompt_len=8192, output_len=2, efficiency=IDEAL)
    per_gpu = ds.prefill_op_flops.drop_sel(op="norm").sum()
    assert float(per_gpu) * 8 == total
    # compute-bound ops at 100% of 989.4 TFLOP/s on 8 GPUs: (total − LM head) / (8·989.4e12);
    # G5's 152.804178 ms includes the LM head, which is memory-bound here (reads 16032 x 8192 bf16)
    gemm = ds.prefill_op_time.sel(op=["qkv", "attn", "out_proj", "mlp"]).sum()
    assert float(gemm) == pytest.approx((total - 2_101_346_304) / (8 * 989.4e12), rel=1e-12)
    assert total / (8 * 989.4e12) == pytest.approx(152.80417795104913e-3, rel=1e-12)


def test_tpot_memory_floor_llama_70b_tp8():
    # G4: bf16, 8xH100, B = 1, short context, eta = 1, no comm: the weights that must be read,
    # 139,006,066,688 B (embedding table gathered, not streamed) / (8·3.35e12) = 5.186794 ms.
    # tensorperf also streams the decode activations and the 2-token KV cache (+0.07%).
    ds = tp.sweep(model="llama-3.1-70b", hardware=BIG, tp=8, prompt_len=1, output_len=2, efficiency=IDEAL)
    assert float(ds.tpot) == pytest.approx(5.1867935331343284e-3, rel=1e-3)
    assert float(ds.tpot) > 5.1867935331343284e-3


def test_tpot_kv_term_llama_70b_tp8():
    # G4: B = 64 at L = 8192 adds 64·8192·327,680 B of KV reads per step on 8·3.35e12 B/s; the
    # difference to L = 1 isolates that term: 64·8191·327,680 / 2.68e13 = 6.4098 ms
    ds = tp.sweep(
        model="llama-3.1-70b", hardware=BIG, tp=8, batch=64, prompt_len=[0 + 1, 8192], output_len=2, efficiency=IDEAL
    )
    delta = float(ds.tpot.sel(prompt_len=8192) - ds.tpot.sel(prompt_len=1))
    assert delta == pytest.approx(64 * 8191 * 327_680 / 2.68e13, rel=1e-9)


def test_critical_batch_h100():
    # G4: B_crit = F_peak·b_w / (2·W_hbm) = 989.4e12·2/(2·3.35e12) = 295.34 tokens per step
    h = tp.presets.hardware_spec("h100-sxm")
    assert h.peak_flops_bf16 / h.hbm_bandwidth == pytest.approx(295.34328358208955, rel=1e-12)


def test_ring_all_reduce():
    # G6: n = 8, S = 8192·8192·2 = 134,217,728 B, W = 450e9: 2·(7/8)·S/W = 0.5219578311 ms;
    # with alpha = 2 us: + 14·2 us = 0.5499578311 ms
    S, n = torch.tensor(134_217_728.0, dtype=torch.float64), torch.tensor(8.0, dtype=torch.float64)
    assert float(comm.ring_all_reduce(S, n, 450e9, 0.0)) == pytest.approx(0.5219578311111112e-3, rel=1e-12)
    assert float(comm.ring_all_reduce(S, n, 450e9, 2e-6)) == pytest.approx(0.5499578311111112e-3, rel=1e-12)


def _tiers():
    f = lambda x: torch.tensor(x, dtype=torch.float64)  # noqa: E731
    return comm.Tiers(bw_in=f(450e9), lat_in=f(2e-6), bw_out=f(50e9), lat_out=f(5e-6), domain=f(8.0), mesh=f(0.0))


def test_two_level_all_reduce():
    # G6: 8 (intra) x 2 (inter): 28 us + 521.957831 us + 10 us + (S/8)/50e9 (= 335.54432 us)
    S = torch.tensor(134_217_728.0, dtype=torch.float64)
    got = comm.hierarchical_all_reduce(S, torch.tensor(16.0, dtype=torch.float64), _tiers())
    assert float(got) == pytest.approx(0.8955021511111111e-3, rel=1e-12)
    # default flat ring over 16 ranks: 2·15/16·S/min(450e9, 8·50e9) + 30·5 us (docs/model.md §8.7)
    flat = comm.group_all_reduce(S, torch.tensor(16.0, dtype=torch.float64), _tiers())
    assert float(flat) == pytest.approx(2 * 15 / 16 * 134_217_728 / 400e9 + 30 * 5e-6, rel=1e-12)


def test_all_to_all_across_nodes():
    # §8.8: 16 ranks (8 per node), 1 MB per rank: intra 7/16·S/450e9 overlaps inter 8/16·S/50e9;
    # latency 7·2 us + 8·5 us
    S = torch.tensor(1e6, dtype=torch.float64)
    got = comm.group_all_to_all(S, torch.tensor(16.0, dtype=torch.float64), _tiers())
    assert float(got) == pytest.approx(8 / 16 * 1e6 / 50e9 + 7 * 2e-6 + 8 * 5e-6, rel=1e-12)


@pytest.mark.parametrize(
    "E, k, T, expected",
    [
        # G7: E·(1 − (1 − k/E)^T)
        (256, 8, 1, 8.0),
        (256, 8, 2, 15.75),
        (256, 8, 8, 57.42083078599535),
        (256, 8, 64, 222.4424876855104),
        (256, 8, 256, 255.92441438744697),
        (8, 2, 4, 5.46875),
        (8, 2, 16, 7.919819233939052),
        (16, 4, 4, 10.9375),
    ],
)
def test_expected_experts(E, k, T, expected):
    f = lambda x: torch.tensor(float(x), dtype=torch.float64)  # noqa: E731
    assert float(ops.expected_experts(f(E), f(k), f(T))) == pytest.approx(expected, rel=1e-12)


def test_pipeline_bubble():
    # G8: (pp − 1)/(m + pp − 1): pp = 4, m = 4 -> 3/7; pp = 8, m = 8 -> 7/15
    assert pipeline.bubble_fraction(4, 4) == pytest.approx(0.42857142857142855, rel=1e-15)
    assert pipeline.bubble_fraction(8, 8) == pytest.approx(0.4666666666666667, rel=1e-15)


def test_single_request_prefill_pays_the_hops():
    # G8: m = 1: TTFT(pp) = TTFT(pp = 1) + (pp − 1)·t_p2p, t_p2p = alpha + S·d·2 B / W on the tier
    hw = tp.presets.hardware_spec("h100-sxm")
    ds = tp.sweep(model="llama-3.1-8b", hardware=hw, prompt_len=4096, pp=[1, 2, 4])
    eff = hw.efficiency
    # 4 GPUs: one domain; the link efficiency's size form adds comm_half_bytes to the message
    hop = hw.scaleup_latency + (4096 * 4096 * 2 + eff.comm_half_bytes) / (hw.scaleup_bandwidth * eff.scaleup)
    base = float(ds.ttft.sel(pp=1))
    for p in (2, 4):
        assert float(ds.ttft.sel(pp=p)) == pytest.approx(base + (p - 1) * hop, rel=1e-12)


def test_decode_pipeline_with_fewer_microbatches_than_stages():
    # G8: pp = 4, batch 2 -> m = 2 microbatches of 1: TPOT = 4·t_stage(1) = TPOT at pp = 1 + 3 hops
    hw = tp.presets.hardware_spec("h100-sxm")
    ds = tp.sweep(model="llama-3.1-8b", hardware=hw, prompt_len=1024, output_len=2, batch=2, pp=[1, 4])
    one = tp.sweep(model="llama-3.1-8b", hardware=hw, prompt_len=1024, output_len=2, batch=1, pp=1)
    eff = hw.efficiency
    hop = hw.scaleup_latency + (1 * 4096 * 2 + eff.comm_half_bytes) / (hw.scaleup_bandwidth * eff.scaleup)
    assert float(ds.tpot.sel(pp=4)) == pytest.approx(float(one.tpot) + 3 * hop, rel=1e-12)


def test_capacity_llama_70b():
    # G9: bf16, B = 64, L_max = 8192, 80 GB, u = 0.9, activations ignored:
    # (141,107,412,992 + 171,798,691,840)/72e9 = 4.35 -> 5 GPUs (the activation workspace keeps it 5)
    hw = tp.presets.hardware_spec("h100-sxm").replace(name="h100-80gb", hbm_capacity=80e9)
    ds = tp.sweep(
        model="llama-3.1-70b", hardware=hw, batch=64, prompt_len=8064, output_len=128, tp=[1, 2, 4, 8], pp=[1, 5]
    )
    assert set(ds.min_gpus_for_capacity.values.ravel().tolist()) == {5.0}
    # powers of two inside one node: the smallest feasible TP is 8 (§8.5) ...
    assert ds.feasible.sel(pp=1).values.tolist() == [False, False, False, True]
    # ... while any divisor allows tp = 1, pp = 5: worst stage 16 layers, 29.48 GB weights
    # (16·855,654,400·2 + 1,050,673,152·2) + 34.36 GB KV (16·2·8·128·2·8192·64) <= 72 GB
    point = ds.sel(tp=1, pp=5)
    assert bool(point.feasible)
    assert float(point.weight_memory_per_gpu) == 16 * 855_654_400 * 2 + 1_050_673_152 * 2
    assert float(point.kv_cache_memory_per_gpu) == 16 * 2 * 8 * 128 * 2 * 8192 * 64
    assert math.isclose(float(point.memory_capacity_per_gpu), 72e9)


def test_allreduce_algorithm_is_selectable():
    # G6 / docs/model.md §8.7: the default flat ring; "hierarchical" is RS inside the node, AR of S/8
    # across nodes, AG inside; "tree" keeps the ring's bandwidth term with 2·⌈log2 n⌉ latency steps
    hw = tp.presets.hardware_spec("h100-sxm").replace(
        name="h100-g6", scaleup_bandwidth=450e9, scaleup_latency=2e-6, scaleout_bandwidth=50e9, scaleout_latency=5e-6
    )
    eff = dict(scaleup=1, scaleout=1, comm_half_bytes=0)
    ds = tp.sweep(
        model="llama-3.1-70b",
        hardware=hw,
        tp=16,
        prompt_len=8192,
        output_len=2,
        efficiency=eff,
        allreduce=["ring", "tree", "hierarchical"],
    )
    tp_comm = ds.prefill_op_time.sel(op="tp_comm")
    S = 8192 * 8192 * 2  # one prefill's activations, bf16: the G6 message
    per_layer = 2 * 80  # two all-reduces per dense layer, 80 layers
    ring = 2 * 15 / 16 * S / 400e9 + 30 * 5e-6
    hier = 0.8955021511111111e-3
    tree = 2 * 15 / 16 * S / 400e9 + 2 * 4 * 5e-6
    assert float(tp_comm.sel(allreduce="ring")) == pytest.approx(per_layer * ring, rel=1e-12)
    assert float(tp_comm.sel(allreduce="hierarchical")) == pytest.approx(per_layer * hier, rel=1e-12)
    assert float(tp_comm.sel(allreduce="tree")) == pytest.approx(per_layer * tree, rel=1e-12)
