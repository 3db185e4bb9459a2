"""Serving-stack profiles (docs/model.md §10.4): the stacks' peer-memory all-reduce kernels
(physics.comm one-shot / two-shot, fitted by tensorperf.analysis.allreduce_fit) and their KV-cache
sizing (physics.memory.usable_memory)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import tensorperf as tp
from tensorperf.analysis import allreduce_fit, fidelity, stacks
from tensorperf.catalog import presets
from tensorperf.engine.physics import comm
from tensorperf.interface.cli import main

ROOT = Path(__file__).resolve().parents[1]
KERNELS = ROOT / "data" / "kernel_measurements.csv"
T = lambda x: torch.tensor(float(x), dtype=torch.float64)  # noqa: E731
# stacks that differ from the ideal one in one mechanism only (no host overheads)
NCCL = tp.StackSpec(name="nccl-only")
CUSTOM = tp.StackSpec(name="custom-ar", custom_allreduce=True)
AFTER = tp.StackSpec(name="kv-after-weights", kv_cache_after_weights=True)
DECODE_70B = dict(model="llama-3.1-70b", prompt_len=1024, output_len=128, breakdown=True)


def per_all_reduce(ds) -> np.ndarray:
    """Seconds of one tensor-parallel all-reduce of a decode step: tp_comm over 80 layers x 2."""
    return ds.decode_op_time.sel(op="tp_comm").values / (80 * 2)


# ------------------------------------------------------------------------------- physics
def test_one_shot_and_two_shot_by_hand():
    # S = 1e6 B over n = 4 GPUs at W = 200e9 B/s, alpha_os = 2 us, alpha_ts = 5 us:
    # one-shot 2 us + 3 x 1e6 / 200e9 = 2 + 15 = 17 us
    # two-shot 2 x 5 us + 2 x 3/4 x 1e6 / 200e9 = 10 + 7.5 = 17.5 us
    assert float(comm.one_shot_all_reduce(T(1e6), T(4), 200e9, 2e-6)) == pytest.approx(17e-6, rel=1e-12)
    assert float(comm.two_shot_all_reduce(T(1e6), T(4), 200e9, 5e-6)) == pytest.approx(17.5e-6, rel=1e-12)
    # at 64 MB the two-shot's 1.5 S/W beats the one-shot's 3 S/W: 962 us vs 1922 us
    assert float(comm.two_shot_all_reduce(T(64e6), T(4), 200e9, 5e-6)) == pytest.approx(490e-6, rel=1e-12)
    assert float(comm.one_shot_all_reduce(T(64e6), T(4), 200e9, 2e-6)) == pytest.approx(962e-6, rel=1e-12)
    # a group of one calls no kernel
    assert float(comm.one_shot_all_reduce(T(1e6), T(1), 200e9, 2e-6)) == 0.0
    assert float(comm.two_shot_all_reduce(T(1e6), T(1), 200e9, 5e-6)) == 0.0


def test_the_runtime_takes_the_fastest_path_inside_one_domain():
    kernels = comm.CustomAllReduce(bw=T(200e9), lat_one_shot=T(2e-6), lat_two_shot=T(5e-6), enabled=torch.tensor(True))
    tiers = comm.Tiers(bw_in=T(400e9), lat_in=T(1e-6), bw_out=T(50e9), lat_out=T(4e-6), domain=T(8))
    t, usable = kernels.time(T(1e6), T(4), tiers)
    assert float(t) == pytest.approx(17e-6, rel=1e-12) and bool(usable)
    _, usable = kernels.time(T(1e6), T(16), tiers)  # 16 GPUs leave an 8-GPU domain: no peer memory
    assert not bool(usable)


# ------------------------------------------------------------------------------- the fit
@pytest.fixture(scope="module")
def fits():
    return {f.gpu: f for f in allreduce_fit.fit_file(KERNELS)}


def test_the_fit_reproduces_the_measured_rows(fits):
    """Median |error| <= 7% and max <= 18% per GPU over the 1 MiB and 16 MiB rows (2/4/8 GPUs)."""
    assert set(fits) == {"h100-sxm", "h200-sxm", "b200"}
    rows = allreduce_fit.custom_rows(pd.read_csv(KERNELS))
    assert len(rows) == 18 and rows.message_bytes.max() == 2**24  # the 256 MiB rows run NCCL
    for f in fits.values():
        assert f.rows == 6 and f.median_abs_error <= 0.07 and f.max_abs_error <= 0.18
        mine = rows[rows.gpu == {"h100-sxm": "h100_sxm", "h200-sxm": "h200_sxm", "b200": "b200_sxm"}[f.gpu]]
        W = presets.hardware_spec(f.gpu).scaleup_bandwidth
        got = allreduce_fit.predict(mine.message_bytes, mine.num_gpus, W, f.latency, f.twoshot_latency, f.efficiency)
        np.testing.assert_allclose(got, mine.measured_time_ms * 1e-3, rtol=0.18)


def test_the_presets_hold_the_fitted_values(fits):
    for gpu, f in fits.items():
        hw = presets.hardware_spec(gpu)
        assert hw.custom_allreduce_latency == pytest.approx(f.latency, rel=0.01)
        assert hw.custom_allreduce_twoshot_latency == pytest.approx(f.twoshot_latency, rel=0.01)
        assert hw.custom_allreduce_efficiency == pytest.approx(f.efficiency, rel=0.01)
        assert "allreduce_fit" in hw.source
    for derived, measured in (("gb200", "b200"), ("b300", "b200"), ("gb300", "b200"), ("h800", "h100-sxm")):
        a, b = presets.hardware_spec(derived), presets.hardware_spec(measured)
        assert (a.custom_allreduce_latency, a.custom_allreduce_efficiency) == (
            b.custom_allreduce_latency,
            b.custom_allreduce_efficiency,
        )
        assert "derived from the nearest measured device" in a.source
    for unmeasured in ("a100-sxm-80g", "mi300x", "mi325x", "mi355x"):  # none: NCCL/RCCL only
        assert presets.hardware_spec(unmeasured).custom_allreduce_efficiency == 0


# ------------------------------------------------------------------------------- the engine
def test_tp8_decode_all_reduce_on_b200_and_h200():
    """Batch 1 of llama-3.1-70b on TP8 sends 8192 x 2 B = 16,384 B per all-reduce.

    NCCL ring (ideal stack): 2(n-1) alpha + 2(n-1)/n (S + h)/(eta W): H200 22.4 + 0.6 = 23.0 us,
    B200 28.0 + 1.9 = 29.9 us (B200 slower: its fitted alpha 2.0 us and half-bytes 620 KB).
    trtllm-1: one-shot alpha_os + 7 S/(eta W): H200 2.17 + 7 x 16384/(0.619 x 450e9) = 2.58 us,
    B200 3.58 + 7 x 16384/(0.475 x 900e9) = 3.85 us. The measured one-shot latency floor is higher on
    B200 (2 GPUs, 1 MiB: 6.42 us vs 5.99 us on H200), so at batch 1 H200 stays ahead; from about 10
    tokens per message B200's bandwidth wins: at batch 16 (262,144 B) H200 2.17 + 6.59 = 8.76 us,
    B200 3.58 + 4.29 = 7.87 us."""
    got = {}
    for hw in ("h200-sxm", "b200"):
        for stack in ("ideal", "trtllm-1"):
            ds = tp.sweep(hardware=hw, tp=8, batch=[1, 16], stack=stack, **DECODE_70B)
            got[hw, stack] = per_all_reduce(ds)
    np.testing.assert_allclose(got["h200-sxm", "trtllm-1"], [2.58e-6, 8.76e-6], rtol=0.01)
    np.testing.assert_allclose(got["b200", "trtllm-1"], [3.85e-6, 7.87e-6], rtol=0.01)
    assert got["b200", "trtllm-1"][1] < got["h200-sxm", "trtllm-1"][1]  # bandwidth-bound: B200 faster
    for hw in ("h200-sxm", "b200"):  # the kernels cut the small all-reduce 5x or more
        assert np.all(got[hw, "trtllm-1"][0] * 5 < got[hw, "ideal"][0])
    assert got["b200", "ideal"][0] > got["h200-sxm", "ideal"][0]


def test_the_ideal_stack_is_nccl_bit_for_bit():
    """The ideal stack, a stack without the kernels, and one with them on devices without measured
    kernel parameters give the same bits; so do the ideal points of a grid that also holds stacks
    with the kernels and KV rules (zipped)."""
    for batch in ([1, 64], "max"):
        _same_bits(
            dict(
                model=["llama-3.1-70b", "mixtral-8x7b"],
                tp=[1, 2, 8],
                batch=batch,
                prompt_len=[128, 4096],
                output_len=256,
                weight_dtype="fp8",
                kv_dtype="fp8",
            )
        )


def _same_bits(grid: dict) -> None:
    ideal = tp.sweep(hardware=["h200-sxm", "mi300x"], stack="ideal", **grid)
    nccl = tp.sweep(hardware=["h200-sxm", "mi300x"], stack=NCCL, **grid)
    unmeasured = tp.sweep(hardware=["a100-sxm-80g", "mi300x"], stack=CUSTOM, **grid)
    plain = tp.sweep(hardware=["a100-sxm-80g", "mi300x"], stack="ideal", **grid)
    for a, b in ((ideal, nccl), (unmeasured, plain)):
        for name in a.data_vars:
            assert np.array_equal(a[name].values, b[name].values, equal_nan=True), name
    mixed = tp.sweep(
        hardware=["h200-sxm", "h200-sxm", "h200-sxm"],
        stack=["ideal", "trtllm-1", "sglang"],
        zipped=["hardware", "stack"],
        **grid,
    )
    first = mixed.isel(point=0)
    only = tp.sweep(hardware="h200-sxm", stack="ideal", **grid)
    for name in only.data_vars:
        assert np.array_equal(first[name].values, only[name].values, equal_nan=True), name


def test_the_kernels_never_leave_the_domain():
    """tp = 16 on 8-GPU H200 domains crosses the network: the ring only, with or without the kernels;
    tp = 8 inside the domain takes them."""
    kw = dict(hardware="h200-sxm", tp=[8, 16], batch=4, **DECODE_70B)
    with_kernels, without = per_all_reduce(tp.sweep(stack=CUSTOM, **kw)), per_all_reduce(tp.sweep(stack=NCCL, **kw))
    assert with_kernels[1] == without[1]
    assert with_kernels[0] < without[0] / 4


def test_the_kernels_replace_no_half_bytes_penalty():
    # H200 one-shot over 2 GPUs of 4 x 8192 x 2 = 65,536 B: 2.17 us + 65536/(0.619 x 450e9) = 2.405 us
    # (with h = 120 KB added it would be 2.84 us)
    ds = tp.sweep(hardware="h200-sxm", tp=2, batch=4, stack=CUSTOM, **DECODE_70B)
    assert float(per_all_reduce(ds)) == pytest.approx(2.17e-6 + 65536 / (0.619 * 450e9), rel=1e-9)


# ------------------------------------------------------------------------------- KV-cache sizing
def test_max_batch_after_the_weights_by_hand():
    """llama-3.1-8b, bf16, 1 x H200, 1024 + 1024 tokens. W = 8,030,261,248 params x 2 B =
    16,060,522,496 B; workspace 8192 x (4 x 4096 + 2 x 14336) x 2 B = 738,197,504 B; per sequence
    32 layers x 2 x 8 x 128 x 2 B x 2048 tokens = 268,435,456 B KV + 128256 x 4 B logits = 268,948,480 B.
    M = 150,754,820,096 B.
    Of the whole HBM (vLLM): floor((0.9 M - W - ws)/seq) = floor(118,880,618,086.4/268,948,480) = 442.
    After the weights (TensorRT-LLM): floor(0.9 (M - W - ws)/seq) = floor(120,560,490,086.4/268,948,480) = 448."""
    m = presets.model("llama-3.1-8b")
    W, ws, seq, M = (
        m.num_params * 2,
        8192 * (4 * 4096 + 2 * 14336) * 2,
        32 * 2 * 8 * 128 * 2 * 2048 + 128256 * 4,
        150754820096,
    )
    assert (W, ws, seq) == (16060522496, 738197504, 268948480)
    assert int((0.9 * M - W - ws) // seq) == 442 and int(0.9 * (M - W - ws) // seq) == 448
    kw = dict(model="llama-3.1-8b", hardware="h200-sxm", batch="max", prompt_len=1024, output_len=1024)
    assert int(tp.sweep(stack=NCCL, **kw).max_batch) == 442
    assert int(tp.sweep(stack=AFTER, **kw).max_batch) == 448
    assert int(tp.sweep(stack="trtllm-1", **kw).max_batch) == 448


LLAMA2 = ("M0327", "M0330", "M0333", "M0335")  # Llama-2-70B fp8 on 1 x H200, TensorRT-LLM 0.5 / 0.7a


def test_the_llama2_70b_h200_tp1_rows_fit_on_tensorrt_llm():
    """192 x (128 + 2048) and 96 x (128 + 4096) tokens of fp8 KV (68.5 and 66.4 GB) next to 69 GB of
    fp8 weights exceed 0.9 of the H200's 150.8 GB; TensorRT-LLM's 0.9 of what the weights and the
    workspace leave holds them."""
    rows = fidelity.load_measurements(ROOT / "data" / "measurements.csv")
    rows = rows[rows["id"].isin(LLAMA2)]
    trt = fidelity.predict(rows).set_index("id")
    assert (trt.loc[list(LLAMA2), "stack"] == "trtllm-0").all()
    assert (trt.loc[list(LLAMA2), "status"] == "ok").all()
    whole = fidelity.predict(rows, stacks={"trtllm-0": "ideal"}).set_index("id")
    assert whole.loc["M0333", "status"] == whole.loc["M0335", "status"] == "skipped: infeasible (memory)"


# ------------------------------------------------------------------------------- specs and presets
@pytest.mark.parametrize(
    "kw, field",
    [
        (dict(kv_cache_fraction=0), "kv_cache_fraction"),
        (dict(kv_cache_fraction=1.5), "kv_cache_fraction"),
        (dict(kv_cache_after_weights="yes"), "kv_cache_after_weights"),
        (dict(custom_allreduce=1), "custom_allreduce"),
        (dict(compute_efficiency=0), "compute_efficiency"),
        (dict(compute_efficiency=1.2), "compute_efficiency"),
        (dict(kernels_measured=True, compute_efficiency=0.5), "compute_efficiency"),
    ],
)
def test_bad_stack_values_name_the_field(kw, field):
    with pytest.raises(tp.SpecError, match=rf"StackSpec\.{field} = .* is not allowed"):
        tp.StackSpec(name="bad", **kw)


@pytest.mark.parametrize("field, value", [("custom_allreduce_efficiency", 1.5), ("custom_allreduce_latency", -1e-6)])
def test_bad_hardware_values_name_the_field(field, value):
    with pytest.raises(tp.SpecError, match=rf"HardwareSpec\.{field} = .* is not allowed"):
        presets.hardware_spec("h200-sxm").replace(**{field: value})


def test_the_presets_and_the_toml_loader(tmp_path):
    expect = {
        "ideal": (False, 0.9, False),
        "trtllm-0": (True, 0.9, True),
        "trtllm-1": (True, 0.9, True),
        "trtllm-triton": (True, 0.9, True),
        "vllm": (True, 0.9, False),
        "sglang": (True, 0.88, False),
        "sglang-rocm": (True, 0.8, False),  # InferenceX's AMD scripts: --mem-fraction-static 0.8
        "atom": (True, 0.9, False),
    }
    assert set(expect) == set(fidelity.STACK_IDS)
    for sid, values in expect.items():
        st = presets.stack(sid)
        assert (st.custom_allreduce, st.kv_cache_fraction, st.kv_cache_after_weights) == values
        for name in ("custom_allreduce", "kv_cache_fraction", "kv_cache_after_weights"):
            assert f"{name}: " in st.source  # every value has a [sources] entry
    path = tmp_path / "s.toml"
    path.write_text('id = "s"\ncustom_allreduce = true\nkv_cache_fraction = 0.8\nkv_cache_after_weights = true\n')
    st = presets.load_stack_file(path)
    assert (st.custom_allreduce, st.kv_cache_fraction, st.kv_cache_after_weights) == (True, 0.8, True)
    path.write_text('id = "s"\nkv_cache_fraction = 1.5\n')
    with pytest.raises(tp.SpecError, match="kv_cache_fraction"):
        presets.load_stack_file(path)


# ------------------------------------------------------------------------------- compute share
SLOW = tp.StackSpec(name="half-rate kernels", compute_efficiency=0.5)


def test_a_compute_share_is_the_device_at_that_share_of_its_peaks():
    """compute_efficiency c divides every op's compute time by c: the same results as the ideal stack
    on a device whose bf16, fp8 and fp4 peaks are c times the preset's (what-if scales), bit for bit
    in float64, at a compute-bound prefill and a memory-bound decode alike."""
    grid = dict(
        model="llama-3.1-70b",
        hardware=["h200-sxm", "mi355x"],
        weight_dtype=["bf16", "fp8"],
        prompt_len=[128, 8192],
        output_len=256,
        tp=8,
        batch=[1, 64],
        dtype="float64",
    )
    slow = tp.sweep(stack=SLOW, **grid)
    halved = tp.sweep(
        stack="ideal", peak_flops_bf16_scale=0.5, peak_flops_fp8_scale=0.5, peak_flops_fp4_scale=0.5, **grid
    )
    for name in ("ttft", "tpot", "serving_ttft", "serving_tpot", "serving_tokens_per_s_per_gpu"):
        np.testing.assert_array_equal(slow[name].values, halved[name].values)
    ideal = tp.sweep(stack="ideal", **grid)
    # an 8192-token prefill on 8 GPUs is compute-bound: close to twice as long; a batch-1 decode
    # step streams the weights: its time barely moves
    long = dict(prompt_len=8192, batch=1, hardware="h200-sxm", weight_dtype="bf16")
    ratio = float(slow.ttft.sel(**long) / ideal.ttft.sel(**long))
    assert 1.6 < ratio <= 2.0
    step = float(slow.tpot.sel(**long) / ideal.tpot.sel(**long))
    assert 1.0 <= step < 1.1


def test_cli_presets_shows_the_stack_profiles(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    assert "custom AR" in out and "0.9 of free after weights" in out and "0.88 of HBM" in out


def test_a_refitted_stack_preset_keeps_its_profile(tmp_path):
    """`tensorperf calibrate --stacks` rewrites the overheads; the kernels and the KV rule stay, with
    their sources."""
    line = dict(
        stack="trtllm-1",
        train=10,
        test=5,
        train_latency=10,
        fitted=True,
        step_overhead=3e-3,
        request_overhead=0.1,
        train_before=0.2,
        train_after=0.1,
        test_before=0.2,
        test_after=0.1,
    )
    path = tmp_path / "trtllm-1.toml"
    path.write_text(stacks.preset_toml(line, ["m.csv"]))
    spec, preset = presets.load_stack_file(path), presets.stack("trtllm-1")
    assert (spec.step_overhead, spec.request_overhead) == (3e-3, 0.1)
    assert (spec.custom_allreduce, spec.kv_cache_fraction, spec.kv_cache_after_weights) == (True, 0.9, True)
    same = dict(name=spec.name, step_overhead=3e-3, request_overhead=0.1, source=spec.source)
    assert spec == dataclasses.replace(preset, **same)  # every other field as in the preset
    assert "free_gpu_memory_fraction" in spec.source and "customAllReduceKernels" in spec.source
