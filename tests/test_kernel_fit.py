"""Size-dependent efficiency curves fitted to measured kernels (data/kernel_measurements.csv)."""

from pathlib import Path

import pandas as pd
import pytest
import torch

from tensorperf.analysis.kernel_fit import (
    GPU_PRESET,
    aiter_copies,
    expert_stream_bytes,
    fastest_variants,
    fit_aiter,
    fit_expert_latency,
    fit_kernels,
    fit_latency,
    fits_table,
    load_kernels,
    streaming_efficiency,
)
from tensorperf.catalog import presets
from tensorperf.engine.physics.roofline import saturation
from tensorperf.validation import SpecError

DATA = Path(__file__).resolve().parents[1] / "data" / "kernel_measurements.csv"
MOE_DATA = Path(__file__).resolve().parents[1] / "data" / "moe_kernel_measurements.csv"


@pytest.fixture(scope="module")
def kernels():
    return load_kernels(DATA)


@pytest.fixture(scope="module")
def fits(kernels):
    frame = kernels
    keep = (frame.op == "gemm") | ((frame.gpu == "h200_sxm") & frame.op.isin(["moe_experts", "nccl_all_reduce"]))
    return fits_table(fit_kernels(frame[keep], steps=600)).set_index(["kind", "gpu", "dtype"])


# Golden fits of each weight format on its fastest measured variant per (gpu, framework, shape)
# (data/kernel_measurements.csv, fit_kernels(steps=600)); the presets' [efficiency.fp8] tables
# round these. (compute, memory, gemm_half_tokens, variants that won)
GOLDEN_FP8 = {
    # b200_sxm TRT-LLM: fp8_block faster at every m (m=1 17.6 us vs per-tensor 26.3 us, 67 MB)
    "b200": (0.603, 0.4365, 50.3, "fp8_block 7"),
    # h100_sxm TRT-LLM: fp8_block at m=1..256 (m=1 31.0 us vs 37.4 us), per-tensor at m >= 1024
    "h100-sxm": (0.645, 0.646, 124.3, "fp8 3, fp8_block 4"),
    # h200_sxm TRT-LLM, vLLM, SGLang pooled, each framework's own fastest variant per shape
    "h200-sxm": (0.626, 0.6063, 52.8, "fp8 12, fp8_block 9"),
}


@pytest.mark.parametrize("gpu", sorted(GOLDEN_FP8))
def test_fp8_fit_on_fastest_variant_golden(fits, gpu):
    compute, memory, half, variants = GOLDEN_FP8[gpu]
    row = fits.loc[("gemm", gpu, "fp8")]
    assert row.variants == variants and row.rows == (21 if gpu == "h200-sxm" else 7)
    assert row.compute == pytest.approx(compute, abs=0.01)
    assert row.memory == pytest.approx(memory, abs=0.005)
    # b200's half rows are loosely set by the rows (41-50 between 600 and 5000 Adam steps)
    assert row.gemm_half_tokens == pytest.approx(half, rel=0.25 if gpu == "b200" else 0.05)
    assert row.median_abs_error < 0.06 and row.max_abs_error < 0.15
    # the per-format variants: only fp8 pools two kernel dtypes
    assert ("gemm", gpu, "fp8_block") not in fits.index


def _gemm_time(p, flops, nbytes, m, peak, bw):
    """Engine GEMM form: max(F / (compute · m/(m + half) · peak), bytes / (memory · W))."""
    return max(flops / (p["compute"] * m / (m + p["gemm_half_tokens"]) * peak), nbytes / (p["memory"] * bw))


def test_fp8_fit_is_not_slower_than_bf16_at_one_row(fits, kernels):
    """The fit follows the fastest variant: for every GPU in the kernel data, the fitted fp8 table
    predicts the m=1 n=k=8192 GEMM (fp8 bytes: 1 B/weight) no slower than the bf16 table (2 B/weight)."""
    gemm = kernels[(kernels.op == "gemm") & (kernels["shape"] == "m=1;n=8192;k=8192")]
    gpus = sorted(gemm.gpu.unique())
    assert gpus == ["b200_sxm", "h100_sxm", "h200_sxm"]
    for gpu in gpus:
        hw = presets.hardware_spec(GPU_PRESET[gpu])
        times = {}
        for dtype, peak in (("bfloat16", hw.peak_flops_bf16), ("fp8", hw.peak_flops_fp8)):
            row = gemm[(gemm.gpu == gpu) & (gemm.dtype == dtype)].iloc[0]
            p = fits.loc[("gemm", GPU_PRESET[gpu], dtype)]
            times[dtype] = _gemm_time(p, row.flops, row.bytes_moved, 1.0, peak, hw.hbm_bandwidth)
        assert times["fp8"] <= times["bfloat16"], (gpu, times)
        # and the shipped preset tables keep it
        eff, eff8 = hw.efficiency, hw.efficiency_for("fp8")
        bf16 = gemm[(gemm.gpu == gpu) & (gemm.dtype == "bfloat16")].iloc[0]
        fp8 = gemm[(gemm.gpu == gpu) & (gemm.dtype == "fp8")].iloc[0]
        w = hw.hbm_bandwidth
        fp8_t = fp8.bytes_moved / (eff8.gemm_memory * w) + eff8.gemm_latency
        assert fp8_t <= bf16.bytes_moved / (eff.gemm_memory * w) + eff.gemm_latency, gpu


def test_fastest_variants_takes_the_min_per_framework_and_shape():
    rows = pd.DataFrame(
        {
            "framework": ["a", "a", "b", "b"],
            "shape": ["s", "s", "s", "s"],
            "dtype": ["fp8", "fp8_block", "fp8", "fp8_block"],
            "measured_time_ms": [2.0, 1.0, 1.5, 3.0],
        }
    )
    best = fastest_variants(rows)
    assert list(best.dtype) == ["fp8_block", "fp8"] and list(best.measured_time_ms) == [1.0, 1.5]


def test_gemm_curve_fits_h100_bf16(fits):
    row = fits.loc[("gemm", "h100-sxm", "bfloat16")]
    # measured: 8192^3 at 79% of 989 TFLOP/s, m = 1..16 at ~79% of HBM bandwidth
    assert 0.75 < row.compute < 0.86 and 0.7 < row.memory < 0.9
    assert row.median_abs_error < 0.05 and row.max_abs_error < 0.15


def test_grouped_expert_gemms_saturate_with_tokens_per_expert(fits):
    row = fits.loc[("moe_experts", "h200-sxm", "fp8")]
    assert row.variants == "fp8_block 6"  # the only fp8 variant measured for grouped GEMMs
    # golden (steps=600): compute 0.2956, half 64.4 tokens; presets' expert_compute ratio 0.2956/0.626 = 0.472
    assert row.compute == pytest.approx(0.2956, abs=0.005) and row.expert_half_tokens == pytest.approx(64.4, rel=0.05)
    # DeepSeek-V3 / Qwen3 expert GEMMs: 64 tokens run at ~1% of peak, 8192 tokens at ~28%
    assert 10 < row.expert_half_tokens < 1000
    assert row.median_abs_error < 0.15


def test_all_reduce_bandwidth_rises_with_message_size(fits):
    row = fits.loc[("nccl_all_reduce", "h200-sxm", "bfloat16(half)")]
    # 8-GPU NVLink all-reduce: 256 MiB at ~99% of bus bandwidth, 1 MiB far below
    assert 0.7 < row.scaleup <= 1.0 and row.comm_half_bytes > 2**14
    assert row.median_abs_error < 0.25


def test_saturation_is_exactly_one_when_off_and_one_half_at_half():
    m = torch.tensor([1.0, 64.0, 4096.0], dtype=torch.float64)
    assert torch.equal(saturation(m, torch.tensor(0.0, dtype=torch.float64)), torch.ones(3, dtype=torch.float64))
    assert float(saturation(torch.tensor(64.0), torch.tensor(64.0))) == 0.5
    assert float(saturation(torch.tensor(0.0), torch.tensor(0.0))) == 1.0  # no work: no 0/0


def test_bad_kernel_file(tmp_path):
    bad = tmp_path / "k.csv"
    bad.write_text("gpu,op\nh100_sxm,gemm\n")
    with pytest.raises(SpecError, match="column 'dtype' is missing"):
        load_kernels(bad)


# ------------------------------------------------------------ streaming + fixed time (§3.7.1)
@pytest.fixture(scope="module")
def latency_fits(kernels):
    return {(f.gpu, f.table): f for f in fit_latency(kernels, steps=600)}


def test_streaming_efficiency_is_the_best_large_stream(kernels):
    eta = streaming_efficiency(kernels)
    # the best bytes / (t x W) of each device's decode-attention rows with a bf16 KV cache; B200: 64
    # sequences x 2048 tokens, 64 query / 8 KV heads: 537 MB in 88.27 us at 8e12 B/s -> 0.760
    assert eta == pytest.approx({"b200": 0.7603, "h100-sxm": 0.8205, "h200-sxm": 0.7708}, abs=5e-4)


def test_fixed_time_per_kernel_golden(latency_fits):
    f = latency_fits[("b200", "bf16")]
    # b200 bf16 n = k = 8192: t - bytes / (0.76027 x 8e12) at m = 1, 16, 64:
    # 27.40 - 134,250,496 / 6.0821e12 = 27.40 - 22.07 = 5.33 us; 25.29 - 22.15 = 3.14 us;
    # 26.95 - 22.41 = 4.54 us -> median 4.54 us
    assert f.latency == pytest.approx(4.54e-6, abs=0.01e-6)
    us = {t: latency_fits[("b200", t)].measured_latency * 1e6 for t in ("fp8", "fp8_block", "fp4")}
    assert us == pytest.approx({"fp8": 15.39, "fp8_block": 7.60, "fp4": 16.37}, abs=0.02)
    # the per-tensor fp8 rows quantize their input dynamically and the nvfp4 rows quantize theirs inside
    # the timed Linear; in a model both run fused into the norm before the GEMM: bf16's fixed time
    for gpu in ("b200", "h100-sxm", "h200-sxm"):
        assert latency_fits[(gpu, "fp8")].latency == latency_fits[(gpu, "bf16")].latency
        assert latency_fits[(gpu, "fp8")].measured_latency > 10e-6
    assert latency_fits[("b200", "fp4")].latency == latency_fits[("b200", "bf16")].latency
    assert latency_fits[("b200", "fp8_block")].latency == latency_fits[("b200", "fp8_block")].measured_latency
    for fit in latency_fits.values():
        assert fit.median_abs_error < 0.06 and fit.max_abs_error < 0.11, fit


def test_presets_hold_the_streaming_fits(latency_fits):
    for gpu in ("b200", "h100-sxm", "h200-sxm"):
        hw = presets.hardware_spec(gpu)
        for table in ("bf16", "fp8", "fp8_block", "fp4"):
            if (gpu, table) not in latency_fits:
                continue
            fit, eff = latency_fits[(gpu, table)], hw.efficiency_for(table)
            assert eff.gemm_memory == pytest.approx(fit.memory, abs=6e-4), (gpu, table)
            assert eff.gemm_latency == pytest.approx(fit.latency, rel=0.01, abs=1e-9), (gpu, table)
    # the derived presets take their measured sibling's
    for derived, measured in (("h800", "h100-sxm"), ("gb200", "b200"), ("b300", "b200"), ("gb300", "b200")):
        a, b = presets.hardware_spec(derived), presets.hardware_spec(measured)
        for table in ("bf16", "fp8", "fp8_block"):
            assert a.efficiency_for(table).gemm_memory == b.efficiency_for(table).gemm_memory
            assert a.efficiency_for(table).gemm_latency == b.efficiency_for(table).gemm_latency


# ------------------------------------------------------------------ fused-MoE fixed time (§3.7.2)
DSV3_T1_EP8 = "model=DeepSeek-V3;num_tokens=1;hidden=7168;inter=2048;topk=8;experts=256;moe_tp=1;moe_ep=8"


def test_expert_stream_bytes_by_hand():
    # one token, 8 of 256 experts, EP8: 32 experts per GPU, 1 - (1 - 8/256)^1 = 1/32 of them touched
    # -> 1 (the measured rank holds one); 3 x 7168 x 2048 fp8 weight bytes = 44,040,192; 8/8 = 1 pair
    # moving (4 x 7168 + 3 x 2048) bf16 values = 69,632 B; the token's row in and out 2 x 7168 x 2 = 28,672 B
    assert expert_stream_bytes(DSV3_T1_EP8 + ";distribution=balanced", 1.0) == 44_040_192 + 69_632 + 28_672
    # bf16, tp 8 instead of ep 8: all 256 experts' 1/8 slices, 8 of them touched; 8 pairs
    tp8 = DSV3_T1_EP8.replace("moe_tp=1;moe_ep=8", "moe_tp=8;moe_ep=1")
    touched = 256 * (1 - (1 - 8 / 256) ** 1)  # = 8
    assert expert_stream_bytes(tp8, 2.0) == pytest.approx(
        touched * 3 * 7168 * 256 * 2 + 8 * (4 * 7168 + 3 * 256) * 2 + 2 * 7168 * 2
    )


def test_fused_moe_fixed_time_fits_and_presets():
    frame = load_kernels(MOE_DATA)
    # 116 rows: TensorRT-LLM 1.3.0rc20's fastest gated kernel per point (aiconfigurator@095f58a)
    assert len(frame) == 116 and set(frame.op) == {"moe_experts"}
    fits = {(f.gpu, f.table): f for f in fit_expert_latency(frame)}
    # H100 fp8_block, the DeepSeek-V3 row at one token on EP8: 46.47 us measured - 44,138,496 B /
    # (0.82 x 3.35e12 B/s) = 46.47 - 16.07 = 30.40 us beyond its stream (one of the median's rows)
    row = frame[(frame.gpu == "h100_sxm") & (frame.dtype == "fp8_block") & frame["shape"].str.startswith(DSV3_T1_EP8)]
    hw = presets.hardware_spec("h100-sxm")
    rest = row.measured_time_ms.iloc[0] * 1e-3 - 44_138_496 / (0.82 * hw.hbm_bandwidth)
    assert rest == pytest.approx(30.40e-6, abs=0.01e-6)
    us = {key: round(f.latency * 1e6, 1) for key, f in fits.items()}
    assert us == {
        ("b200", "bf16"): 28.7,
        ("b200", "fp8"): 29.5,
        ("b200", "fp4"): 16.5,  # TensorRT-LLM-Gen's block-scale MoE: shorter than the CUTLASS ones
        ("h100-sxm", "bf16"): 25.1,
        ("h100-sxm", "fp8"): 26.6,
        ("h100-sxm", "fp8_block"): 26.7,
        ("h200-sxm", "bf16"): 25.5,
        ("h200-sxm", "fp8"): 26.0,
        ("h200-sxm", "fp8_block"): 26.0,
    }
    for (gpu, table), fit in fits.items():
        assert fit.rows >= 12
        assert presets.hardware_spec(gpu).efficiency_for(table).expert_latency == pytest.approx(fit.latency, rel=0.01)
    # the fused call costs more than its two grouped GEMMs' fixed times on every measured table
    for (gpu, table), fit in fits.items():
        assert fit.latency > 2 * presets.hardware_spec(gpu).efficiency_for(table).gemm_latency


# ------------------------------------------------------------------ AMD: AITER's tuned kernels (§3.7.2)
AITER_DATA = Path(__file__).resolve().parents[1] / "data" / "aiter_kernel_measurements.csv"


def test_aiter_tables_fit_and_presets():
    frame = load_kernels(AITER_DATA)
    assert len(frame) == 866 and set(frame.framework) == {"aiter"}
    fits = {(f.gpu, f.table): f for f in fit_aiter(frame)}
    assert set(fits) == {("mi300x", "fp8_block"), ("mi355x", "fp8_block"), ("mi355x", "fp4")}
    # MI355X block-fp8, the best stream: a 32-token TP8 call (257 experts with the shared one, inter
    # 256, top-9): 257 x (1 - (1 - 9/257)^32) = 173.2 experts touched x 3 x 7168 x 256 B + 32 x 9 pairs x
    # (4 x 7168 + 3 x 256) x 2 B + 2 x 32 x 7168 x 2 B = 0.9805 GB in 158.48 us at 8e12 B/s -> 0.7734
    touched = 257 * (1 - (1 - 9 / 257) ** 32)
    nbytes = touched * 3 * 7168 * 256 * (1 + 4 / 16384) + 32 * 9 * (4 * 7168 + 3 * 256) * 2 + 2 * 32 * 7168 * 2
    assert nbytes / (158.4834e-6 * 8e12) == pytest.approx(fits[("mi355x", "fp8_block")].memory, rel=1e-4)
    got = {
        k: (round(f.memory, 3), f.gemm_latency and round(f.gemm_latency * 1e6, 2), round(f.expert_latency * 1e6, 1))
        for k, f in fits.items()
    }
    assert got == {
        ("mi300x", "fp8_block"): (0.783, 5.48, 3.6),
        ("mi355x", "fp8_block"): (0.774, 5.38, 25.5),  # the TP8 call of 1-8 tokens: 77.5 us flat
        ("mi355x", "fp4"): (0.761, None, 13.4),
    }
    for (gpu, table), f in fits.items():
        eff = presets.hardware_spec(gpu).efficiency_for(table)
        assert eff.gemm_memory == pytest.approx(f.memory, abs=6e-4)
        assert eff.expert_latency == pytest.approx(f.expert_latency, rel=0.01)
        if f.gemm_latency is not None:
            assert eff.gemm_latency == pytest.approx(f.gemm_latency, rel=0.01)
    # the compute side, fitted with that stream and fixed time held: GEMMs over every measured M (1 to
    # 32,768 rows on MI300X, to 131,072 on MI355X, powers of two), fused-MoE calls of 32 or more tokens
    big = {
        k: (
            f.compute and round(f.compute, 3),
            f.gemm_half_tokens and round(f.gemm_half_tokens),
            round(f.expert_compute, 3),
        )
        for k, f in fits.items()
    }
    assert big == {
        ("mi300x", "fp8_block"): (0.268, 101, 0.355),
        ("mi355x", "fp8_block"): (0.249, 144, 0.2),
        ("mi355x", "fp4"): (None, None, 0.268),
    }
    assert (fits[("mi300x", "fp8_block")].compute_rows, fits[("mi355x", "fp8_block")].compute_rows) == (147, 579)
    # MI300X at 8,192 rows of DeepSeek's q_b projection (N = 3,072, K = 1,536 at TP8) and its best GEMM
    # there: 2·8192·3072·1536 FLOP = 77.3 GFLOP; the plateau times the saturation at m = 8192 must sit
    # at or below the best measured rate of the 8,192-row GEMMs (0.397 of the 2,615 TFLOP/s fp8 peak)
    f = fits[("mi300x", "fp8_block")]
    assert f.compute * 8192 / (8192 + f.gemm_half_tokens) < 0.397
    for gpu in ("mi300x", "mi325x", "mi355x"):
        eff = presets.hardware_spec(gpu).efficiency_for("fp8_block")
        g = fits[("mi355x" if gpu == "mi355x" else "mi300x", "fp8_block")]
        assert (eff.compute, eff.gemm_half_tokens) == (round(g.compute, 3), round(g.gemm_half_tokens))
    # the fused-MoE compute efficiency is the fit's on MI355X (its tables hold the TP8 and TP4 shapes a
    # deployment runs); gfx942's only shape is EP8's 8x wider experts, so MI300X keeps the derived fp8 value
    mi355 = presets.hardware_spec("mi355x")
    assert mi355.efficiency_for("fp8_block").expert_compute == pytest.approx(
        fits[("mi355x", "fp8_block")].expert_compute, abs=6e-4
    )
    assert mi355.efficiency_for("fp4").expert_compute == pytest.approx(fits[("mi355x", "fp4")].expert_compute, abs=6e-4)
    mi300 = presets.hardware_spec("mi300x")
    assert mi300.efficiency_for("fp8_block").expert_compute == mi300.efficiency_for("fp8").expert_compute == 0.194
    # MI325X takes MI300X's table (the same gfx942 die); MI355X's fp4 GEMMs its block-fp8 fixed time
    a, b = (presets.hardware_spec(g).efficiency_for("fp8_block") for g in ("mi325x", "mi300x"))
    for name in ("gemm_memory", "gemm_latency", "expert_latency", "compute", "gemm_half_tokens"):
        assert getattr(a, name) == getattr(b, name)
    assert mi355.efficiency_for("fp4").gemm_latency == mi355.efficiency_for("fp8_block").gemm_latency


def test_copied_aiter_entries_are_found():
    # ROCm/aiter@e404860's MI355X block-fp8 TP8 table gives 359.48 us from 1,024 to 32,768 tokens: the
    # entries from 2,048 tokens repeat the 1,024-token time for 2-32x the work (at 32,768 tokens that
    # would be 32768·9·6·7168·256 FLOP / 359.48 us = 9.0 PFLOP/s, above MI355X's 5.0 fp8 peak); the
    # flat 77.49 us of 1-8 tokens is below 32 tokens and stays (a launch-bound call)
    frame = load_kernels(AITER_DATA)
    copied = frame[aiter_copies(frame)]
    assert set(copied.gpu) == {"mi355x"} and set(copied.dtype) == {"fp8_block"}
    tokens = sorted(int(s.split("num_tokens=")[1].split(";")[0]) for s in copied["shape"])
    assert tokens == [2048, 4096, 8192, 16384, 32768]
    assert (copied.measured_time_ms == 0.3594797).all()
    assert 32768 * 9 * 6 * 7168 * 256 / 359.4797e-6 > presets.hardware_spec("mi355x").peak_flops_fp8
