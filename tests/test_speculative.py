"""Speculative decoding (issue #19; docs/model.md §3.14): k draft steps then one verification pass of
k + 1 positions per sequence, E = (1 − α^(k+1))/(1 − α) tokens per step (Leviathan et al. 2023)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorperf as tp
from tensorperf.analysis import fidelity, speculative_rows
from tensorperf.analysis.sensitivity import sensitivity
from tensorperf.catalog.presets import model
from tensorperf.engine.masks import Reason
from tensorperf.engine.physics.layout import Layout
from tensorperf.engine.physics.speculative import mtp_weight_bytes, tokens_per_step
from tensorperf.validation import SpecError

ROOT = Path(__file__).resolve().parents[1]
# DeepSeek-V3 as InferenceX runs it on 8 H200 (fp8 block-scaled weights, fp8 KV cache)
DSV3 = dict(
    model="deepseek-v3",
    hardware="h200-sxm",
    weight_dtype="fp8",
    kv_dtype="fp8",
    recipe="deepseek-fp8",
    tp=8,
    ep=8,
    prompt_len=1024,
    output_len=256,
    breakdown=False,
)
LLAMA = dict(model="llama-3.1-8b", hardware="h100-sxm", prompt_len=512, output_len=128, breakdown=False)
TIMES = ("tpot", "serving_tpot", "serving_ttft", "serving_tokens_per_s_per_gpu", "decode_tokens_per_s_per_gpu")


def _t(x):
    return torch.as_tensor(x, dtype=torch.float64)


# ---- the expected tokens per step ---------------------------------------------------------------
def test_tokens_per_step_hand_values():
    # DeepSeek-V3's one MTP module (k = 1) at its 87.5% acceptance: 1 + 0.875 = 1.875 tokens per step
    # (the report's 1.8x TPS once the drafter's cost is paid)
    assert tokens_per_step(_t(0.875), _t(1.0), 1).item() == 1.875
    assert tokens_per_step(_t(0.5), _t(3.0), 3).item() == 1 + 0.5 + 0.25 + 0.125
    assert tokens_per_step(_t(0.0), _t(4.0), 4).item() == 1.0  # α = 0: the verified token only
    assert tokens_per_step(_t(0.9), _t(0.0), 4).item() == 1.0  # k = 0: exactly one
    assert tokens_per_step(_t(1.0), _t(3.0), 3).item() == 4.0  # α = 1: all k + 1


def test_a_reused_mtp_module_is_accepted_less_at_each_further_position():
    # DeepSeek-V3 drafts k = 3 with its one MTP module: position 1 at 0.875, position 2 at 0.875·0.76,
    # position 3 at 0.875·0.76² given the one before: E = 1 + 0.875 + 0.875²·0.76 + 0.875³·0.76³
    #   = 1 + 0.875 + 0.581875 + 0.294079625 = 2.750954625
    reuse = (_t(0.76), _t(1.0))
    got = tokens_per_step(_t(0.875), _t(3.0), 3, reuse).item()
    assert got == pytest.approx(1 + 0.875 + 0.875**2 * 0.76 + 0.875**3 * 0.76**3, rel=1e-12)
    assert got == pytest.approx(2.750954625, rel=1e-12)
    # within the modules' own depth nothing decays, and a decay of 1 is Leviathan's form bit for bit
    assert tokens_per_step(_t(0.875), _t(1.0), 1, reuse).item() == 1.875
    assert (
        tokens_per_step(_t(0.7), _t(4.0), 4, (_t(1.0), _t(1.0))).item() == tokens_per_step(_t(0.7), _t(4.0), 4).item()
    )
    # the preset default decays; a given acceptance is the same at every position (α = 1: k + 1 tokens)
    dflt = tp.sweep(**DSV3, batch=8, speculative="mtp", spec_tokens=3)
    flat = tp.sweep(**DSV3, batch=8, speculative="mtp", spec_tokens=3, acceptance=0.875)
    assert float(dflt.tpot) > float(flat.tpot)


def test_the_decay_is_the_dsv4_golden_acceptance_lengths():
    # InferenceX golden_al_distribution/dsv4_mtp.yaml, AL at 1, 2, 3 draft tokens: thinking off 1.92,
    # 2.61, 2.97; on 1.79, 2.27, 2.49. Conditional acceptances (AL(j) − AL(j−1))/(AL(j−1) − AL(j−2)):
    ratios = []
    for al in ((1.0, 1.92, 2.61, 2.97), (1.0, 1.79, 2.27, 2.49)):
        p = [(al[j] - al[j - 1]) / (al[j - 1] - al[j - 2] if j > 1 else 1.0) for j in (1, 2, 3)]
        ratios += [p[1] / p[0], p[2] / p[1]]
    assert np.mean(ratios) == pytest.approx(0.759, abs=5e-4)
    assert model("deepseek-v3").mtp_reuse_decay == 0.76


@settings(max_examples=60, deadline=None, derandomize=True)
@given(alpha=st.floats(0.0, 0.99), k=st.integers(0, 12))
def test_tokens_per_step_is_leviathans_closed_form(alpha, k):
    expected = (1 - alpha ** (k + 1)) / (1 - alpha)  # Leviathan et al. 2023, eq. 1
    got = tokens_per_step(_t(alpha), _t(float(k)), 12).item()
    assert got == pytest.approx(expected, rel=1e-12)


# ---- the limits the issue names --------------------------------------------------------------------
@pytest.mark.parametrize("method, extra", [("mtp", {}), ("eagle", {"acceptance": 0.6})])
def test_zero_draft_tokens_is_no_speculation_bit_for_bit(method, extra):
    kw = dict(DSV3, batch=[1, 16])
    plain = tp.sweep(**kw)
    spec = tp.sweep(**kw, speculative=method, spec_tokens=0, **extra)
    for name in plain.data_vars:
        np.testing.assert_array_equal(plain[name].values, spec[name].values, err_msg=name)


def test_zero_draft_tokens_of_a_draft_model_is_no_speculation_bit_for_bit():
    plain = tp.sweep(**LLAMA, batch=[1, 8])
    spec = tp.sweep(
        **LLAMA, batch=[1, 8], speculative="draft", draft_model="llama-3.1-8b", acceptance=0.7, spec_tokens=0
    )
    for name in plain.data_vars:
        np.testing.assert_array_equal(plain[name].values, spec[name].values, err_msg=name)


def test_a_grid_mixing_methods_keeps_none_bit_for_bit():
    plain = tp.sweep(**DSV3, batch=[1, 32])
    mixed = tp.sweep(**DSV3, batch=[1, 32], speculative=["none", "mtp", "eagle"], spec_tokens=[1, 3], acceptance=0.7)
    for name in TIMES + ("memory_per_gpu",):
        for k in (1, 3):
            np.testing.assert_array_equal(plain[name].values, mixed[name].sel(speculative="none", spec_tokens=k).values)


def test_no_acceptance_pays_the_drafter_and_a_wider_verification():
    # α = 0: one token per step, for k draft steps and a (k + 1)-token verification: slower than none,
    # and slower the more it drafts
    plain = tp.sweep(**DSV3, batch=[1, 64])
    spec = tp.sweep(**DSV3, batch=[1, 64], speculative="mtp", spec_tokens=[1, 2, 3], acceptance=0.0)
    for name in ("tpot", "serving_tpot"):
        t0, t = plain[name].values, spec[name].values  # (batch,), (batch, spec_tokens)
        assert (t > t0[:, None]).all(), name
        assert (np.diff(t, axis=1) > 0).all(), name
    assert (spec.serving_tokens_per_s_per_gpu.values < plain.serving_tokens_per_s_per_gpu.values[:, None]).all()


def test_full_acceptance_approaches_k_plus_one_tokens_per_step():
    # tpot·E is the step time, whatever α: so tpot(α → 1)·(k + 1) → tpot(α = 0)·1
    spec = tp.sweep(**DSV3, batch=[1, 16], speculative="mtp", spec_tokens=[1, 3], acceptance=[0.0, 1 - 1e-9])
    step = spec.tpot.sel(acceptance=0.0)
    nearly = spec.tpot.sel(acceptance=1 - 1e-9) * (spec.spec_tokens + 1)
    np.testing.assert_allclose(nearly.values, step.values, rtol=1e-8)


def test_high_acceptance_speeds_up_small_batches():
    plain = tp.sweep(**DSV3, batch=1)
    spec = tp.sweep(**DSV3, batch=1, speculative="mtp", spec_tokens=1)  # the preset's 0.875
    ratio = float(spec.tpot / plain.tpot)
    # the step yields 1.875 tokens and costs more than a plain one: one MTP module (a MoE layer, its
    # projection, the LM head: ~1/60 of the model) and a verification whose 2 tokens route to up to
    # 16 experts per layer instead of 8 (the routed experts' weights dominate a batch-1 step)
    step_ratio = ratio * 1.875
    assert 1.1 < step_ratio < 1.5 and ratio < 0.8


@pytest.mark.parametrize("of", ["tpot", "serving_tpot", "serving_tokens_per_s_per_gpu"])
def test_gradient_in_acceptance_equals_finite_differences(of):
    kw = dict(DSV3, batch=[1, 32], speculative="mtp", spec_tokens=[1, 3])
    kw.pop("breakdown")
    a, h = 0.7, 1e-6
    g = sensitivity(of=of, wrt=["acceptance"], acceptance=a, **kw).gradient[..., 0].numpy()
    up = tp.sweep(**kw, acceptance=a + h, breakdown=False)[of].values
    down = tp.sweep(**kw, acceptance=a - h, breakdown=False)[of].values
    np.testing.assert_allclose(g.reshape(up.shape), (up - down) / (2 * h), rtol=1e-5)
    assert (g < 0).all() if of != "serving_tokens_per_s_per_gpu" else (g > 0).all()


# ---- memory ------------------------------------------------------------------------------------------
def test_mtp_module_of_deepseek_v3_is_its_published_size():
    # one MoE layer (MLA, 256 + 1 experts, router) + the 2d·d projection + 3 norms = 11,610,068,224
    # parameters: the 685B release less the 671B main model; the per-GPU weight bytes leave out the
    # MLA latent norms (1536 + 512 weights, as memory.weight_bytes_per_gpu does for every layer)
    m = model("deepseek-v3")
    d = m.d_model
    assert (
        m.attention_params + m.norm_params_per_layer + 257 * m.expert_params + m.router_params + 2 * d * d + 3 * d
        == (11_610_068_224)
    )
    one = _t(1.0)
    lay = Layout(tp=one, pp=one, dp=one, ep=one, micro=one)
    view = tp.build_grid(model=m, hardware="h200-sxm").spec("model")
    assert mtp_weight_bytes(view, lay, _t(1.0)).item() == 11_610_068_224 - 1536 - 512


def test_drafter_memory_adds_its_weights_and_cache():
    plain = tp.sweep(**DSV3, batch=8)
    mtp = tp.sweep(**DSV3, batch=8, speculative="mtp", spec_tokens=2)
    # per GPU at tp = ep = 8: MLA attention and norms whole on each rank (the latent path replicated,
    # the heads split), 256 experts over 8 GPUs, shared expert over tp, router, projection and norms
    m = model("deepseek-v3")
    extra_weights = mtp.weight_memory_per_gpu - plain.weight_memory_per_gpu
    assert 1.5e9 < float(extra_weights) < 1.7e9  # ≈ 11.32e9 expert bytes / 8 + 0.2e9 rest (fp8: 1 B)
    # KV: one more layer of the 576-element latent at fp8 for every token of the context, per sequence
    kv = mtp.kv_cache_memory_per_gpu - plain.kv_cache_memory_per_gpu
    per_layer = plain.kv_cache_memory_per_gpu / m.num_layers
    np.testing.assert_allclose(float(kv), float(per_layer), rtol=1e-12)


def test_draft_model_memory_is_its_weights_per_gpu():
    plain = tp.sweep(**LLAMA, batch=4, tp=2)
    spec = tp.sweep(**LLAMA, batch=4, tp=2, speculative="draft", draft_model="llama-3.1-8b", acceptance=0.7)
    extra = float(spec.weight_memory_per_gpu - plain.weight_memory_per_gpu)
    assert extra == float(plain.weight_memory_per_gpu)  # the same model, held once more
    assert float(spec.tpot) > float(plain.tpot)  # a draft as large as the target never pays off


# ---- inputs and their errors ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(speculative="eagle"), r"acceptance is not given.*'eagle'"),
        (dict(speculative="mtp", model="llama-3.1-8b"), r"acceptance is not given and model 'llama-3.1-8b'"),
        (dict(speculative="draft", acceptance=0.7), r"needs draft_model"),
        (dict(speculative="medusa"), r"unknown speculative 'medusa'"),
        (dict(speculative="mtp", spec_tokens=-1), r"spec_tokens = -1 is not allowed: must be an integer in \[0, 64\]"),
        (dict(speculative="mtp", spec_tokens=1.5), r"spec_tokens = 1.5 is not allowed"),
        (dict(speculative="mtp", spec_tokens=65), r"spec_tokens = 65 is not allowed"),
        (dict(speculative="mtp", acceptance=1.0), r"acceptance = 1.0 is not allowed: must be a number in \[0, 1\)"),
        (dict(speculative="mtp", acceptance=-0.1), r"acceptance = -0.1 is not allowed"),
    ],
)
def test_bad_inputs_name_the_field(kw, match):
    base = dict(DSV3)
    base.update(kw)
    with pytest.raises(SpecError, match=match):
        tp.sweep(**base)


def test_mtp_on_a_model_without_modules_is_masked():
    ds = tp.sweep(**LLAMA, speculative=["none", "mtp"], acceptance=0.8)
    reason = ds.infeasible_reason.sel(speculative="mtp").item()
    assert reason & int(Reason.NO_DRAFTER)
    assert ds.infeasible_reason.sel(speculative="none").item() == 0
    assert tp.describe(reason) == "no drafter"


def test_hf_config_reads_the_mtp_modules():
    spec = tp.ModelSpec.from_hf_config(ROOT / "tests/fixtures/hf/deepseek-v3/config.json")
    assert spec.num_mtp_layers == 1 and model("deepseek-v3").num_mtp_layers == 1
    assert model("llama-3.1-8b").num_mtp_layers == 0 and model("llama-3.1-8b").mtp_acceptance == 0


# ---- validation rows ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def rows2():
    return fidelity.load_measurements(ROOT / "data/measurements-2.csv")


@pytest.mark.parametrize(
    "rid, k",
    [
        ("N0687", 2),  # SGLang on B200: --speculative-num-steps 2
        ("N1227", 2),  # SGLang on H200
        ("N1907", 3),  # SGLang on MI355X: --speculative-num-steps 3
        ("N1527", 3),  # SGLang on MI325X
        ("N0979", 3),  # TensorRT-LLM: num_nextn_predict_layers 3
        ("N0899", 1),  # TensorRT-LLM with attention DP: 1
        ("N1711", 3),  # ATOM fp8: --num-speculative-tokens 3
        ("N1619", 1),  # ATOM fp4: --method mtp, ATOM's default 1
    ],
)
def test_inferencex_mtp_rows_map_to_their_draft_length(rows2, rid, k):
    mapped = fidelity.map_rows(rows2[rows2["id"] == rid]).iloc[0]
    assert mapped["status"] == "ok"
    assert (mapped["speculative"], mapped["spec_tokens"]) == ("mtp", k)
    # the preset's 0.875 at the module's own position, decaying 0.76x per reused position beyond it,
    # passed as the constant α that gains the same tokens per step (1.875, 2.456875 and 2.750954625 at k = 1..3)
    alpha = mapped["acceptance"]
    gain = 1 + 0.875 + (0.875**2 * 0.76 if k >= 2 else 0) + (0.875**3 * 0.76**3 if k >= 3 else 0)
    assert alpha == 0.875 if k == 1 else sum(alpha**i for i in range(k + 1)) == pytest.approx(gain, rel=1e-12)


def test_a_stated_draft_length_and_acceptance_win(rows2):
    row = rows2[rows2["id"] == "N0687"].iloc[0].to_dict()
    row["notes"] += " | speculative-num-steps 4, acceptance rate 62%"
    assert speculative_rows.speculation(row) == {"speculative": "mtp", "spec_tokens": 4, "acceptance": 0.62}


def test_every_speculative_row_is_predicted_or_names_what_it_lacks(rows2):
    rows1 = fidelity.load_measurements(ROOT / "data/measurements.csv")
    for rows in (rows1, rows2):
        spec = rows[rows["speculative"].notna()]
        report = fidelity.predict(spec)
        assert not report["status"].str.contains("not modelled").any()
        skipped = report.loc[report["status"] != "ok", "status"]
        assert skipped.str.contains(r"the row states no|infeasible \(memory\)|simulated").all(), skipped.unique()
    ok = (report["status"] == "ok").mean()
    assert ok >= 0.9  # 212 of the 224 mtp rows (the rest: 512 requests' KV cache does not fit)
    lacking = pd.Series(
        [fidelity._map_row(r)["status"] for r in rows1[rows1["speculative"].notna()].to_dict("records")]
    )
    assert lacking.str.contains("draft length|simulated").all()
