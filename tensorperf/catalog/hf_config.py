"""ModelSpec fields from a Hugging Face ``config.json``, read from disk (nothing is downloaded).

Supported ``model_type`` values and what they map onto (HF transformers modeling code of each family):

- ``llama``: dense SwiGLU; ``attention_bias`` -> q/k/v and o biases; ``mlp_bias`` -> gate/up/down biases.
- ``mistral``: dense SwiGLU, no biases; ``sliding_window`` (when not null) on every layer.
- ``mixtral``: every layer MoE (``num_local_experts``, ``num_experts_per_tok``, expert width
  ``intermediate_size``), router without bias, no biases; ``sliding_window`` (when not null) on every layer.
- ``qwen2``: dense SwiGLU, q/k/v biases but no o bias; sliding window only with ``use_sliding_window``, on
  the layers from ``max_window_layers`` on (or those ``layer_types`` marks ``sliding_attention``).
- ``qwen3``: as qwen2 but ``attention_bias`` (q/k/v/o) and per-head q/k RMSNorm (``qk_norm``).
- ``qwen3_moe``: as qwen3, with MoE layers ``(i + 1) % decoder_sparse_step == 0`` and not in
  ``mlp_only_layers`` (``num_experts``, ``num_experts_per_tok``, ``moe_intermediate_size``); dense
  layers use ``intermediate_size``; router without bias.
- ``deepseek_v2`` / ``deepseek_v3``: MLA (``kv_lora_rank``, ``q_lora_rank`` (null -> 0),
  ``qk_rope_head_dim``, ``qk_nope_head_dim``, ``v_head_dim``; head_dim = nope + rope, num_kv_heads =
  num_heads); MoE from layer ``first_k_dense_replace`` on, every ``moe_layer_freq``-th
  (``n_routed_experts``, ``num_experts_per_tok``, ``n_shared_experts``, ``moe_intermediate_size``);
  router bias when ``topk_method`` is ``noaux_tc`` (e_score_correction_bias; the default for V3). The
  multi-token-prediction module (``num_nextn_predict_layers``) is not counted, as in the presets.
- ``qwen2_moe`` (Qwen1.5-MoE, Qwen2-MoE): as qwen2 (q/k/v bias from ``qkv_bias``, default true), MoE
  layers as qwen3_moe (``num_experts``, ``num_experts_per_tok``, ``moe_intermediate_size``,
  ``decoder_sparse_step``, ``mlp_only_layers``) plus ONE always-on shared expert of width
  ``shared_expert_intermediate_size`` behind a d -> 1 sigmoid gate (``shared_expert_gate``). The
  shared expert is described as ``shared_expert_intermediate_size / moe_intermediate_size`` shared
  experts of the routed width: a gated MLP of width k·w is exactly k gated MLPs of width w side by side
  (same weights, same FLOPs), so its width must be a multiple of the routed width.
- ``gemma2``: GeGLU MLP, ``head_dim`` (default 256) independent of hidden_size / heads, four RMSNorms
  per layer (pre/post attention, pre/post MLP), tied embeddings by default; ``sliding_window`` (default
  4096) on the layers ``layer_types`` marks ``sliding_attention`` (default: the even layers). Logit
  soft-capping and ``query_pre_attn_scalar`` hold no parameters.
- ``gemma3_text`` (also inside a ``gemma3`` multimodal wrapper): as gemma2 plus per-head q/k RMSNorm;
  sliding layers from ``layer_types``, else every layer but each ``sliding_window_pattern``-th
  (default 6: five local, one global); the keys published configs leave out take Gemma3TextConfig's
  defaults (vocab_size 262208, head_dim 256, 8 heads, 4 KV heads, sliding_window 4096, tied embeddings).
- ``phi3`` (Phi-3, Phi-3.5, Phi-4): dense SwiGLU with fused qkv and gate/up projections (same
  parameters as separate ones), no biases; ``sliding_window`` (when not null) on every layer.
- ``gpt_oss``: every layer MoE (``num_local_experts``, ``num_experts_per_tok``, expert width
  ``intermediate_size``) with expert and router biases; ``attention_bias`` -> q/k/v and o biases; one
  learned attention sink per query head; ``sliding_window`` on the layers ``layer_types`` marks
  ``sliding_attention`` (default: the even layers).

Every supported family has a gated MLP (gate, up and down matrices) whatever ``hidden_act`` is, and
RMSNorm with weights only. Multimodal wrappers (a ``text_config`` table) are unwrapped: the text
model is described, the vision tower is not counted. Keys the mapping does not use are ignored.

Malformed input raises :class:`~tensorperf.validation.SpecError` naming the file and the key.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tensorperf.validation import SpecError

__all__ = ["SUPPORTED_MODEL_TYPES", "model_fields_from_hf_config"]

SUPPORTED_MODEL_TYPES = (
    "deepseek_v2",
    "deepseek_v3",
    "gemma2",
    "gemma3_text",
    "gpt_oss",
    "llama",
    "mistral",
    "mixtral",
    "phi3",
    "qwen2",
    "qwen2_moe",
    "qwen3",
    "qwen3_moe",
)

# model_type inferred from `architectures` when a config has no model_type key.
_ARCHITECTURES = {
    "LlamaForCausalLM": "llama",
    "MistralForCausalLM": "mistral",
    "MixtralForCausalLM": "mixtral",
    "Qwen2ForCausalLM": "qwen2",
    "Qwen3ForCausalLM": "qwen3",
    "Qwen3MoeForCausalLM": "qwen3_moe",
    "Qwen2MoeForCausalLM": "qwen2_moe",
    "Gemma2ForCausalLM": "gemma2",
    "Gemma3ForCausalLM": "gemma3_text",
    "Phi3ForCausalLM": "phi3",
    "DeepseekV2ForCausalLM": "deepseek_v2",
    "DeepseekV3ForCausalLM": "deepseek_v3",
    "GptOssForCausalLM": "gpt_oss",
}

# model_type of the text model inside a multimodal wrapper whose text_config leaves it out
_TEXT_MODEL_TYPES = {"gemma3": "gemma3_text"}

_REQUIRED = object()
MAX_LAYERS = 100_000  # num_hidden_layers: real models have < 1,000
_LAYER_TYPES = ("sliding_attention", "full_attention")


# ---- typed access to one config table, with errors that name the file and the key -------------------

_MAX_INT = 2**53  # ModelSpec's bound: integers stay exact in float64


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


_KINDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "positive int": (lambda v: _is_int(v) and 1 <= v <= _MAX_INT, "an integer >= 1 (at most 2^53)"),
    # layer indices are enumerated (MoE placement, layer_types): a bound keeps that finite
    "layer count": (lambda v: _is_int(v) and 1 <= v <= MAX_LAYERS, f"an integer in [1, {MAX_LAYERS}]"),
    "int": (lambda v: _is_int(v) and 0 <= v <= _MAX_INT, "an integer >= 0 (at most 2^53)"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "str": (lambda v: isinstance(v, str), "a string"),
    "int list": (
        lambda v: isinstance(v, list) and all(_is_int(x) and 0 <= x <= _MAX_INT for x in v),
        "a list of integers >= 0",
    ),
    "str list": (lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v), "a list of strings"),
}


class _Table:
    """The text-model table of a config.json: typed look-ups, errors naming file, key and model_type."""

    def __init__(
        self, data: dict[str, Any], path: Path, model_type: str, prefix: str, outer: dict[str, Any] | None
    ) -> None:
        self.data, self.path, self.model_type, self.prefix, self.outer = data, path, model_type, prefix, outer

    def key(self, key: str) -> str:
        return self.prefix + key

    def error(self, key: str, message: str) -> SpecError:
        return SpecError(f"{self.path}: key {self.key(key)!r} {message} (model_type {self.model_type!r})")

    def get(
        self, key: str, kind: str, default: Any = _REQUIRED, *, nullable: bool = False, outer_fallback: bool = False
    ) -> Any:
        """The value of `key`, `default` when absent (a missing required key raises); null gives None
        where `nullable` (the caller decides what null means) and raises otherwise."""
        data = self.data
        if key not in data and outer_fallback and self.outer is not None and key in self.outer:
            data = self.outer
        if key not in data:
            if default is _REQUIRED:
                raise SpecError(
                    f"{self.path}: key {self.key(key)!r} is missing (required for model_type {self.model_type!r})"
                )
            return default
        value = data[key]
        if value is None:
            if nullable:
                return None
            raise self.error(key, f"is null; must be {_KINDS[kind][1]}")
        check, words = _KINDS[kind]
        if not check(value):
            raise self.error(key, f"= {value!r} ({type(value).__name__}) is not allowed: must be {words}")
        return value


# ---- loading ---------------------------------------------------------------------------------------


def _read_json(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise SpecError(f"cannot read {path}: no such file") from None
    except OSError as e:
        raise SpecError(f"cannot read {path}: {e.strerror or e}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SpecError(f"{path}: not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise SpecError(
            f"{path}: not a Hugging Face config: the top level is a JSON {type(data).__name__}, not an object"
        )
    return data


def _model_type(data: dict[str, Any], path: Path, prefix: str) -> str:
    if "model_type" in data:
        mt = data["model_type"]
        if not isinstance(mt, str):
            raise SpecError(f"{path}: key {prefix + 'model_type'!r} = {mt!r} is not allowed: must be a string")
        return mt
    architectures = data.get("architectures")
    if architectures is not None and not (
        isinstance(architectures, list) and all(isinstance(a, str) for a in architectures)
    ):
        raise SpecError(
            f"{path}: key {prefix + 'architectures'!r} = {architectures!r} is not allowed: must be a "
            f"list of strings (and key {prefix + 'model_type'!r} is missing)"
        )
    for arch in architectures or ():
        if arch in _ARCHITECTURES:
            return _ARCHITECTURES[arch]
    raise SpecError(
        f"{path}: key {prefix + 'model_type'!r} is missing; supported model types: {', '.join(SUPPORTED_MODEL_TYPES)}"
    )


def _default_name(data: dict[str, Any], path: Path) -> str:
    name = data.get("_name_or_path")
    if isinstance(name, str) and name.strip():
        return name
    parent = path.resolve().parent.name
    return parent or path.stem


def model_fields_from_hf_config(path: str | Path, name: str | None = None) -> tuple[Path, dict[str, Any]]:
    """The ModelSpec fields of a Hugging Face ``config.json`` (a file, or a folder that holds one),
    ``name`` and ``source`` included, and the file read (``ModelSpec.from_hf_config`` builds the spec).

    ``name`` defaults to the config's ``_name_or_path``, else the name of the file's folder. Supported
    model types: :data:`SUPPORTED_MODEL_TYPES`. A missing file, invalid JSON, an unsupported model_type,
    or a missing or wrong-typed key raises SpecError naming the file and the key.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise SpecError(
            f"path = {path!r} is not allowed: must be the path of a config.json or of its folder (str or Path)"
        )
    path = Path(path)
    if path.is_dir():
        path = path / "config.json"
    data = _read_json(path)
    inner, prefix, outer = data, "", None
    if "text_config" in data:  # multimodal wrapper (Llava, Mistral3, ...): describe the text model
        if not isinstance(data["text_config"], dict):
            raise SpecError(
                f"{path}: key 'text_config' = {data['text_config']!r} is not allowed: must be a JSON object"
            )
        inner, prefix, outer = data["text_config"], "text_config.", data
    if inner is not data and "model_type" not in inner and data.get("model_type") in _TEXT_MODEL_TYPES:
        inner = inner | {"model_type": _TEXT_MODEL_TYPES[data["model_type"]]}
    model_type = _model_type(inner, path, prefix)
    if model_type not in _BUILDERS:
        raise SpecError(
            f"{path}: unsupported model_type {model_type!r} (key {prefix + 'model_type'!r}); "
            f"supported: {', '.join(SUPPORTED_MODEL_TYPES)}"
        )
    table = _Table(inner, path, model_type, prefix, outer)
    fields = _BUILDERS[model_type](table)
    spec_name = name if name is not None else _default_name(data, path)
    return path, {"name": spec_name, "source": f"Hugging Face config {path} (model_type {model_type})", **fields}


# ---- pieces shared by the families -----------------------------------------------------------------


def _common(c: _Table, mla: bool = False, defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    """Widths, heads, vocabulary and embeddings (GQA/MQA/MHA attention; MLA sets its own heads).

    ``defaults``: the family's config-class defaults for keys its published configs leave out
    (num_attention_heads, num_key_value_heads, head_dim, vocab_size, tie_word_embeddings)."""
    dflt = defaults or {}
    d = c.get("hidden_size", "positive int")
    layers = c.get("num_hidden_layers", "layer count")
    heads = c.get("num_attention_heads", "positive int", dflt.get("num_attention_heads", _REQUIRED))
    kv_heads = head_dim = heads  # placeholders for MLA, replaced by the caller
    if not mla:
        kv_heads = c.get("num_key_value_heads", "positive int", dflt.get("num_key_value_heads"), nullable=True) or heads
        head_dim = c.get("head_dim", "positive int", dflt.get("head_dim"), nullable=True)
    if head_dim is None:
        if d % heads:
            raise c.error("head_dim", f"is missing and hidden_size {d} is not divisible by num_attention_heads {heads}")
        head_dim = d // heads
    c.get("hidden_act", "str", "silu")  # type check only: every supported family's MLP is gated
    return dict(
        num_layers=layers,
        d_model=d,
        num_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=head_dim,
        vocab_size=c.get("vocab_size", "positive int", dflt.get("vocab_size", _REQUIRED)),
        tie_embeddings=c.get(
            "tie_word_embeddings", "bool", dflt.get("tie_word_embeddings", False), outer_fallback=True
        ),
        gated_mlp=True,
    )


def _layer_types(c: _Table, layers: int, default: list[str] | None) -> list[str] | None:
    types = c.get("layer_types", "str list", None, nullable=True)
    if types is None:  # absent or null: the family's default
        return default
    if len(types) != layers:
        raise c.error("layer_types", f"has {len(types)} entries; must have num_hidden_layers = {layers}")
    bad = sorted(set(types) - set(_LAYER_TYPES))
    if bad:
        raise c.error("layer_types", f"holds {bad[0]!r}; supported layer types: {', '.join(_LAYER_TYPES)}")
    return types


def _window(window: int, layers: int) -> dict[str, int]:
    return dict(sliding_window=window if layers else 0, sliding_window_layers=layers if window else 0)


def _sliding_every_layer(c: _Table, layers: int, default: int | None) -> dict[str, int]:
    """Mistral / Mixtral: one window on every layer when sliding_window is not null."""
    window = c.get("sliding_window", "int", default, nullable=True) or 0
    return _window(window, layers if window else 0)


def _sliding_qwen(c: _Table, layers: int) -> dict[str, int]:
    """Qwen2/Qwen3(-MoE): a window only with use_sliding_window, on layers >= max_window_layers."""
    if not c.get("use_sliding_window", "bool", False):
        return _window(0, 0)
    window = c.get("sliding_window", "int", 4096, nullable=True) or 0
    types = _layer_types(c, layers, None)
    if types is not None:
        count = types.count("sliding_attention")
    else:
        count = max(0, layers - c.get("max_window_layers", "int", 28))
    return _window(window, count if window else 0)


def _sliding_by_layer_types(c: _Table, layers: int, window: int, default: list[str]) -> dict[str, int]:
    """gpt-oss, Gemma-2/3: ``sliding_window`` (default `window`) on the layers ``layer_types`` marks
    ``sliding_attention`` (default: the family's pattern `default`)."""
    size = c.get("sliding_window", "int", window, nullable=True) or 0
    types = _layer_types(c, layers, default) or []
    return _window(size, types.count("sliding_attention") if size else 0)


def _even_layers_slide(layers: int) -> list[str]:
    """GptOssConfig and Gemma2Config default: layers 0, 2, 4, ... slide, the odd ones attend fully."""
    return [_LAYER_TYPES[i % 2] for i in range(layers)]


def _layer_mix(c: _Table, layers: int, moe: list[int], key: str) -> tuple[int, int]:
    """(first_dense_layers, moe_layer_freq) for the MoE layer indices `moe` (sorted, not empty).

    ModelSpec's mix: layers [0, k) are dense and (L - k) // f of the rest are MoE, one in every f. The
    config's MoE layers must be evenly spaced (period f), start within f layers after the dense prefix
    and number (L - k) // f; the largest such k is taken. Anything else (dense layers in the middle,
    uneven spacing) raises naming `key`.
    """
    if len(moe) == 1:
        return moe[0], layers - moe[0]
    gaps = {b - a for a, b in zip(moe, moe[1:])}
    if len(gaps) == 1:
        f = gaps.pop()
        for k in range(moe[0], max(-1, moe[0] - f), -1):
            if (layers - k) // f == len(moe):
                return k, f
    dense = sorted(set(range(layers)) - set(moe))
    raise c.error(
        key,
        f"makes layers {dense} dense and the other {len(moe)} of {layers} MoE, which ModelSpec "
        f"cannot express (it allows leading dense layers, then one MoE layer in every "
        f"moe_layer_freq layers)",
    )


def _moe_fields(
    c: _Table,
    layers: int,
    moe: list[int],
    key: str,
    *,
    experts: int,
    top_k: int,
    width: int,
    shared: int = 0,
    dense_width_key: str = "intermediate_size",
) -> dict[str, Any]:
    """MoE fields for the MoE layer indices `moe` (dense layers get `dense_width_key` as d_ff)."""
    if not moe:  # no layer is MoE: a dense model
        return dict(d_ff=c.get(dense_width_key, "positive int"))
    first_dense, freq = _layer_mix(c, layers, moe, key)
    dense = layers - len(moe)
    return dict(
        d_ff=c.get(dense_width_key, "positive int") if dense else 0,
        num_experts=experts,
        experts_per_token=top_k,
        num_shared_experts=shared,
        d_ff_expert=width,
        first_dense_layers=first_dense,
        moe_layer_freq=freq,
    )


def _attention_bias(c: _Table, default: bool = False) -> dict[str, bool]:
    bias = c.get("attention_bias", "bool", default)
    return dict(qkv_bias=bias, out_bias=bias)


# ---- families --------------------------------------------------------------------------------------


def _llama(c: _Table) -> dict[str, Any]:
    f = _common(c)
    return (
        f
        | _attention_bias(c)
        | dict(d_ff=c.get("intermediate_size", "positive int"), mlp_bias=c.get("mlp_bias", "bool", False))
    )


def _mistral(c: _Table) -> dict[str, Any]:
    f = _common(c)
    return f | dict(d_ff=c.get("intermediate_size", "positive int")) | _sliding_every_layer(c, f["num_layers"], 4096)


def _mixtral(c: _Table) -> dict[str, Any]:
    f = _common(c)
    layers = f["num_layers"]
    moe = _moe_fields(
        c,
        layers,
        list(range(layers)),
        "num_local_experts",
        experts=c.get("num_local_experts", "positive int"),
        top_k=c.get("num_experts_per_tok", "positive int"),
        width=c.get("intermediate_size", "positive int"),
    )
    return f | moe | _sliding_every_layer(c, layers, None)


def _qwen2(c: _Table) -> dict[str, Any]:
    f = _common(c)
    return (
        f
        | dict(d_ff=c.get("intermediate_size", "positive int"), qkv_bias=True, out_bias=False)
        | _sliding_qwen(c, f["num_layers"])
    )


def _qwen3(c: _Table) -> dict[str, Any]:
    f = _common(c)
    return (
        f
        | _attention_bias(c)
        | dict(d_ff=c.get("intermediate_size", "positive int"), qk_norm=True)
        | _sliding_qwen(c, f["num_layers"])
    )


def _qwen_moe_layers(c: _Table, layers: int, experts: int) -> tuple[list[int], str]:
    """Qwen2/Qwen3-MoE: layer i is MoE when (i + 1) % decoder_sparse_step == 0 and i is not in
    mlp_only_layers; and the key that decides the mix (for errors)."""
    step = c.get("decoder_sparse_step", "positive int", 1)
    mlp_only = c.get("mlp_only_layers", "int list", [], nullable=True) or []
    out_of_range = [i for i in mlp_only if i >= layers]
    if out_of_range:
        raise c.error("mlp_only_layers", f"holds layer {out_of_range[0]}; layers are 0..{layers - 1}")
    moe = [i for i in range(layers) if experts > 0 and (i + 1) % step == 0 and i not in mlp_only]
    return moe, "mlp_only_layers" if mlp_only else "decoder_sparse_step"


def _qwen3_moe(c: _Table) -> dict[str, Any]:
    f = _common(c)
    layers = f["num_layers"]
    experts = c.get("num_experts", "int")
    moe, key = _qwen_moe_layers(c, layers, experts)
    fields = _moe_fields(
        c,
        layers,
        moe,
        key,
        experts=experts,
        top_k=c.get("num_experts_per_tok", "positive int") if moe else 0,
        width=c.get("moe_intermediate_size", "positive int") if moe else 0,
    )
    return f | _attention_bias(c) | fields | dict(qk_norm=True) | _sliding_qwen(c, layers)


def _qwen2_moe(c: _Table) -> dict[str, Any]:
    f = _common(c)
    layers = f["num_layers"]
    experts = c.get("num_experts", "int")
    moe, key = _qwen_moe_layers(c, layers, experts)
    width = c.get("moe_intermediate_size", "positive int") if moe else 0
    shared_width = c.get("shared_expert_intermediate_size", "int") if moe else 0
    if moe and shared_width % width:
        raise c.error(
            "shared_expert_intermediate_size",
            f"= {shared_width} is not a multiple of moe_intermediate_size = {width}: ModelSpec describes the "
            f"shared expert as shared experts of the routed width",
        )
    shared = shared_width // width if moe else 0  # one gated MLP of width k·w = k of width w side by side
    fields = _moe_fields(
        c,
        layers,
        moe,
        key,
        experts=experts,
        top_k=c.get("num_experts_per_tok", "positive int") if moe else 0,
        width=width,
        shared=shared,
    )
    return (
        f
        | dict(qkv_bias=c.get("qkv_bias", "bool", True), out_bias=False, shared_expert_gate=shared > 0)
        | fields
        | _sliding_qwen(c, layers)
    )


# Gemma2Config / Gemma3TextConfig defaults for keys the published configs leave out (HF transformers
# models/gemma2/configuration_gemma2.py, models/gemma3/configuration_gemma3.py)
_GEMMA2_DEFAULTS = {"head_dim": 256, "vocab_size": 256_000, "tie_word_embeddings": True}
_GEMMA3_DEFAULTS = {
    "head_dim": 256,
    "vocab_size": 262_208,
    "num_attention_heads": 8,
    "num_key_value_heads": 4,
    "tie_word_embeddings": True,
}


def _gemma(c: _Table, defaults: dict[str, Any]) -> dict[str, Any]:
    """Gemma-2/3 layers: GeGLU MLP; RMSNorm before and after attention and before and after the MLP."""
    return (
        _common(c, defaults=defaults)
        | _attention_bias(c)
        | dict(d_ff=c.get("intermediate_size", "positive int"), norms_per_layer=4)
    )


def _gemma2(c: _Table) -> dict[str, Any]:
    f = _gemma(c, _GEMMA2_DEFAULTS)
    layers = f["num_layers"]
    return f | _sliding_by_layer_types(c, layers, 4096, _even_layers_slide(layers))


def _gemma3(c: _Table) -> dict[str, Any]:
    f = _gemma(c, _GEMMA3_DEFAULTS)
    layers = f["num_layers"]
    pattern = c.get("sliding_window_pattern", "positive int", 6)  # every pattern-th layer is global
    default = [_LAYER_TYPES[0] if (i + 1) % pattern else _LAYER_TYPES[1] for i in range(layers)]
    return f | dict(qk_norm=True) | _sliding_by_layer_types(c, layers, 4096, default)


def _phi3(c: _Table) -> dict[str, Any]:
    f = _common(c)
    return f | dict(d_ff=c.get("intermediate_size", "positive int")) | _sliding_every_layer(c, f["num_layers"], None)


def _deepseek(c: _Table, version: int) -> dict[str, Any]:
    # MLA: num_key_value_heads (= heads) and head_dim (HF sets it to qk_rope_head_dim) are not read
    f = _common(c, mla=True)
    layers, heads = f["num_layers"], f["num_heads"]
    if c.get("attention_bias", "bool", False):
        raise c.error(
            "attention_bias",
            "is true: biases on the MLA projections are not modelled by ModelSpec (DeepSeek checkpoints have none)",
        )
    rope = c.get("qk_rope_head_dim", "positive int")
    nope = c.get("qk_nope_head_dim", "positive int")
    mla = dict(
        kv_lora_rank=c.get("kv_lora_rank", "positive int"),
        q_lora_rank=c.get("q_lora_rank", "int", nullable=True) or 0,  # null: full-rank q_proj (V2-Lite)
        qk_rope_head_dim=rope,
        qk_nope_head_dim=nope,
        v_head_dim=c.get("v_head_dim", "positive int"),
        num_kv_heads=heads,
        head_dim=nope + rope,
    )
    experts = c.get("n_routed_experts", "int", nullable=True) or 0  # null: a dense model
    moe: list[int] = []
    if experts:
        first = c.get("first_k_dense_replace", "int")
        freq = c.get("moe_layer_freq", "positive int", 1)
        moe = [i for i in range(layers) if i >= first and i % freq == 0]
    fields = _moe_fields(
        c,
        layers,
        moe,
        "moe_layer_freq",
        experts=experts,
        top_k=c.get("num_experts_per_tok", "positive int") if moe else 0,
        width=c.get("moe_intermediate_size", "positive int") if moe else 0,
        shared=(c.get("n_shared_experts", "int", nullable=True) or 0) if moe else 0,
    )
    # noaux_tc routing adds e_score_correction_bias (one per routed expert); HF's DeepseekV3 always has it
    method = c.get("topk_method", "str", "noaux_tc" if version == 3 else "greedy")
    router_bias = bool(moe) and method == "noaux_tc"
    # multi-token-prediction modules shipped with the checkpoint (DeepSeek-V3: 1; docs/model.md §3.14)
    mtp = c.get("num_nextn_predict_layers", "int", 0)
    return f | mla | fields | dict(router_bias=router_bias, num_mtp_layers=mtp)


def _gpt_oss(c: _Table) -> dict[str, Any]:
    f = _common(c)
    layers = f["num_layers"]
    top_key = (
        "num_experts_per_tok"
        if "num_experts_per_tok" in c.data or "experts_per_token" not in c.data
        else "experts_per_token"
    )
    moe = _moe_fields(
        c,
        layers,
        list(range(layers)),
        "num_local_experts",
        experts=c.get("num_local_experts", "positive int"),
        top_k=c.get(top_key, "positive int"),
        width=c.get("intermediate_size", "positive int"),
    )
    return (
        f
        | moe
        | _attention_bias(c, True)
        | _sliding_by_layer_types(c, layers, 128, _even_layers_slide(layers))
        | dict(mlp_bias=True, router_bias=True, attention_sinks=True)
    )


_BUILDERS: dict[str, Callable[[_Table], dict[str, Any]]] = {
    "llama": _llama,
    "mistral": _mistral,
    "mixtral": _mixtral,
    "qwen2": _qwen2,
    "qwen3": _qwen3,
    "qwen3_moe": _qwen3_moe,
    "qwen2_moe": _qwen2_moe,
    "gemma2": _gemma2,
    "gemma3_text": _gemma3,
    "phi3": _phi3,
    "deepseek_v2": lambda c: _deepseek(c, 2),
    "deepseek_v3": lambda c: _deepseek(c, 3),
    "gpt_oss": _gpt_oss,
}
assert tuple(sorted(_BUILDERS)) == SUPPORTED_MODEL_TYPES
