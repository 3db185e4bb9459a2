"""ModelSpec from a Hugging Face config.json: the published configs give the presets' specs exactly.

The fixtures in tests/fixtures/hf/<name>/config.json are the published config.json files (all their
keys, including the ones the mapping ignores such as rope_theta, torch_dtype and architectures):
huggingface.co/<org>/<model>/blob/main/config.json for meta-llama/Llama-3.1-8B-Instruct,
mistralai/Mistral-7B-v0.1, mistralai/Mixtral-8x7B-Instruct-v0.1, Qwen/Qwen2-7B, Qwen/Qwen3-235B-A22B,
deepseek-ai/DeepSeek-V3 and openai/gpt-oss-120b; and google/gemma-2-9b, google/gemma-3-27b-it,
microsoft/Phi-3-mini-4k-instruct, microsoft/phi-4, Qwen/Qwen1.5-MoE-A2.7B and
deepseek-ai/DeepSeek-V2-Lite. The architecture keys of these six were checked against public verbatim
copies (e.g. TensorRT-LLM's test_modeling_phi3.py / test_modeling_gemma3.py config dicts); metadata
keys (token ids, transformers_version) are as remembered and unused. Their parameter counts are the
published exact totals (each test says where from), and each fixture built by HF transformers 4.57.6
on the meta device gives the same total (docs/presets.md).
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
# (mtp_acceptance, mtp_reuse_decay: published measurements the preset cites, not config.json keys)
ARCH_FIELDS = tuple(
    f.name
    for f in dataclasses.fields(ModelSpec)
    if f.name not in ("name", "source", "mtp_acceptance", "mtp_reuse_decay")
)


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
    # MLA without q LoRA (q_lora_rank null: a full-rank q_proj), greedy routing (no gate bias), one
    # leading dense layer (first_k_dense_replace 1), two shared experts
    spec = model_spec_from_hf_config(fixture("deepseek-v2-lite"))
    assert (spec.q_lora_rank, spec.kv_lora_rank, spec.head_dim, spec.num_kv_heads) == (0, 512, 192, 16)
    assert (spec.router_bias, spec.first_dense_layers, spec.num_shared_experts, spec.d_ff) == (False, 1, 2, 10944)
    assert (spec.num_moe_layers, spec.num_experts, spec.experts_per_token, spec.d_ff_expert) == (26, 64, 6, 1408)
    # attention: q 2048·16·192 + kv_a 2048·(512+64) + kv_a norm 512 + kv_b 512·16·(128+128) + o 16·128·2048
    # = 6,291,456 + 1,179,648 + 512 + 2,097,152 + 4,194,304 = 13,763,072 per layer
    assert spec.attention_params == 13_763_072
    # 27·(13,763,072 + 4,096 norms) + 3·2048·10944 (dense layer 0) + 26·((64+2)·3·2048·1408 + 64·2048)
    # + 2·102400·2048 + 2048 = 15,706,484,224: the safetensors index total_size 31,412,968,448 B / 2 (bf16)
    assert spec.num_params == 15_706_484_224
    # published 2.4B active: 2,451,435,008 without the input embedding (102400·2048)
    assert spec.num_active_params - 102400 * 2048 == 2_451_435_008
    # n_routed_experts null: every layer dense
    data = load_fixture("deepseek-v2-lite")
    spec = model_spec_from_hf_config(write(tmp_path, data | {"n_routed_experts": None}))
    assert (spec.num_experts, spec.num_moe_layers, spec.router_bias, spec.d_ff) == (0, 0, False, 10944)


def test_deepseek_v3_without_topk_method_keeps_router_bias(tmp_path: Path) -> None:
    data = load_fixture("deepseek-v3")
    del data["topk_method"]
    assert model_spec_from_hf_config(write(tmp_path, data)).router_bias is True


# ---- Gemma-2/3, Phi-3/4, Qwen2-MoE: published configs give the published parameter counts ------------


def test_gemma2_9b() -> None:
    spec = model_spec_from_hf_config(fixture("gemma-2-9b"))
    # head_dim 256 is not hidden_size / heads = 3584 / 16 = 224
    assert (spec.num_layers, spec.d_model, spec.num_heads, spec.num_kv_heads, spec.head_dim) == (42, 3584, 16, 8, 256)
    assert (spec.d_ff, spec.vocab_size, spec.tie_embeddings, spec.norms_per_layer) == (14336, 256000, True, 4)
    # Gemma2Config: layers 0, 2, ..., 40 use the 4096-token window, the odd ones attend fully
    assert (spec.sliding_window, spec.sliding_window_layers) == (4096, 21)
    # attention 3584·16·256·2 + 2·3584·8·256 = 44,040,192; GeGLU 3·3584·14336 = 154,140,672; 4 norms 14,336
    # -> 198,195,200 per layer; 42 layers 8,324,198,400 + tied embedding 256000·3584 = 917,504,000 + final
    # norm 3,584 = 9,241,705,984: keras-hub gemma2_9b_en "params" (HF: 18,483,411,968 B of bf16 / 2)
    assert spec.num_params == spec.num_active_params == 9_241_705_984


# SigLIP vision tower of Gemma 3 (vision_config: d 1152, MLP 4304, 27 layers, 896 px / 14 px patches) and
# the projector, which the text model does not count: patch conv 3·14·14·1152 + 1152 = 678,528;
# positions (896/14)^2·1152 = 4,718,592; per layer q/k/v/o with biases 4·(1152^2 + 1152) + MLP
# 2·1152·4304 + 4304 + 1152 + two LayerNorms 4·1152 = 15,239,504, x 27 = 411,466,608; post-norm 2,304
GEMMA3_VISION = 678_528 + 4_718_592 + 27 * 15_239_504 + 2_304  # 416,866,032
GEMMA3_27B_PROJECTOR = 1152 * 5376 + 1152  # mm_input_projection (1152 x d) and soft-embedding norm


def test_gemma3_27b_text_model() -> None:
    spec = model_spec_from_hf_config(fixture("gemma-3-27b-it"))
    assert spec.name == "gemma-3-27b-it"
    assert (spec.num_layers, spec.d_model, spec.num_heads, spec.num_kv_heads, spec.head_dim) == (62, 5376, 32, 16, 128)
    # vocab_size and tie_word_embeddings are not in the published text_config: Gemma3TextConfig defaults
    assert (spec.vocab_size, spec.tie_embeddings, spec.qk_norm, spec.norms_per_layer) == (262208, True, True, 4)
    # sliding_window_pattern 6 (default): layers 5, 11, ..., 59 are global, the other 52 use 1024 tokens
    assert (spec.sliding_window, spec.sliding_window_layers) == (1024, 52)
    # attention 5376·32·128·2 + 2·5376·16·128 = 66,060,288 + q/k norms 2·128; GeGLU 3·5376·21504 =
    # 346,816,512; 4 norms 21,504 -> 412,898,560 per layer; x 62 = 25,599,710,720 + tied embedding
    # 262208·5376 = 1,409,630,208 + final norm 5,376 = 27,009,346,304
    assert spec.num_params == 27_009_346_304
    # + vision tower + projector = 27,432,406,640, the parameter count HF lists for google/gemma-3-27b-it
    assert spec.num_params + GEMMA3_VISION + GEMMA3_27B_PROJECTOR == 27_432_406_640


def test_gemma3_defaults_and_layer_pattern(tmp_path: Path) -> None:
    data = load_fixture("gemma-3-27b-it")
    text = data["text_config"]
    del text["model_type"], text["head_dim"], text["num_key_value_heads"]  # wrapper's gemma3 -> gemma3_text
    spec = model_spec_from_hf_config(write(tmp_path, data))
    assert (spec.head_dim, spec.num_kv_heads) == (256, 4)  # Gemma3TextConfig defaults, not 5376 / 32
    text["sliding_window_pattern"] = 2  # every other layer global
    assert model_spec_from_hf_config(write(tmp_path, data)).sliding_window_layers == 31
    text["layer_types"] = ["full_attention"] * 60 + ["sliding_attention"] * 2  # an explicit list wins
    assert model_spec_from_hf_config(write(tmp_path, data)).sliding_window_layers == 2
    text["tie_word_embeddings"] = False  # an untied LM head adds vocab·d
    untied = model_spec_from_hf_config(write(tmp_path, data))
    assert untied.num_params - spec.num_params == 262208 * 5376


def test_gemma2_head_dim_default_and_layer_types(tmp_path: Path) -> None:
    data = load_fixture("gemma-2-9b")
    del data["head_dim"]
    assert model_spec_from_hf_config(write(tmp_path, data)).head_dim == 256  # Gemma2Config default
    data["layer_types"] = ["full_attention"] * 42
    assert model_spec_from_hf_config(write(tmp_path, data)).sliding_window_layers == 0


def test_phi3_mini() -> None:
    spec = model_spec_from_hf_config(fixture("phi-3-mini-4k-instruct"))
    assert spec.name == "Phi-3-mini-4k-instruct"  # the config's _name_or_path
    assert (spec.num_layers, spec.d_model, spec.num_heads, spec.num_kv_heads, spec.head_dim) == (32, 3072, 32, 32, 96)
    assert (spec.sliding_window, spec.sliding_window_layers) == (2047, 32)  # every layer (HF Phi3Attention)
    assert not (spec.qkv_bias or spec.out_bias or spec.mlp_bias or spec.tie_embeddings)
    # fused qkv_proj and gate_up_proj hold the same weights as separate ones: attention 4·3072^2 =
    # 37,748,736; MLP 3·3072·8192 = 75,497,472; norms 6,144 -> 113,252,352 per layer; x 32 =
    # 3,624,075,264 + embedding and LM head 2·32064·3072 = 197,001,216 + 3,072 = 3,821,079,552:
    # keras-hub phi3_mini_4k_instruct_en "params"
    assert spec.num_params == 3_821_079_552


def test_phi4(tmp_path: Path) -> None:
    spec = model_spec_from_hf_config(fixture("phi-4"))
    assert (spec.num_layers, spec.d_model, spec.num_heads, spec.num_kv_heads, spec.head_dim) == (40, 5120, 40, 10, 128)
    assert (spec.sliding_window, spec.sliding_window_layers) == (0, 0)  # sliding_window null
    # attention 5120·5120·2 + 2·5120·1280 = 65,536,000; MLP 3·5120·17920 = 275,251,200; norms 10,240
    # -> 340,797,440 per layer; x 40 = 13,631,897,600 + 2·100352·5120 = 1,027,604,480 + 5,120
    # = 14,659,507,200: the GGUF general.parameter_count of microsoft/phi-4
    assert spec.num_params == 14_659_507_200
    tied = model_spec_from_hf_config(write(tmp_path, load_fixture("phi-4") | {"tie_word_embeddings": True}))
    assert spec.num_params - tied.num_params == 100352 * 5120  # Phi-4-mini style tied LM head


def test_qwen15_moe_a27b() -> None:
    spec = model_spec_from_hf_config(fixture("qwen1.5-moe-a2.7b"))
    assert (spec.num_experts, spec.experts_per_token, spec.d_ff_expert, spec.num_moe_layers) == (60, 4, 1408, 24)
    # the one shared expert of width 5632 is four shared experts of the routed width 1408, behind a gate
    assert (spec.num_shared_experts, spec.shared_expert_gate, spec.d_ff) == (4, True, 0)
    assert (spec.qkv_bias, spec.out_bias, spec.sliding_window_layers) == (True, False, 0)
    assert spec.router_params == 60 * 2048 + 2048  # router d x E and shared-expert gate d x 1
    # per layer: attention 4·2048^2 + q/k/v bias 3·2048 = 16,783,360; 60 experts 60·3·2048·1408 =
    # 519,045,120; shared 3·2048·5632 = 34,603,008; router 122,880 + gate 2,048; norms 4,096 ->
    # 570,560,512; x 24 = 13,693,452,288 + 2·151936·2048 = 622,329,856 + 2,048 = 14,315,784,192:
    # keras-hub qwen1.5_moe_2.7b_en "params"
    assert spec.num_params == 14_315_784_192
    # active: 4 of 60 routed experts -> 570,560,512 - 56·8,650,752 = 86,118,400 per layer; x 24 +
    # 622,331,904 = 2,689,173,504 (published "2.7B activated")
    assert spec.num_active_params == 2_689_173_504


def test_qwen2_moe_shared_width_must_be_a_multiple(tmp_path: Path) -> None:
    data = load_fixture("qwen1.5-moe-a2.7b")
    with pytest.raises(SpecError, match=r"key 'shared_expert_intermediate_size' = 5000 is not a multiple of"):
        model_spec_from_hf_config(write(tmp_path, data | {"shared_expert_intermediate_size": 5000}))
    spec = model_spec_from_hf_config(write(tmp_path, data | {"shared_expert_intermediate_size": 1408}))
    assert (spec.num_shared_experts, spec.shared_expert_gate) == (1, True)
    spec = model_spec_from_hf_config(write(tmp_path, data | {"mlp_only_layers": list(range(24))}))
    assert (spec.num_experts, spec.num_shared_experts, spec.shared_expert_gate, spec.d_ff) == (0, 0, False, 5632)


@pytest.mark.parametrize(
    "name", ("gemma-2-9b", "gemma-3-27b-it", "phi-3-mini-4k-instruct", "phi-4", "qwen1.5-moe-a2.7b", "deepseek-v2-lite")
)
def test_new_families_sweep(name: str) -> None:
    import tensorperf as tp

    ds = tp.sweep(model=str(fixture(name)), hardware="h100-sxm", batch=[1, 8], breakdown=False)
    assert bool(ds.feasible.all())
    assert (ds.tpot.values > 0).all()


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
        ("gemma-2-9b", "intermediate_size"),
        ("phi-4", "hidden_size"),
        ("qwen1.5-moe-a2.7b", "shared_expert_intermediate_size"),
        ("qwen1.5-moe-a2.7b", "moe_intermediate_size"),
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
