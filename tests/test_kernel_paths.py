"""Precision recipes (weight format per tensor group) and GEMM kernel paths (docs/model.md §3.13)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tensorperf as tp
from tensorperf.catalog import presets
from tensorperf.catalog.specs import RecipeSpec, StackSpec
from tensorperf.engine.masks import Reason
from tensorperf.units import DTYPE_BYTES

SMALL = dict(prompt_len=512, output_len=64)


def test_format_sizes_count_their_scales():
    # mxfp4: 4 bits + one 8-bit E8M0 scale per 32 values = 4.25 bits = 0.53125 B
    assert DTYPE_BYTES["mxfp4"] == 0.53125
    # nvfp4: 4 bits + one 8-bit E4M3 scale per 16 values = 4.5 bits = 0.5625 B
    assert DTYPE_BYTES["nvfp4"] == 0.5625
    # int4 (GPTQ/AWQ g128): 4 bits + one fp16 scale per 128 = 4.125 bits
    assert DTYPE_BYTES["int4"] == 4.125 / 8
    # fp8 with one fp32 scale per 128x128 block
    assert DTYPE_BYTES["fp8_block"] == 1 + 4 / 16384
    assert DTYPE_BYTES["fp4"] == 0.5  # the seed's idealised 4-bit format keeps its meaning


def test_every_recipe_preset_loads_and_names_known_formats():
    assert {"uniform", "gpt-oss-mxfp4", "deepseek-fp8", "modelopt-fp8", "modelopt-nvfp4", "awq-int4"} <= set(
        presets.recipes()
    )
    for rid in presets.recipes():
        r = presets.recipe(rid)
        assert r.source, rid
        for g in RecipeSpec.GROUPS:
            assert getattr(r, g) in (None, *DTYPE_BYTES)
    assert presets.recipe("uniform").uniform
    gpt = presets.recipe("gpt-oss-mxfp4")
    assert (gpt.experts, gpt.attention, gpt.embeddings) == ("mxfp4", "bf16", "bf16")


def test_uniform_recipe_equals_the_same_format_spelled_out_per_group():
    spelled = RecipeSpec(name="all-fp8", attention="fp8", mlp="fp8", experts="fp8", embeddings="fp8")
    kw = dict(model=["llama-3.1-8b", "mixtral-8x7b"], hardware="h200-sxm", weight_dtype="fp8", tp=[1, 2])
    kw |= dict(batch=[1, 32], **SMALL)
    a = tp.sweep(recipe="uniform", **kw)
    b = tp.sweep(recipe=spelled, **kw)
    for v in ("ttft", "tpot", "weight_memory_per_gpu", "serving_tokens_per_s_per_gpu"):
        np.testing.assert_allclose(b[v].values, a[v].values, rtol=1e-12, equal_nan=False)


def test_group_formats_set_the_resident_weight_bytes():
    m = presets.model("gpt-oss-120b")
    ds = tp.sweep(model=m, hardware="b200", recipe="gpt-oss-mxfp4", stack="trtllm-1", tp=1, **SMALL)
    bf16 = tp.sweep(model=m, hardware="b200", weight_dtype="bf16", tp=1, **SMALL)
    # experts (their matrices and biases) in 4.25-bit MXFP4, the rest in bf16: the bf16 weights
    # minus what the experts save
    experts = m.num_moe_layers * m.num_experts * m.expert_params
    expected = float(bf16["weight_memory_per_gpu"]) - experts * (2 - 0.53125)
    assert float(ds["weight_memory_per_gpu"]) == pytest.approx(expected, rel=1e-12)
    # the MoE weights are ~97% of gpt-oss-120b: the recipe holds it in ~65 GB, not 234 GB of bf16
    assert 60e9 < expected < 70e9


def test_a_format_without_any_path_is_infeasible_with_the_dtype_reason():
    ds = tp.sweep(model="llama-3.1-8b", hardware="h100-sxm", recipe="awq-int4", stack=["ideal", "vllm"], **SMALL)
    ideal, vllm = ds.sel(stack="ideal"), ds.sel(stack="vllm")
    assert not bool(ideal["feasible"]) and int(ideal["infeasible_reason"]) & int(Reason.DTYPE)
    assert bool(vllm["feasible"])  # vLLM runs int4 weight-only (Marlin W4A16)
    bf16 = tp.sweep(model="llama-3.1-8b", hardware="h100-sxm", stack="vllm", **SMALL)
    assert float(vllm["tpot"]) < 0.5 * float(bf16["tpot"])  # batch-1 decode streams ~1/4 of the bytes


def test_mxfp4_experts_on_hopper_need_a_stack_path():
    ds = tp.sweep(
        model="gpt-oss-120b", hardware="h200-sxm", recipe="gpt-oss-mxfp4", stack=["ideal", "trtllm-1"], **SMALL
    )
    assert not bool(ds.sel(stack="ideal")["feasible"])  # Hopper has no fp4 math
    assert bool(ds.sel(stack="trtllm-1")["feasible"])  # W4A16 / W4A8 kernels


def test_more_paths_are_never_slower():
    """The runtime takes the fastest available path: a stack that adds paths to the ideal one's
    (its overheads set to 0 to compare the kernels alone) is never slower."""
    trt = StackSpec(name="trt-kernels", weight_only_formats=["int8", "int4", "mxfp4"], w4a8_formats=["int4", "mxfp4"])
    kw = dict(model="gpt-oss-120b", hardware=["b200", "gb200"], recipe="gpt-oss-mxfp4", batch=[1, 64, 512])
    ds = tp.sweep(stack=["ideal", trt], tp=[1, 2], **kw, **SMALL)
    for v in ("tpot", "ttft"):
        ideal, more = ds[v].sel(stack="ideal").values, ds[v].sel(stack="trt-kernels").values
        ok = np.isfinite(ideal)
        assert ok.any() and np.all(more[ok] <= ideal[ok] * (1 + 1e-12))


DENSE = ("llama-3.1-8b", "llama-3.1-70b", "llama-2-13b", "falcon-180b")
FP8_HARDWARE = ("h100-sxm", "h200-sxm", "b200", "gb200", "mi300x", "mi355x")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    model=st.sampled_from(DENSE),
    hardware=st.sampled_from(FP8_HARDWARE),
    tp_=st.sampled_from([1, 2, 4, 8]),
    batch=st.sampled_from([1, 4, 16, 64, 256]),
    prompt=st.sampled_from([128, 1024, 8192]),
)
def test_fewer_bytes_per_weight_is_never_slower(model, hardware, tp_, batch, prompt):
    """With the same layout and batch on the same hardware, fp8 weights are never slower than bf16
    (dense models; every hardware with fp8 math). The exceptions the measurements show are kept out
    on purpose and cited in the presets: fp4 vs fp8 GEMMs of few rows on B200 (b200.toml notes) and
    compute-bound grouped MoE GEMMs in fp8 on Hopper (expert_compute sources)."""
    ds = tp.sweep(model=model, hardware=hardware, weight_dtype=["bf16", "fp8"], tp=tp_, batch=batch, prompt_len=prompt)
    for v in ("ttft", "tpot"):
        bf16, fp8 = float(ds[v].sel(weight_dtype="bf16")), float(ds[v].sel(weight_dtype="fp8"))
        if math.isfinite(bf16) and math.isfinite(fp8):
            assert fp8 <= bf16 * (1 + 1e-9), (v, bf16, fp8)


def test_gradients_flow_through_the_fastest_path():
    trt = StackSpec(name="trt-kernels", weight_only_formats=["mxfp4"], w4a8_formats=["mxfp4"])
    kw = dict(model="gpt-oss-120b", hardware="h200-sxm", recipe="gpt-oss-mxfp4", stack=trt, batch=[1, 256], **SMALL)
    g = tp.sensitivity(of="tpot", wrt=["gemm_memory"], **kw)
    value = g["gradient"].sel(param="gemm_memory").values
    eta = 0.771  # h200-sxm [efficiency] gemm_memory: the bf16 table the weight-only path uses
    h = 1e-6
    up = tp.sweep(efficiency={"gemm_memory": eta + h}, **kw)["tpot"].values
    down = tp.sweep(efficiency={"gemm_memory": eta - h}, **kw)["tpot"].values
    np.testing.assert_allclose(value, (up - down) / (2 * h), rtol=1e-4)
    assert np.all(value < 0)


def test_bad_recipes_and_paths_name_the_field():
    with pytest.raises(tp.SpecError, match=r"RecipeSpec.experts = 'int3'.*mxfp4"):
        RecipeSpec(name="x", experts="int3")
    with pytest.raises(tp.SpecError, match=r"weight_only_formats lists 'bf16'"):
        StackSpec(name="x", weight_only_formats=["bf16"])
    with pytest.raises(tp.SpecError, match=r"w4a8_formats lists 'fp8'"):
        StackSpec(name="x", w4a8_formats=["fp8"])
    with pytest.raises(tp.SpecError, match="recipe preset"):
        tp.sweep(model="llama-3.1-8b", hardware="h100-sxm", recipe="no-such-recipe")


def test_block_scaled_fp8_runs_its_own_kernel_table():
    # fp8_block weights (DeepSeek-V3-style checkpoints) run the device's [efficiency.fp8_block] table:
    # their GEMMs carry a per-token-group activation quantization kernel, a fixed time per GEMM that
    # static per-tensor fp8 does not pay (docs/model.md §3.7.1); every other format is unchanged.
    h200 = presets.hardware_spec("h200-sxm")
    block, fp8 = h200.efficiency_for("fp8_block"), h200.efficiency_for("fp8")
    assert block.gemm_memory == fp8.gemm_memory == h200.efficiency.gemm_memory  # one streaming efficiency
    assert block.gemm_latency > fp8.gemm_latency
    kw = dict(model="llama-3.1-8b", hardware="h200-sxm", batch=1, **SMALL)
    t = {f: float(tp.sweep(weight_dtype=f, **kw).tpot) for f in ("fp8", "fp8_block")}
    # Batch-1 decode: 32 layers x (qkv, out_proj 1 kernel each + gate_up, down 2) = 128 GEMM kernels and
    # the LM head: 129 kernels; the weights' bytes differ by the block scales only (4 B per 128 x 128),
    # so the step differs by 129 x (block latency - fp8 latency), plus 7.505e9 x 4/16384 B of scales
    # at 0.771 x 4.8e12 B/s
    scales = 7.505e9 * 4 / 16384 / (0.771 * 4.8e12)
    expected = 129 * (block.gemm_latency - fp8.gemm_latency) + scales
    assert t["fp8_block"] - t["fp8"] == pytest.approx(expected, rel=0.02)
    mi = presets.hardware_spec("l40s")  # no block-scaled measurements: its fp8 table
    assert mi.efficiency_for("fp8_block") == mi.efficiency_for("fp8")


FP4_HARDWARE = ("b200", "gb200", "b300", "gb300")


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    model=st.sampled_from(DENSE),
    hardware=st.sampled_from(FP4_HARDWARE),
    tp_=st.sampled_from([1, 2, 4, 8]),
    batch=st.sampled_from([1, 4, 16, 64, 256]),
    prompt=st.sampled_from([128, 1024, 8192]),
)
def test_nvfp4_is_never_slower_than_fp8(model, hardware, tp_, batch, prompt):
    """nvfp4 weights (4.5 bits) are never slower than fp8 ones with the same layout and batch on
    Blackwell: both stream at the device's efficiency and pay bf16's fixed time per GEMM kernel, their
    input quantization fused into the norm before it in a model (docs/model.md §3.7.1)."""
    ds = tp.sweep(model=model, hardware=hardware, weight_dtype=["fp8", "nvfp4"], tp=tp_, batch=batch, prompt_len=prompt)
    for v in ("ttft", "tpot"):
        fp8, fp4 = float(ds[v].sel(weight_dtype="fp8")), float(ds[v].sel(weight_dtype="nvfp4"))
        if math.isfinite(fp8) and math.isfinite(fp4):
            assert fp4 <= fp8 * (1 + 1e-9), (v, fp8, fp4)


def test_w4a8_of_a_4bit_float_format_needs_fp4_tensor_cores():
    # W4A8 MXFP4 multiplies fp8 activations by fp4 weights in the MMA (Blackwell's f8f6f4 kind); Hopper
    # has none, and TensorRT-LLM runs MXFP4 there as W4A16 (model_config.get_mxfp4_quant_algo).
    # int4 W4A8 (AWQ) dequantizes to fp8 and needs fp8 math only.
    w4a8 = StackSpec(name="w4a8-only", w4a8_formats=["int4", "mxfp4"])
    gpt = tp.sweep(model="gpt-oss-120b", hardware=["h200-sxm", "b200"], recipe="gpt-oss-mxfp4", stack=w4a8, **SMALL)
    assert not bool(gpt.sel(hardware="h200-sxm")["feasible"]) and bool(gpt.sel(hardware="b200")["feasible"])
    awq = tp.sweep(model="llama-3.1-8b", hardware="h200-sxm", weight_dtype="int4", stack=w4a8, **SMALL)
    assert bool(awq["feasible"])


def test_trtllm_runs_mxfp4_experts_w4a8_not_w4a4_on_blackwell():
    # TensorRT-LLM's MXFP4 MoE at SM >= 100 is W4A8_MXFP4_MXFP8 (trtllm-1.toml no_native_formats):
    # fp8 math, so a compute-bound prefill of 256 x 8192 tokens is slower than on the native fp4 path
    # the same stack would take without the restriction, and equals a stack that offers W4A8 alone
    trt = presets.stack("trtllm-1")
    assert trt.no_native_formats == ("mxfp4",)
    native = StackSpec(name="native-too", weight_only_formats=trt.weight_only_formats, w4a8_formats=trt.w4a8_formats)
    only = StackSpec(name="w4a8", w4a8_formats=["mxfp4"], no_native_formats=["mxfp4"])
    zero = dataclasses.replace(trt, name="trt-kernels", step_overhead=0.0, request_overhead=0.0)
    kw = dict(model="gpt-oss-120b", hardware="b200", recipe="gpt-oss-mxfp4", batch=256, prompt_len=8192, output_len=64)
    ds = tp.sweep(stack=[zero, native, only], **kw)
    t = {s: float(ds.ttft.sel(stack=s)) for s in ("trt-kernels", "native-too", "w4a8")}
    assert t["trt-kernels"] > 1.2 * t["native-too"]
    assert t["trt-kernels"] == pytest.approx(t["w4a8"], rel=1e-9)


def test_hopper_mxfp4_weight_only_experts_run_their_measured_table():
    # H200's [efficiency.mxfp4_w4a16] (aiconfigurator TensorRT-LLM TRITON W4A16 MXFP4 MoE rows): the
    # weights stream at 0.412 of 4.8e12 B/s and each of the two grouped GEMMs adds 15.2 us. gpt-oss-120b
    # batch-1 decode: 4 experts of 3 x 2880 x 2880 weights at 4.25 bits per layer, 36 layers:
    # 36 x (4 x 3 x 2880^2 x 4.25/8 B / (0.412 x 4.8e12 B/s) + 2 x 15.2e-6 s) = 2.0570 ms
    h200 = presets.hardware_spec("h200-sxm")
    table = h200.efficiency_for("mxfp4_w4a16")
    assert (table.gemm_memory, table.gemm_latency) == (0.412, 1.52e-05)
    assert presets.hardware_spec("b200").efficiency_for("mxfp4_w4a16") == presets.hardware_spec("b200").efficiency
    ds = tp.sweep(model="gpt-oss-120b", hardware="h200-sxm", recipe="gpt-oss-mxfp4", stack="trtllm-1", batch=1, **SMALL)
    expected = 36 * (4 * 3 * 2880**2 * 4.25 / 8 / (0.412 * 4.8e12) + 2 * 15.2e-6)
    assert float(ds.decode_op_time.sel(op="experts")) == pytest.approx(expected, rel=0.005)


@pytest.mark.parametrize(
    "stack, hardware, reason",
    [
        (
            'id = "w4a8-only"\nw4a8_formats = ["mxfp4"]\n',
            "h200-sxm",
            "W4A8 of mxfp4 needs fp4 tensor cores for its fp8 x fp4 MMA, which h200-sxm lacks",
        ),
        (
            'id = "no-native"\nno_native_formats = ["mxfp4"]\n',
            "b200",
            "stack no-native does not run mxfp4 on its native fp4 math (no_native_formats)",
        ),
    ],
)
def test_explain_says_why_mxfp4_has_no_path(tmp_path, capsys, stack, hardware, reason):
    from tensorperf.interface.cli import main

    path = tmp_path / "stack.toml"
    path.write_text(stack)
    main(
        [
            "explain",
            "--model",
            "gpt-oss-120b",
            "--hardware",
            hardware,
            "--recipe",
            "gpt-oss-mxfp4",
            "--stack",
            str(path),
        ]
    )
    out = capsys.readouterr().out
    assert "feasible: no" in out and reason in out


def test_fused_moe_call_pays_its_measured_fixed_time():
    """docs/model.md §3.5, §3.7.2: DeepSeek-V3 block-fp8 on 8 H200s (TP8), one decode token per step.
    Per MoE layer the experts op streams 8 touched experts' 1/8 slices, 8 x 3 x 7168 x 256 fp8 bytes
    = 44,040,192 B, their block scales (4 B per 128 x 128: 10,752 B), 8 routed pairs' activations
    8 x (4 x 7168 + 3 x 256) x 2 B = 471,040 B and the token's row in and out, 2 x 7168 x 2 = 28,672 B:
    44,550,656 B / (0.771 x 4.8e12 B/s) = 12.04 us, plus the fp8_block table's 26.0 us per fused call."""
    kw = dict(model="deepseek-v3", hardware="h200-sxm", weight_dtype="fp8", kv_dtype="fp8", recipe="deepseek-fp8")
    kw.update(tp=8, batch=1, prompt_len=1024, output_len=16)
    per_layer = (44_040_192 + 10_752 + 471_040 + 28_672) / (0.771 * 4.8e12) + 26.0e-6
    ds = tp.sweep(**kw)
    assert float(ds.decode_op_time.sel(op="experts")) / 58 == pytest.approx(per_layer, rel=1e-6)
    # an efficiency override replaces the tables' value; 0 falls back to the two grouped GEMMs'
    # gemm_latency (2 x 6.21 us for fp8_block on H200)
    for value, fixed in ((50e-6, 50e-6), (0.0, 2 * 6.21e-6)):
        ds = tp.sweep(**kw, efficiency={"expert_latency": value})
        assert float(ds.decode_op_time.sel(op="experts")) / 58 == pytest.approx(per_layer - 26.0e-6 + fixed, rel=1e-6)
