"""Model presets: every preset loads, and its parameter counts and KV cache size are the published ones.

Exact counts are docs/model.md §4 G1; the others are
the derived totals written in the notes column of data/models.csv, which give them rounded to
0.01B or 0.1B, so they are matched to half a unit in the last printed digit.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from tensorperf.catalog.presets import model, models

# The `model` column of data/models.csv, plus llama-3.1-70b (same architecture as
# llama-3.3-70b, which is its models.csv row).
CSV_IDS = (
    "llama-3.1-8b",
    "llama-3.3-70b",
    "llama-3.1-405b",
    "llama-2-7b",
    "llama-2-13b",
    "llama-2-70b",
    "gpt-j-6b",
    "falcon-180b",
    "mixtral-8x7b",
    "llama-4-scout",
    "llama-4-maverick",
    "qwen3-235b-a22b",
    "gpt-oss-120b",
    "deepseek-v3",
    "gpt-moe-1.8t",
)
PRESET_IDS = CSV_IDS + ("llama-3.1-70b", "mistral-7b")


@pytest.mark.parametrize("preset_id", PRESET_IDS)
def test_preset_loads(preset_id: str) -> None:
    spec = model(preset_id)
    assert spec.name == preset_id
    assert preset_id in models()
    assert spec.source  # every preset cites where its numbers come from


# ---- (b) exact parameter counts, docs/model.md §4 G1 ---------------------------------------------

EXACT = {
    # Llama-3.1-8B (d 4096, 32 layers, 32 q / 8 kv heads, d_h 128, d_ff 14336, V 128256, untied):
    # attention 4096·4096 + 2·4096·1024 + 4096·4096 = 41,943,040; MLP 3·4096·14336 = 176,160,768;
    # norms 8,192 -> layer 218,112,000; x32 = 6,979,584,000; + embedding 525,336,576 + LM head
    # 525,336,576 + final norm 4,096 = 8,030,261,248.
    "llama-3.1-8b": (8_030_261_248, 8_030_261_248),
    # Mistral-7B v0.1: the Llama-3.1-8B layer (same d, heads, d_ff) x32 = 6,979,584,000; + embedding and
    # LM head 2·32000·4096 = 262,144,000 + final norm 4,096 = 7,241,732,096 (HF: 7.24B)
    "mistral-7b": (7_241_732_096, 7_241_732_096),
    # Llama-3.1-70B (8192, 80, 64, 8, 128, 28672, 128256): attention 67,108,864 + 16,777,216 +
    # 67,108,864 = 150,994,944; MLP 704,643,072; norms 16,384 -> 855,654,400; x80 =
    # 68,452,352,000; + 2·1,050,673,152 + 8,192 = 70,553,706,496.
    "llama-3.1-70b": (70_553_706_496, 70_553_706_496),
    # Llama-3.3-70B: same architecture as Llama-3.1-70B (models.csv note), same arithmetic.
    "llama-3.3-70b": (70_553_706_496, 70_553_706_496),
    # Llama-3.1-405B (16384, 126, 128, 8, 128, 53248, 128256): attention 268,435,456 + 33,554,432 +
    # 268,435,456 = 570,425,344; MLP 2,617,245,696; norms 32,768 -> 3,187,703,808; x126 =
    # 401,650,679,808; + 2·2,101,346,304 + 16,384 = 405,853,388,800.
    "llama-3.1-405b": (405_853_388_800, 405_853_388_800),
    # Mixtral-8x7B (4096, 32, 32, 8, 128, d_e 14336, E 8, k 2, V 32000, untied): per layer attention
    # 41,943,040 + experts 8·176,160,768 = 1,409,286,144 + router 32,768 + norms 8,192 =
    # 1,451,270,144; x32 = 46,440,644,608; + 2·131,072,000 + 4,096 = 46,702,792,704 total.
    # Active per layer 41,943,040 + 2·176,160,768 + 32,768 + 8,192 = 394,305,536; x32 +
    # 262,144,000 + 4,096 = 12,879,925,248.
    "mixtral-8x7b": (46_702_792_704, 12_879_925_248),
    # DeepSeek-V3 (d 7168, 3 dense + 58 MoE layers, 128 heads, r_q 1536, r_kv 512, nope 128, rope 64,
    # v 128, d_ff 18432, d_e 2048, E 256, E_s 1, k 8, V 129280, untied, gate bias 256):
    # MLA per layer 11,010,048 (q_a) + 1,536 (q norm) + 37,748,736 (q_b) + 4,128,768 (kv_a) + 512
    # (kv norm) + 16,777,216 (kv_b) + 117,440,512 (o) = 187,107,328; dense layer = 187,107,328 +
    # 14,336 + 396,361,728 = 583,483,392; MoE layer = 187,107,328 + 14,336 + 256·44,040,192 +
    # 44,040,192 + 1,835,008 + 256 = 11,507,286,272. Total = 3·583,483,392 + 58·11,507,286,272 +
    # 2·926,679,040 + 7,168 = 671,026,419,200. Active = 3·583,483,392 + 58·585,318,656 +
    # 1,853,358,080 + 7,168 = 37,552,297,472.
    "deepseek-v3": (671_026_419_200, 37_552_297_472),
}


@pytest.mark.parametrize("preset_id", sorted(EXACT))
def test_exact_parameter_counts(preset_id: str) -> None:
    total, active = EXACT[preset_id]
    spec = model(preset_id)
    assert spec.num_params == total
    assert spec.num_active_params == active


# ---- (c) derived totals of the models.csv notes ----------------------------------------------

# (preset id, quantity, value as printed in the models.csv note, in units of 1e9). Tolerance is half
# a unit in the last printed digit: 0.005e9 for two decimals, 0.05e9 for one.
NOTED = [
    # "Derived total params 6.74B vs published 6.74B (7B)."
    ("llama-2-7b", "total", "6.74"),
    # "Derived total params 13.02B vs published 13.0B."
    ("llama-2-13b", "total", "13.02"),
    # "Derived total params 68.98B vs published 69.0B (70B)."
    ("llama-2-70b", "total", "68.98"),
    # "Derived total params 6.05B vs published 6B (6.05B)."
    ("gpt-j-6b", "total", "6.05"),
    # "Derived total params 178.6B with tied embeddings / 179.5B untied vs published 180B."
    ("falcon-180b", "total", "178.6"),
    # "Derived text-model params: total 107.8B / active 17.17B vs published 109B total / 17B active"
    ("llama-4-scout", "total", "107.8"),
    ("llama-4-scout", "active", "17.17"),
    # "Derived text-model params: total 400.7B / active 17.18B vs published 400B total / 17B active"
    ("llama-4-maverick", "total", "400.7"),
    ("llama-4-maverick", "active", "17.18"),
    # "Derived total 235.1B / active 22.2B vs published 235B / 22B active."
    ("qwen3-235b-a22b", "total", "235.1"),
    ("qwen3-235b-a22b", "active", "22.2"),
    # "Derived total 116.8B / active 5.71B (5.13B without the input embedding) vs published
    # 116.8B / 5.1B active."
    ("gpt-oss-120b", "total", "116.8"),
    ("gpt-oss-120b", "active", "5.71"),
    # The exact-count models, against their notes too: "Derived total params 8.03B", "70.55B",
    # "405.85B", "Derived total 46.70B / active 12.88B", "Derived total 671.0B / active 37.6B".
    ("llama-3.1-8b", "total", "8.03"),
    ("llama-3.3-70b", "total", "70.55"),
    ("llama-3.1-405b", "total", "405.85"),
    ("mixtral-8x7b", "total", "46.70"),
    ("mixtral-8x7b", "active", "12.88"),
    ("deepseek-v3", "total", "671.0"),
    ("deepseek-v3", "active", "37.6"),
]


def _tolerance(printed: str) -> float:
    decimals = len(printed.partition(".")[2])
    return 0.5 * 10.0**-decimals * 1e9


@pytest.mark.parametrize(("preset_id", "quantity", "printed"), NOTED)
def test_noted_parameter_counts(preset_id: str, quantity: str, printed: str) -> None:
    spec = model(preset_id)
    count = spec.num_params if quantity == "total" else spec.num_active_params
    assert abs(count - float(printed) * 1e9) <= _tolerance(printed), (preset_id, quantity, count)


def test_gpt_oss_active_without_input_embedding() -> None:
    # models.csv note: "active 5.71B (5.13B without the input embedding)"
    spec = model("gpt-oss-120b")
    without = spec.num_active_params - spec.vocab_size * spec.d_model
    assert abs(without - 5.13e9) <= _tolerance("5.13")


def test_dense_models_have_no_inactive_parameters() -> None:
    for preset_id in ("llama-2-7b", "gpt-j-6b", "falcon-180b", "llama-3.1-8b"):
        spec = model(preset_id)
        assert spec.num_active_params == spec.num_params


# ---- (d) KV cache bytes per token, docs/model.md §4 G2 ------------------------------------------

KV_BYTES_BF16 = {
    "llama-3.1-70b": 327_680,  # 2·80·8·128·2
    "llama-3.1-8b": 131_072,  # 2·32·8·128·2
    "llama-3.1-405b": 516_096,  # 2·126·8·128·2
    "mixtral-8x7b": 131_072,  # 2·32·8·128·2
    "deepseek-v3": 70_272,  # MLA latent (512 + 64)·61 = 35,136 elements x 2 B
}


@pytest.mark.parametrize("preset_id", sorted(KV_BYTES_BF16))
def test_kv_bytes_per_token(preset_id: str) -> None:
    spec = model(preset_id)
    assert spec.kv_elements_per_token_per_layer * spec.num_layers * 2 == KV_BYTES_BF16[preset_id]


# ---- the presets against the source table, where the shared project folder is present --------


def _models_csv() -> Path:
    return Path(__file__).resolve().parents[1] / "data" / "models.csv"  # the sourced reference table


def test_ids_and_noted_numbers_follow_models_csv() -> None:
    with open(_models_csv(), newline="") as f:  # type: ignore[arg-type]
        rows = {row["model"]: row for row in csv.DictReader(f)}
    assert set(rows) == set(CSV_IDS)
    for preset_id, _, printed in NOTED:
        assert re.search(rf"(?<![\d.]){re.escape(printed)}B", rows[preset_id]["notes"]), (preset_id, printed)
    columns = {
        "num_layers": "num_layers",
        "d_model": "hidden_size",
        "num_heads": "num_attention_heads",
        "num_kv_heads": "num_kv_heads",
        "head_dim": "head_dim",
        "vocab_size": "vocab_size",
        "num_experts": "num_experts",
        "experts_per_token": "experts_per_token",
        "num_shared_experts": "num_shared_experts",
        "d_ff_expert": "moe_intermediate_size",
        "first_dense_layers": "first_k_dense_layers",
        "moe_layer_freq": "moe_layer_freq",
        "kv_lora_rank": "kv_lora_rank",
        "q_lora_rank": "q_lora_rank",
        "qk_rope_head_dim": "qk_rope_head_dim",
        "qk_nope_head_dim": "qk_nope_head_dim",
        "v_head_dim": "v_head_dim",
        "sliding_window": "sliding_window",
    }
    for preset_id, row in rows.items():
        spec = model(preset_id)
        for field, column in columns.items():
            if row[column]:
                assert getattr(spec, field) == int(row[column]), (preset_id, field)
        assert spec.gated_mlp == (row["mlp_type"] == "gated"), preset_id
        if row["tie_embeddings"]:
            assert spec.tie_embeddings == (row["tie_embeddings"] == "true"), preset_id
        if spec.num_dense_layers:  # layers without experts use intermediate_size
            assert spec.d_ff == int(row["intermediate_size"]), preset_id
