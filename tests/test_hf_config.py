"""ModelSpec from a Hugging Face config.json: the published configs give the presets' specs exactly.

The fixtures in tests/fixtures/hf/<name>/config.json are the published config.json files (all their
keys, including the ones the mapping ignores such as rope_theta, torch_dtype and architectures):
huggingface.co/<org>/<model>/blob/main/config.json for meta-llama/Llama-3.1-8B-Instruct,
mistralai/Mistral-7B-v0.1, mistralai/Mixtral-8x7B-Instruct-v0.1, Qwen/Qwen2-7B, Qwen/Qwen3-235B-A22B,
deepseek-ai/DeepSeek-V3 and openai/gpt-oss-120b.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tensorperf.catalog.hf_config import SUPPORTED_MODEL_TYPES
from tensorperf.catalog.presets import model
from tensorperf.catalog.specs import ModelSpec
from tensorperf.validation import SpecError

model_spec_from_hf_config = ModelSpec.from_hf_config

FIXTURES = Path(__file__).parent / "fixtures" / "hf"
WITH_PRESET = ("llama-3.1-8b", "mixtral-8x7b", "qwen3-235b-a22b", "deepseek-v3", "gpt-oss-120b")
ARCH_FIELDS = tuple(f.name for f in dataclasses.fields(ModelSpec) if f.name not in ("name", "source"))


def fixture(name: str) -> Path:
    return FIXTURES / name / "config.json"


def load_fixture(name: str) -> dict[str, Any]:
    return json.loads(fixture(name).read_text())


def write(tmp_path: Path, data: Any, folder: str = "model") -> Path:
    path = tmp_path / folder / "config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def fields(spec: ModelSpec) -> dict[str, Any]:
    return {name: getattr(spec, name) for name in ARCH_FIELDS}


# ---- published configs -> the presets ------------------------------------------------------------


@pytest.mark.parametrize("name", WITH_PRESET)
def test_published_config_matches_preset(name: str) -> None:
    spec = model_spec_from_hf_config(fixture(name))
    preset = model(name)
    assert spec.num_params == preset.num_params
    assert spec.num_active_params == preset.num_active_params
    assert spec.kv_elements_per_token_per_layer == preset.kv_elements_per_token_per_layer
    assert fields(spec) == fields(preset)
    assert spec.name == name  # the fixture's folder (no _name_or_path in these configs)
    assert str(fixture(name)) in spec.source


def test_mistral_7b() -> None:
    spec = model_spec_from_hf_config(fixture("mistral-7b-v0.1"))
    assert (spec.num_layers, spec.d_model, spec.num_heads, spec.num_kv_heads, spec.head_dim) == (32, 4096, 32, 8, 128)
    assert (spec.d_ff, spec.vocab_size, spec.gated_mlp, spec.tie_embeddings) == (14336, 32000, True, False)
    assert (spec.sliding_window, spec.sliding_window_layers) == (4096, 32)  # every layer
    assert not (spec.qkv_bias or spec.out_bias or spec.mlp_bias or spec.is_moe)
    # 32·(41,943,040 attention + 176,160,768 MLP + 8,192 norms) + 2·32000·4096 + 4096
    assert spec.num_params == spec.num_active_params == 7_241_732_096  # published 7.24B


def test_qwen2_7b() -> None:
    spec = model_spec_from_hf_config(fixture("qwen2-7b"))
    assert (spec.num_layers, spec.d_model, spec.num_heads, spec.num_kv_heads, spec.head_dim) == (28, 3584, 28, 4, 128)
    assert (spec.d_ff, spec.vocab_size, spec.tie_embeddings) == (18944, 152064, False)
    assert (spec.qkv_bias, spec.out_bias, spec.qk_norm) == (True, False, False)  # q/k/v bias, no o bias
    assert (spec.sliding_window, spec.sliding_window_layers) == (0, 0)  # use_sliding_window false
    # attention 3584·3584·2 + 2·3584·512 + qkv bias (3584 + 2·512) = 29,364,736 per layer
    assert spec.attention_params == 29_364_736
    assert spec.num_params == 7_615_616_512  # published 7.62B


# ---- name, paths, wrappers -----------------------------------------------------------------------


def test_name_argument_name_or_path_and_folder(tmp_path: Path) -> None:
    data = load_fixture("llama-3.1-8b")
    assert model_spec_from_hf_config(write(tmp_path, data, "my-llama")).name == "my-llama"
    assert model_spec_from_hf_config(fixture("llama-3.1-8b"), name="x").name == "x"
    data["_name_or_path"] = "meta-llama/Llama-3.1-8B-Instruct"
    path = write(tmp_path, data, "other")
    assert model_spec_from_hf_config(path).name == "meta-llama/Llama-3.1-8B-Instruct"
    assert model_spec_from_hf_config(str(path.parent)).name == "meta-llama/Llama-3.1-8B-Instruct"  # folder


def test_text_config_is_unwrapped(tmp_path: Path) -> None:
    text = load_fixture("mistral-7b-v0.1")
    wrapper = {
        "architectures": ["Mistral3ForConditionalGeneration"],
        "model_type": "mistral3",
        "text_config": text,
        "vision_config": {"model_type": "pixtral", "hidden_size": 1024},
        "image_token_index": 10,
    }
    spec = model_spec_from_hf_config(write(tmp_path, wrapper))
    assert fields(spec) == fields(model_spec_from_hf_config(fixture("mistral-7b-v0.1")))
    del text["hidden_size"]
    with pytest.raises(SpecError, match=r"config\.json: key 'text_config\.hidden_size' is missing"):
        model_spec_from_hf_config(write(tmp_path, wrapper))


def test_model_type_inferred_from_architectures(tmp_path: Path) -> None:
    data = load_fixture("llama-3.1-8b")
    del data["model_type"]
    assert model_spec_from_hf_config(write(tmp_path, data)).num_params == model("llama-3.1-8b").num_params


# ---- family details ------------------------------------------------------------------------------


def test_llama_attention_and_mlp_bias(tmp_path: Path) -> None:
    data = load_fixture("llama-3.1-8b") | {"attention_bias": True, "mlp_bias": True}
    spec = model_spec_from_hf_config(write(tmp_path, data))
    assert (spec.qkv_bias, spec.out_bias, spec.mlp_bias) == (True, True, True)
    base = model("llama-3.1-8b")
    # q/k/v/o biases 4096 + 2·1024 + 4096 and gate/up/down biases 2·14336 + 4096, per layer
    assert spec.num_params - base.num_params == 32 * (4096 + 2048 + 4096 + 2 * 14336 + 4096)


def test_qwen2_sliding_window_layers(tmp_path: Path) -> None:
    data = load_fixture("qwen2-7b") | {"use_sliding_window": True, "sliding_window": 4096, "max_window_layers": 21}
    spec = model_spec_from_hf_config(write(tmp_path, data))
    assert (spec.sliding_window, spec.sliding_window_layers) == (4096, 7)  # layers 21..27
    data["layer_types"] = ["sliding_attention"] * 3 + ["full_attention"] * 25  # explicit list wins
    assert model_spec_from_hf_config(write(tmp_path, data)).sliding_window_layers == 3


def test_gpt_oss_default_layer_types(tmp_path: Path) -> None:
    data = load_fixture("gpt-oss-120b")
    del data["layer_types"]
    spec = model_spec_from_hf_config(write(tmp_path, data))
    assert (spec.sliding_window, spec.sliding_window_layers) == (128, 18)  # even layers
    data["sliding_window"] = None
    assert model_spec_from_hf_config(write(tmp_path, data)).sliding_window_layers == 0


def test_qwen3_moe_layer_mix(tmp_path: Path) -> None:
    base = load_fixture("qwen3-235b-a22b")
    preset = model("qwen3-235b-a22b")
    # leading dense layers are first_dense_layers, with d_ff = intermediate_size
    spec = model_spec_from_hf_config(write(tmp_path, base | {"mlp_only_layers": [0, 1]}))
    assert fields(spec) == fields(preset.replace(first_dense_layers=2, d_ff=12288))
    assert spec.num_moe_layers == 92
    # every 2nd layer MoE
    spec = model_spec_from_hf_config(write(tmp_path, base | {"decoder_sparse_step": 2}))
    assert (spec.first_dense_layers, spec.moe_layer_freq, spec.num_moe_layers, spec.d_ff) == (0, 2, 47, 12288)
    # a dense layer in the middle cannot be expressed
    with pytest.raises(SpecError, match=r"config\.json: key 'mlp_only_layers'"):
        model_spec_from_hf_config(write(tmp_path, base | {"mlp_only_layers": [5, 40]}))
    # no MoE layer at all: a dense model
    spec = model_spec_from_hf_config(write(tmp_path, base | {"mlp_only_layers": list(range(94))}))
    assert (spec.num_experts, spec.d_ff, spec.num_params) == (0, 12288, spec.num_active_params)


def test_qwen3_dense(tmp_path: Path) -> None:
    # Qwen3-8B shape (huggingface.co/Qwen/Qwen3-8B config.json)
    data = {
        "architectures": ["Qwen3ForCausalLM"],
        "attention_bias": False,
        "head_dim": 128,
        "hidden_act": "silu",
        "hidden_size": 4096,
        "intermediate_size": 12288,
        "model_type": "qwen3",
        "num_attention_heads": 32,
        "num_hidden_layers": 36,
        "num_key_value_heads": 8,
        "rope_theta": 1000000,
        "sliding_window": None,
        "tie_word_embeddings": False,
        "use_sliding_window": False,
        "vocab_size": 151936,
    }
    spec = model_spec_from_hf_config(write(tmp_path, data))
    assert (spec.qk_norm, spec.qkv_bias, spec.out_bias, spec.sliding_window_layers) == (True, False, False, 0)
    assert spec.num_params == 8_190_735_360  # published Qwen3-8B 8.2B


def test_deepseek_v2_lite(tmp_path: Path) -> None:
    # huggingface.co/deepseek-ai/DeepSeek-V2-Lite config.json: q_lora_rank null, greedy routing (no gate bias)
    data = {
        "architectures": ["DeepseekV2ForCausalLM"],
        "model_type": "deepseek_v2",
        "hidden_size": 2048,
        "intermediate_size": 10944,
        "moe_intermediate_size": 1408,
        "num_hidden_layers": 27,
        "num_attention_heads": 16,
        "num_key_value_heads": 16,
        "n_shared_experts": 2,
        "n_routed_experts": 64,
        "num_experts_per_tok": 6,
        "first_k_dense_replace": 1,
        "moe_layer_freq": 1,
        "kv_lora_rank": 512,
        "q_lora_rank": None,
        "qk_nope_head_dim": 128,
        "qk_rope_head_dim": 64,
        "v_head_dim": 128,
        "topk_method": "greedy",
        "vocab_size": 102400,
        "tie_word_embeddings": False,
        "attention_bias": False,
        "rope_theta": 10000,
    }
    spec = model_spec_from_hf_config(write(tmp_path, data))
    assert (spec.q_lora_rank, spec.kv_lora_rank, spec.head_dim, spec.num_kv_heads) == (0, 512, 192, 16)
    assert (spec.router_bias, spec.first_dense_layers, spec.num_shared_experts, spec.d_ff) == (False, 1, 2, 10944)
    assert spec.num_params == 15_706_484_224  # published 15.7B (the checkpoint's parameter count)
    # published 2.4B active: 2,451,435,008 without the input embedding (102400·2048)
    assert spec.num_active_params - 102400 * 2048 == 2_451_435_008
    # n_routed_experts null: every layer dense
    spec = model_spec_from_hf_config(write(tmp_path, data | {"n_routed_experts": None}))
    assert (spec.num_experts, spec.num_moe_layers, spec.router_bias, spec.d_ff) == (0, 0, False, 10944)


def test_deepseek_v3_without_topk_method_keeps_router_bias(tmp_path: Path) -> None:
    data = load_fixture("deepseek-v3")
    del data["topk_method"]
    assert model_spec_from_hf_config(write(tmp_path, data)).router_bias is True


# ---- malformed input ------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "config.json"
    with pytest.raises(SpecError, match=r"nowhere/config\.json"):
        model_spec_from_hf_config(path)


@pytest.mark.parametrize("text", ['{"hidden_size": 4096,', "", "not json", "[1, 2]"])
def test_bad_json(tmp_path: Path, text: str) -> None:
    with pytest.raises(SpecError, match=r"model/config\.json: not (valid JSON|a Hugging Face config)"):
        model_spec_from_hf_config(write(tmp_path, text))


def test_unsupported_model_type_lists_supported(tmp_path: Path) -> None:
    data = load_fixture("llama-3.1-8b") | {"model_type": "bert"}
    with pytest.raises(SpecError, match=r"config\.json: unsupported model_type 'bert'") as e:
        model_spec_from_hf_config(write(tmp_path, data))
    assert all(t in str(e.value) for t in SUPPORTED_MODEL_TYPES)


def test_missing_model_type(tmp_path: Path) -> None:
    data = load_fixture("llama-3.1-8b")
    del data["model_type"], data["architectures"]
    with pytest.raises(SpecError, match=r"config\.json: key 'model_type' is missing; supported model types"):
        model_spec_from_hf_config(write(tmp_path, data))


@pytest.mark.parametrize(
    "name, key",
    [
        ("llama-3.1-8b", "hidden_size"),
        ("llama-3.1-8b", "vocab_size"),
        ("mistral-7b-v0.1", "intermediate_size"),
        ("mixtral-8x7b", "num_local_experts"),
        ("qwen3-235b-a22b", "moe_intermediate_size"),
        ("deepseek-v3", "kv_lora_rank"),
        ("deepseek-v3", "first_k_dense_replace"),
        ("deepseek-v3", "q_lora_rank"),
        ("gpt-oss-120b", "num_hidden_layers"),
    ],
)
def test_missing_key(tmp_path: Path, name: str, key: str) -> None:
    data = load_fixture(name)
    del data[key]
    model_type = data["model_type"]
    path = write(tmp_path, data)
    with pytest.raises(SpecError) as e:
        model_spec_from_hf_config(path)
    assert str(e.value) == f"{path}: key {key!r} is missing (required for model_type {model_type!r})"


@pytest.mark.parametrize(
    "key, value",
    [
        ("hidden_size", "4096"),
        ("num_hidden_layers", 32.5),
        ("num_attention_heads", True),
        ("num_attention_heads", 0),
        ("hidden_size", None),
        ("tie_word_embeddings", "false"),
        ("num_key_value_heads", -8),
    ],
)
def test_wrong_type(tmp_path: Path, key: str, value: Any) -> None:
    data = load_fixture("llama-3.1-8b") | {key: value}
    with pytest.raises(SpecError, match=rf"config\.json: key '{key}' .*model_type 'llama'"):
        model_spec_from_hf_config(write(tmp_path, data))


@pytest.mark.parametrize(
    "name, key, value",
    [
        ("gpt-oss-120b", "layer_types", ["sliding_attention", "full_attention"]),  # wrong length
        ("gpt-oss-120b", "layer_types", ["chunked_attention"] * 36),
        ("qwen3-235b-a22b", "mlp_only_layers", [94]),
        ("qwen3-235b-a22b", "mlp_only_layers", ["0"]),
        ("deepseek-v3", "attention_bias", True),  # MLA biases are not modelled
        ("deepseek-v3", "q_lora_rank", "1536"),
        ("mixtral-8x7b", "sliding_window", "4096"),
    ],
)
def test_bad_family_key(tmp_path: Path, name: str, key: str, value: Any) -> None:
    data = copy.deepcopy(load_fixture(name)) | {key: value}
    with pytest.raises(SpecError, match=rf"config\.json: key '{key}'"):
        model_spec_from_hf_config(write(tmp_path, data))


def test_inconsistent_values_name_the_file(tmp_path: Path) -> None:
    data = load_fixture("llama-3.1-8b") | {"num_key_value_heads": 5}  # does not divide 32 heads
    with pytest.raises(SpecError, match=r"config\.json: ModelSpec\.num_kv_heads = 5"):
        model_spec_from_hf_config(write(tmp_path, data))
    data = load_fixture("llama-3.1-8b") | {"hidden_size": 4095}
    data.pop("head_dim", None)
    with pytest.raises(SpecError, match=r"config\.json: key 'head_dim' is missing and hidden_size 4095"):
        model_spec_from_hf_config(write(tmp_path, data))


def test_sweep_takes_a_config_json_like_a_preset():
    import tensorperf as tp

    path = str(FIXTURES / "llama-3.1-8b" / "config.json")
    a = tp.sweep(model=path, hardware="h100-sxm", batch=[1, 8])
    b = tp.sweep(model="llama-3.1-8b", hardware="h100-sxm", batch=[1, 8])
    np.testing.assert_array_equal(a.tpot.values, b.tpot.values)
    assert tp.ModelSpec.from_hf_config(path).num_params == 8_030_261_248
