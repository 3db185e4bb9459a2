"""Frozen specifications: what a model is (ModelSpec) and what a device is (HardwareSpec).

Specs hold counts and SI rates only. A spec built from Python numbers is validated on
construction; the engine also builds *tensor views* of specs (every numeric field a tensor placed
on the grid's ``model`` or ``hardware`` axis, see :mod:`tensorperf.engine.grid`), so every derived
property below is written with arithmetic that works on ints and on tensors alike.

Parameter counting follows docs/model.md §3.2 (HF configs; DeepSeek-V3 inference/model.py).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from tensorperf.catalog.hf_config import model_fields_from_hf_config
from tensorperf.units import DTYPE_BYTES, FOUR_BIT_FORMATS, QUANTIZED_FORMATS
from tensorperf.validation import (
    SpecError,
    at_least_one,
    boolean,
    divides,
    fraction,
    non_negative,
    non_negative_integer,
    positive,
    positive_integer,
    probability,
    unit_interval,
    validate,
)


def tensor_view(cls: type, values: dict[str, Any]) -> Any:
    """Instance of a frozen spec class whose fields hold tensors (no validation, no copies)."""
    obj = object.__new__(cls)
    for name, value in values.items():
        object.__setattr__(obj, name, value)
    return obj


def _check_name(spec: Any) -> None:
    """``name``: a non-empty string; ``source``: a string."""
    cls = type(spec).__name__
    if not isinstance(spec.name, str) or not spec.name.strip():
        raise SpecError(f"{cls}.name = {spec.name!r} is not allowed: must be a non-empty string")
    if not isinstance(spec.source, str):
        raise SpecError(f"{cls}.source = {spec.source!r} is not allowed: must be a string")


def _check_instance(spec: Any, field: str, kind: type, optional: bool) -> None:
    value = getattr(spec, field)
    if not (isinstance(value, kind) or (optional and value is None)):
        raise SpecError(
            f"{type(spec).__name__}.{field} = {value!r} is not allowed: must be a {kind.__name__}"
            + (" or None" if optional else "")
            + f" (spec {spec.name!r})"
        )


def numeric_fields(cls: type) -> tuple[str, ...]:
    """Names of the fields of a spec class that are numbers or flags (sweepable)."""
    return tuple(f.name for f in dataclasses.fields(cls) if f.type in ("int", "float", "bool"))


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """A decoder-only transformer, dense or mixture-of-experts, with GQA/MQA/MHA or MLA attention.

    Widths are in elements; counts are per model. MoE fields are 0 for dense models.
    """

    name: str
    num_layers: int
    d_model: int
    num_heads: int
    num_kv_heads: int
    head_dim: int  # query/key head width for GQA; for MLA the value head width is v_head_dim
    vocab_size: int
    d_ff: int = 0  # dense MLP intermediate width (used by dense layers)
    gated_mlp: bool = True  # SwiGLU/GeGLU: 3 matrices per MLP; plain GELU/ReLU: 2
    tie_embeddings: bool = False
    # mixture of experts
    num_experts: int = 0  # routed experts per MoE layer (0 = dense model)
    experts_per_token: int = 0  # top-k
    num_shared_experts: int = 0
    d_ff_expert: int = 0
    first_dense_layers: int = 0  # leading layers that are dense (DeepSeek first_k_dense_replace)
    moe_layer_freq: int = 1  # after those, every moe_layer_freq-th layer is MoE (Llama-4 Maverick: 2)
    router_bias: bool = False  # per-expert router bias (DeepSeek-V3 gate bias, gpt-oss)
    shared_expert_gate: bool = False  # a d_model -> 1 sigmoid gate on the shared experts' output (Qwen2-MoE)
    # multi-head latent attention (DeepSeek-V2/V3); kv_lora_rank = 0 means not MLA
    kv_lora_rank: int = 0
    q_lora_rank: int = 0
    qk_rope_head_dim: int = 0
    qk_nope_head_dim: int = 0
    v_head_dim: int = 0
    # local attention
    sliding_window: int = 0  # window in tokens (0 = none)
    sliding_window_layers: int = 0  # how many layers use it (gpt-oss: every other layer)
    attention_chunk: int = 0  # Llama-4 chunked local attention chunk size (0 = none)
    chunked_layers: int = 0  # how many layers use chunked attention
    # small parameter terms (docs/model.md §8.13)
    norms_per_layer: int = 2  # pre-attention and pre-MLP norms (GPT-J: 1, parallel block)
    norm_bias: bool = False  # LayerNorm with bias (2 vectors per norm) instead of RMSNorm
    qkv_bias: bool = False
    out_bias: bool = False
    mlp_bias: bool = False  # biases on dense-MLP and expert matrices
    qk_norm: bool = False  # per-head RMSNorm on q and k (Qwen3)
    attention_sinks: bool = False  # one learned logit per query head (gpt-oss)
    lm_head_bias: bool = False
    learned_positions: int = 0  # rows of a learned absolute-position table (0 with RoPE)
    # speculative decoding (docs/model.md §3.14): multi-token-prediction modules shipped with the
    # checkpoint (HF num_nextn_predict_layers; not counted in num_params), and the published
    # acceptance of an MTP draft token given the previous one was (0: no published value)
    num_mtp_layers: int = 0
    mtp_acceptance: float = 0.0
    # the published per-position decay of that acceptance where the last MTP module drafts beyond its
    # own depth (reused recursively): draft position i > num_mtp_layers is accepted with
    # mtp_acceptance·decay^(i − num_mtp_layers) given the one before was (1: no decay)
    mtp_reuse_decay: float = 1.0
    source: str = field(default="", compare=False)

    CONSTRAINTS: ClassVar[dict[str, Any]] = {
        "num_layers": positive_integer,
        "d_model": positive_integer,
        "num_heads": positive_integer,
        "num_kv_heads": (positive_integer, divides("num_heads")),
        "head_dim": positive_integer,
        "vocab_size": positive_integer,
        "d_ff": non_negative_integer,
        "gated_mlp": boolean,
        "tie_embeddings": boolean,
        "num_experts": non_negative_integer,
        "experts_per_token": non_negative_integer,
        "num_shared_experts": non_negative_integer,
        "d_ff_expert": non_negative_integer,
        "first_dense_layers": non_negative_integer,
        "moe_layer_freq": positive_integer,
        "router_bias": boolean,
        "shared_expert_gate": boolean,
        "kv_lora_rank": non_negative_integer,
        "q_lora_rank": non_negative_integer,
        "qk_rope_head_dim": non_negative_integer,
        "qk_nope_head_dim": non_negative_integer,
        "v_head_dim": non_negative_integer,
        "sliding_window": non_negative_integer,
        "sliding_window_layers": non_negative_integer,
        "attention_chunk": non_negative_integer,
        "chunked_layers": non_negative_integer,
        "norms_per_layer": non_negative_integer,
        "norm_bias": boolean,
        "qkv_bias": boolean,
        "out_bias": boolean,
        "mlp_bias": boolean,
        "qk_norm": boolean,
        "attention_sinks": boolean,
        "lm_head_bias": boolean,
        "learned_positions": non_negative_integer,
        "num_mtp_layers": non_negative_integer,
        "mtp_acceptance": probability,
        "mtp_reuse_decay": unit_interval,
    }

    def __post_init__(self) -> None:
        _check_name(self)
        validate(self)
        problems = []
        if self.num_experts and not 1 <= self.experts_per_token <= self.num_experts:
            problems.append(
                f"experts_per_token = {self.experts_per_token} must be in [1, num_experts "
                f"= {self.num_experts}] for an MoE model"
            )
        if self.num_experts and not self.d_ff_expert:
            problems.append("d_ff_expert must be > 0 for an MoE model (num_experts > 0)")
        if not self.num_experts and (self.experts_per_token or self.num_shared_experts):
            problems.append("experts_per_token/num_shared_experts need num_experts > 0")
        if self.shared_expert_gate and not self.num_shared_experts:
            problems.append("shared_expert_gate needs num_shared_experts > 0")
        if self.first_dense_layers > self.num_layers:
            problems.append(f"first_dense_layers = {self.first_dense_layers} exceeds num_layers = {self.num_layers}")
        if self.num_dense_layers and not self.d_ff:
            problems.append(f"d_ff must be > 0: the model has {self.num_dense_layers} dense layers")
        if self.kv_lora_rank and not (self.qk_rope_head_dim and self.qk_nope_head_dim and self.v_head_dim):
            problems.append(
                "an MLA model (kv_lora_rank > 0) needs qk_rope_head_dim, qk_nope_head_dim and v_head_dim > 0"
            )
        for count in ("sliding_window_layers", "chunked_layers"):
            if getattr(self, count) > self.num_layers:
                problems.append(f"{count} = {getattr(self, count)} exceeds num_layers = {self.num_layers}")
        if problems:
            raise SpecError(f"ModelSpec {self.name!r}: " + "; ".join(problems))

    # ---- layer mix -------------------------------------------------------------------------
    @property
    def is_moe(self) -> Any:
        return self.num_experts > 0

    @property
    def is_mla(self) -> Any:
        return self.kv_lora_rank > 0

    @property
    def num_moe_layers(self) -> Any:
        """Layers whose MLP is a mixture of experts."""
        return ((self.num_layers - self.first_dense_layers) // self.moe_layer_freq) * (self.num_experts > 0)

    @property
    def num_dense_layers(self) -> Any:
        return self.num_layers - self.num_moe_layers

    @property
    def mlp_matrices(self) -> Any:
        """Weight matrices per MLP/expert: 3 for gated (SwiGLU), 2 for plain."""
        return 2 + self.gated_mlp * 1

    # ---- parameters per block (docs/model.md §3.2) ---------------------------------------------
    @property
    def attention_params(self) -> Any:
        d, nq, nkv, dh = self.d_model, self.num_heads, self.num_kv_heads, self.head_dim
        gqa = d * nq * dh + 2 * d * nkv * dh + nq * dh * d
        gqa = gqa + self.qkv_bias * (nq + 2 * nkv) * dh + self.out_bias * d
        r_kv, r_q = self.kv_lora_rank, self.q_lora_rank
        qk = self.qk_nope_head_dim + self.qk_rope_head_dim
        q_path = (r_q > 0) * (d * r_q + r_q + r_q * nq * qk) + (r_q == 0) * d * nq * qk
        mla = (
            q_path
            + d * (r_kv + self.qk_rope_head_dim)
            + r_kv
            + r_kv * nq * (self.qk_nope_head_dim + self.v_head_dim)
            + nq * self.v_head_dim * d
        )
        extras = self.qk_norm * 2 * dh + self.attention_sinks * nq
        return (self.kv_lora_rank > 0) * mla + (self.kv_lora_rank == 0) * gqa + extras

    @property
    def norm_params_per_layer(self) -> Any:
        return self.norms_per_layer * self.d_model * (1 + self.norm_bias)

    @property
    def dense_mlp_params(self) -> Any:
        return self.mlp_matrices * self.d_model * self.d_ff + self.mlp_bias * (
            (self.mlp_matrices - 1) * self.d_ff + self.d_model
        )

    @property
    def expert_params(self) -> Any:
        """Parameters of one routed or shared expert."""
        return self.mlp_matrices * self.d_model * self.d_ff_expert + self.mlp_bias * (
            (self.mlp_matrices - 1) * self.d_ff_expert + self.d_model
        )

    @property
    def router_params(self) -> Any:
        """Router (d x E, optional bias) and the shared-expert gate (d x 1, Qwen2-MoE) of one MoE layer."""
        return (
            self.d_model * self.num_experts
            + self.router_bias * self.num_experts
            + self.shared_expert_gate * self.d_model
        )

    def _moe_layer_params(self, experts: Any) -> Any:
        return (experts + self.num_shared_experts) * self.expert_params + self.router_params

    @property
    def embedding_params(self) -> Any:
        """Input embedding, LM head (if untied, with bias if any), learned positions, final norm."""
        vd = self.vocab_size * self.d_model
        return (
            vd
            + (1 - self.tie_embeddings) * vd
            + self.lm_head_bias * self.vocab_size
            + self.learned_positions * self.d_model
            + self.d_model * (1 + self.norm_bias)
        )

    def _total(self, experts: Any) -> Any:
        common = self.attention_params + self.norm_params_per_layer
        return (
            self.num_layers * common
            + self.num_dense_layers * self.dense_mlp_params
            + self.num_moe_layers * self._moe_layer_params(experts)
            + self.embedding_params
        )

    @property
    def num_params(self) -> Any:
        """All parameters (every expert), embeddings and LM head included."""
        return self._total(self.num_experts)

    @property
    def num_active_params(self) -> Any:
        """Parameters touched by one token: top-k routed experts instead of all of them."""
        return self._total(self.experts_per_token)

    # ---- KV cache ---------------------------------------------------------------------------
    @property
    def kv_elements_per_token_per_layer(self) -> Any:
        """Cached elements per token per layer: 2·n_kv·d_h (GQA) or r_kv + d_rope (MLA latent)."""
        mla = self.kv_lora_rank + self.qk_rope_head_dim
        return (self.kv_lora_rank > 0) * mla + (self.kv_lora_rank == 0) * 2 * self.num_kv_heads * self.head_dim

    def replace(self, **changes: Any) -> ModelSpec:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_hf_config(cls, path: Any, name: str | None = None) -> ModelSpec:
        """A ModelSpec from a Hugging Face config.json (Llama, Mistral, Mixtral, Qwen2/3, Qwen2/3-MoE,
        Gemma-2/3, Phi-3/4, DeepSeek-V2/V3, gpt-oss); see :mod:`tensorperf.catalog.hf_config`.

        ``name`` defaults to the config's ``_name_or_path``, else the name of the file's folder. A
        missing file, invalid JSON, an unsupported model_type, or a missing or wrong-typed key raises
        SpecError naming the file and the key."""
        path, fields = model_fields_from_hf_config(path, name=name)
        try:
            return cls(**fields)
        except SpecError as e:
            raise SpecError(f"{path}: {e}") from None


@dataclass(frozen=True, kw_only=True)
class Efficiency:
    """Achieved fraction of a peak rate, each in (0, 1], and the parameters of their size-dependent forms.

    compute: dense GEMMs vs the tensor-core peak; expert_compute: grouped (MoE expert) GEMMs at
    large token counts; attention: the attention core (flash kernels);
    gemm_memory: HBM traffic of GEMM kernels (weight streaming, with dequantization for fp8/fp4)
    vs peak bandwidth; memory: every other HBM stream (KV cache, norms, embeddings);
    scaleup / scaleout: collectives vs per-direction link
    bandwidth. overlap: 1 -> op time = max(compute, memory) (perfect overlap), 0 -> their sum.
    comm_overlap: fraction of communication hidden behind compute. cp_overlap: fraction of the
    attention compute that hides the ring-attention K/V transfer of context parallelism.

    Size-dependent forms (smooth, saturating; 0 turns a form off):
    GEMM compute efficiency = compute · m / (m + gemm_half_tokens) with m the GEMM's rows (tokens);
    grouped expert GEMMs use m = tokens per expert and expert_half_tokens; a collective's link
    efficiency = scaleup|scaleout · S / (S + comm_half_bytes) for a message of S bytes.
    step_overhead: fixed seconds per forward step (scheduling, kernel launches, sampling).
    gemm_latency: fixed seconds per GEMM kernel on the GPU (prologue, scale loads, tail) beyond its
    roofline time, so that gemm_memory is the kernels' streaming efficiency on large weights
    (docs/model.md §3.7.1); 0 folds it into gemm_memory.
    expert_latency: fixed seconds per fused-MoE call on the GPU beyond its roofline time (routing
    sort, expand, the two grouped GEMMs, activation, finalize: docs/model.md §3.7.2); 0: the two
    grouped GEMMs' gemm_latency.
    """

    compute: float = 0.7
    expert_compute: float = 0.7
    attention: float = 0.5
    gemm_memory: float = 0.8
    memory: float = 0.8
    scaleup: float = 0.8
    scaleout: float = 0.8
    overlap: float = 1.0
    comm_overlap: float = 0.0
    cp_overlap: float = 1.0
    gemm_half_tokens: float = 0.0
    expert_half_tokens: float = 0.0
    comm_half_bytes: float = 0.0
    step_overhead: float = 0.0
    gemm_latency: float = 0.0
    expert_latency: float = 0.0

    CONSTRAINTS: ClassVar[dict[str, Any]] = {
        "compute": unit_interval,
        "attention": unit_interval,
        "memory": unit_interval,
        "gemm_memory": unit_interval,
        "expert_compute": unit_interval,
        "scaleup": unit_interval,
        "scaleout": unit_interval,
        "overlap": fraction,
        "comm_overlap": fraction,
        "cp_overlap": fraction,
        "gemm_half_tokens": non_negative,
        "expert_half_tokens": non_negative,
        "comm_half_bytes": non_negative,
        "step_overhead": non_negative,
        "gemm_latency": non_negative,
        "expert_latency": non_negative,
    }

    def __post_init__(self) -> None:
        validate(self)


@dataclass(frozen=True, kw_only=True)
class StackSpec:
    """What a serving stack (engine and version) adds to the forward passes' time (docs/model.md §10.4).

    step_overhead: seconds per forward step the host does not hide behind the GPU (scheduling,
    sampling, launches outside CUDA graphs), added to every step of every pass.
    weight_only_formats / w4a8_formats: the GEMM kernel paths the stack offers beyond each format's
    native one (see :class:`KernelPaths`); no_native_formats: formats whose native path it does
    not run (their other paths only).
    request_overhead: seconds between a request's arrival at the server and its first token that are
    not forward passes (HTTP, tokenization, admission, detokenizing and streaming the first token),
    added to the serving TTFT.
    compute_efficiency: the share of the device's measured compute rates (its GEMM, grouped-GEMM and
    attention kernel efficiencies, measured on the kernels TensorRT-LLM and AITER run) that the
    stack's own kernels reach: every op's compute time is divided by it (1: the measured kernels).
    kernels_measured: the stack runs the very kernels those efficiencies were measured on
    (TensorRT-LLM 1.x's on NVIDIA, AITER's through ATOM on AMD): its compute_efficiency is 1 by
    construction, and ``calibrate --stacks`` does not fit it.
    """

    name: str
    step_overhead: float = 0.0
    request_overhead: float = 0.0
    compute_efficiency: float = 1.0
    kernels_measured: bool = False
    # tensor-parallel all-reduces of the runtime's own peer-memory one-shot/two-shot kernels, the
    # fastest of them and NCCL inside one scale-up domain (docs/model.md §10.4)
    custom_allreduce: bool = False
    # KV-cache pool: kv_cache_fraction of the whole HBM (vLLM gpu_memory_utilization, SGLang
    # mem_fraction_static) or, with kv_cache_after_weights, of what the weights and the workspace
    # leave (TensorRT-LLM free_gpu_memory_fraction) (docs/model.md §10.4)
    kv_cache_fraction: float = 0.9
    kv_cache_after_weights: bool = False
    # GEMM kernel paths beyond the native ones (docs/model.md §3.13): formats with a weight-only
    # (dequantizing, bf16-math) kernel, and 4-bit formats with a W4A8 (fp8-math) kernel
    weight_only_formats: tuple[str, ...] = ()
    w4a8_formats: tuple[str, ...] = ()
    # quantized formats the stack does not run on their own math although the hardware has it (it
    # runs them through its weight-only or W4A8 kernels instead: TensorRT-LLM's MXFP4 MoE is W4A8)
    no_native_formats: tuple[str, ...] = ()
    source: str = ""

    CONSTRAINTS: ClassVar[dict[str, Any]] = {
        "step_overhead": non_negative,
        "request_overhead": non_negative,
        "compute_efficiency": unit_interval,
        "kernels_measured": boolean,
        "custom_allreduce": boolean,
        "kv_cache_fraction": unit_interval,
        "kv_cache_after_weights": boolean,
    }

    def __post_init__(self) -> None:
        validate(self)
        if self.kernels_measured and self.compute_efficiency != 1:
            raise SpecError(
                f"StackSpec.compute_efficiency = {self.compute_efficiency!r} is not allowed with kernels_measured = "
                f"true: must be 1 (the stack runs the measured kernels) (spec {self.name!r})"
            )
        _format_list(self, "weight_only_formats", QUANTIZED_FORMATS)
        _format_list(self, "w4a8_formats", FOUR_BIT_FORMATS)
        _format_list(self, "no_native_formats", QUANTIZED_FORMATS)

    @property
    def kernel_paths(self) -> KernelPaths:
        """The GEMM kernel paths this stack offers beyond the native ones."""
        return KernelPaths(weight_only=self.weight_only_formats, w4a8=self.w4a8_formats)


def _format_list(spec: Any, field: str, allowed: tuple[str, ...]) -> None:
    """A tuple of weight-format names from ``allowed`` (a TOML list becomes a tuple)."""
    value = getattr(spec, field)
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise SpecError(
            f"{type(spec).__name__}.{field} = {value!r} is not allowed: must be a list of weight formats "
            f"from {', '.join(allowed)} (spec {spec.name!r})"
        )
    for item in value:
        if item not in allowed:
            raise SpecError(
                f"{type(spec).__name__}.{field} lists {item!r}, which is not allowed: must be one of "
                f"{', '.join(allowed)} (spec {spec.name!r})"
            )
    object.__setattr__(spec, field, tuple(value))


@dataclass(frozen=True, kw_only=True)
class KernelPaths:
    """The GEMM kernel paths a serving stack offers beyond each format's native one (docs/model.md §3.13).

    Every stack runs a format natively where the hardware has its math (W16A16 bf16, W8A8 fp8/int8,
    W4A4 fp4/mxfp4/nvfp4). ``weight_only``: formats the stack also runs through a dequantizing kernel
    with bf16 math (W8A16, W4A16: Marlin, Machete, TRT-LLM weight-only GEMMs); ``w4a8``: 4-bit formats it
    runs with fp8 activations (W4A8) where the hardware has fp8 math (a 4-bit float format: where it
    has fp4 tensor cores, whose MMA takes fp8 x fp4 operands).
    """

    weight_only: tuple[str, ...] = ()
    w4a8: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class RecipeSpec:
    """The weight format of each tensor group of a deployment (docs/model.md §3.13).

    attention: QKV and output projections (and the router); mlp: dense MLPs and shared experts;
    experts: routed experts; embeddings: the embedding table and the LM head. A group left None
    follows the ``weight_dtype`` input (the preset ``uniform`` leaves every group None).
    """

    name: str
    attention: str | None = None
    mlp: str | None = None
    experts: str | None = None
    embeddings: str | None = None
    source: str = field(default="", compare=False)

    GROUPS: ClassVar[tuple[str, ...]] = ("attention", "mlp", "experts", "embeddings")

    def __post_init__(self) -> None:
        _check_name(self)
        for group in self.GROUPS:
            value = getattr(self, group)
            if value is not None and value not in DTYPE_BYTES:
                raise SpecError(
                    f"RecipeSpec.{group} = {value!r} is not allowed: must be a weight format "
                    f"({', '.join(DTYPE_BYTES)}) or None to follow weight_dtype (spec {self.name!r})"
                )

    @property
    def uniform(self) -> bool:
        """Every group follows weight_dtype."""
        return all(getattr(self, g) is None for g in self.GROUPS)


# Efficiency factors that are fractions: rates in (0, 1] (a *_scale scales their odds) and overlaps in
# [0, 1]; the rest are sizes and times.
RATE_EFFICIENCIES = tuple(n for n, rule in Efficiency.CONSTRAINTS.items() if rule is unit_interval)
BOUNDED_EFFICIENCIES = tuple(n for n, rule in Efficiency.CONSTRAINTS.items() if rule in (unit_interval, fraction))


@dataclass(frozen=True, kw_only=True)
class SeedHardware:
    """The seed notebook's own hardware dict (cell In[73]), in its own units, for convention='seed'."""

    fp16_flops_per_cu_cycle: int  # FLOP/cycle/CU
    num_cus: int
    freq_ghz: float
    hbm_bw_gbps: float  # GB/s
    hbm_capacity_gb: float
    gpus_per_node: int
    number_of_nodes: int
    l2_latency_cycles: int
    nic_cards: int
    intra_comm_eff: float
    inter_comm_eff: float
    intra_bw_gbps: float  # per GPU (7 links x 64 GB/s)
    inter_bw_gbps: float  # per NIC
    intra_latency_us: float
    inter_latency_us: float

    CONSTRAINTS: ClassVar[dict[str, Any]] = {
        "fp16_flops_per_cu_cycle": positive_integer,
        "num_cus": positive_integer,
        "freq_ghz": positive,
        "hbm_bw_gbps": positive,
        "hbm_capacity_gb": positive,
        "gpus_per_node": positive_integer,
        "number_of_nodes": positive_integer,
        "l2_latency_cycles": positive_integer,
        "nic_cards": positive_integer,
        "intra_comm_eff": unit_interval,
        "inter_comm_eff": unit_interval,
        "intra_bw_gbps": positive,
        "inter_bw_gbps": positive,
        "intra_latency_us": non_negative,
        "inter_latency_us": non_negative,
    }

    def __post_init__(self) -> None:
        validate(self)


# docs/model.md §9.1: facility overhead of a modern AI data centre (hyperscale fleets report 1.08-1.10,
# the Uptime Institute survey's industry average is 1.56-1.58, new large facilities 1.3 or better).
DEFAULT_PUE = 1.2
# docs/model.md §9.1: share of the dynamic power (board - idle) that streaming HBM at full bandwidth
# draws; H200 decode at saturated HBM draws up to 300 W of its 700 W board power (Ma et al. 2026).
DEFAULT_HBM_POWER_FRACTION = 0.35


@dataclass(frozen=True, kw_only=True)
class HardwareSpec:
    """One accelerator and the links around it, in SI units.

    Peak rates are dense (no sparsity) tensor-core FLOP/s per GPU; 0 means the format is not
    supported. Link bandwidths are per GPU and per direction.

    Memory capacity (docs/presets.md): ``hbm_capacity`` is the exact byte count the model uses, the
    usable capacity the device reports (nvidia-smi / rocm-smi total; the datasheet's byte count where no
    reading exists); ``hbm_capacity_marketed`` is the vendor's figure as printed ("80 GB"; vendors'
    "GB" of HBM are binary, 80 GB = 80 GiB of DRAM) and ``memory_type`` the DRAM kind ("HBM3"), both
    for display only.

    Power and cost (docs/model.md §9.1): ``board_power`` (the board/TDP limit), ``idle_power`` (an
    idle, powered-on GPU) and ``host_power_per_gpu`` (the node's non-GPU power over its GPUs) in W;
    ``pue`` (facility power over IT power) and ``hbm_power_fraction`` are dimensionless;
    ``price_per_gpu_hour`` is in $ per GPU-hour. 0 W and $0 mean "not given" (a spec without power
    or price data); every preset gives them, each with its source.
    """

    name: str
    peak_flops_bf16: float
    peak_flops_fp8: float = 0.0
    peak_flops_fp4: float = 0.0
    hbm_bandwidth: float
    hbm_capacity: float  # bytes: the usable capacity the device reports (see the class docstring)
    hbm_capacity_marketed: str = ""  # the vendor's figure, number and unit: "80 GB" (display only)
    memory_type: str = ""  # "HBM3", "GDDR6", ... (display only)
    scaleup_size: int  # GPUs in one scale-up (NVLink / xGMI) domain
    scaleup_bandwidth: float
    scaleup_latency: float = 1e-6
    scaleup_mesh: bool = False  # point-to-point full mesh (AMD Infinity Fabric) instead of a switch
    # peer-memory custom all-reduce kernels of the serving stacks (docs/model.md §10.4); efficiency 0
    # = not measured: the stacks' kernels are not modelled on this device (NCCL's algorithms only)
    custom_allreduce_latency: float = 0.0  # s: one-shot start-up alpha
    custom_allreduce_twoshot_latency: float = 0.0  # s: two-shot alpha per phase (two phases)
    custom_allreduce_efficiency: float = 0.0  # achieved fraction of scaleup_bandwidth
    scaleout_bandwidth: float
    scaleout_latency: float = 5e-6
    launch_overhead: float = 0.0  # per kernel, s
    # power and cost (docs/model.md §9.1); 0 W / $0 = not given
    board_power: float = 0.0  # W: board (TDP) power limit of one GPU
    idle_power: float = 0.0  # W: an idle, powered-on GPU (<= board_power)
    hbm_power_fraction: float = DEFAULT_HBM_POWER_FRACTION  # share of board - idle drawn by HBM at full bandwidth
    host_power_per_gpu: float = 0.0  # W: the node's non-GPU power (CPUs, NICs, switches, fans) per GPU
    pue: float = DEFAULT_PUE  # power usage effectiveness of the data centre (>= 1)
    price_per_gpu_hour: float = 0.0  # $ per GPU-hour
    efficiency: Efficiency = field(default_factory=Efficiency)  # defaults for this device (bf16 math)
    efficiency_fp8: Efficiency | None = None  # kernels with fp8 weights (None: as `efficiency`)
    efficiency_fp4: Efficiency | None = None  # kernels with fp4 weights (None: as `efficiency`)
    # kernels with block-scaled fp8 weights (format fp8_block) where measured apart (None: as efficiency_fp8)
    efficiency_fp8_block: Efficiency | None = None
    # MXFP4 weights dequantized to bf16 in the GEMM (the weight-only W4A16 path) where measured apart
    # (None: as `efficiency`, the bf16 table)
    efficiency_mxfp4_w4a16: Efficiency | None = None
    seed: SeedHardware | None = field(default=None, compare=False)
    source: str = field(default="", compare=False)

    CONSTRAINTS: ClassVar[dict[str, Any]] = {
        "peak_flops_bf16": positive,
        "peak_flops_fp8": non_negative,
        "peak_flops_fp4": non_negative,
        "hbm_bandwidth": positive,
        "hbm_capacity": positive,
        "scaleup_size": positive_integer,
        "scaleup_bandwidth": positive,
        "scaleup_latency": non_negative,
        "scaleout_bandwidth": positive,
        "scaleout_latency": non_negative,
        "launch_overhead": non_negative,
        "scaleup_mesh": boolean,
        "custom_allreduce_latency": non_negative,
        "custom_allreduce_twoshot_latency": non_negative,
        "custom_allreduce_efficiency": fraction,
        "board_power": non_negative,
        "idle_power": non_negative,
        "hbm_power_fraction": fraction,
        "host_power_per_gpu": non_negative,
        "pue": at_least_one,
        "price_per_gpu_hour": non_negative,
    }

    def __post_init__(self) -> None:
        _check_name(self)
        validate(self)
        _check_instance(self, "efficiency", Efficiency, optional=False)
        _check_instance(self, "efficiency_fp8", Efficiency, optional=True)
        _check_instance(self, "efficiency_fp4", Efficiency, optional=True)
        _check_instance(self, "efficiency_fp8_block", Efficiency, optional=True)
        _check_instance(self, "efficiency_mxfp4_w4a16", Efficiency, optional=True)
        _check_instance(self, "seed", SeedHardware, optional=True)
        _check_marketed_capacity(self)
        if self.idle_power > self.board_power:
            raise SpecError(
                f"HardwareSpec.idle_power = {self.idle_power!r} is not allowed: must be at most "
                f"board_power = {self.board_power!r} (spec {self.name!r})"
            )

    def replace(self, **changes: Any) -> HardwareSpec:
        return dataclasses.replace(self, **changes)

    def efficiency_for(self, column: str) -> Efficiency:
        """The efficiency factors of kernels computing at a peak column ('bf16', 'fp8', 'fp4'), or of
        the block-scaled fp8 kernels ('fp8_block': the fp8 table where none is given), or of the
        weight-only kernels of MXFP4 weights ('mxfp4_w4a16': the bf16 table where none is given)."""
        if column == "fp8_block" and self.efficiency_fp8_block is not None:
            return self.efficiency_fp8_block
        if column == "mxfp4_w4a16" and self.efficiency_mxfp4_w4a16 is not None:
            return self.efficiency_mxfp4_w4a16
        specific = {"fp8": self.efficiency_fp8, "fp8_block": self.efficiency_fp8, "fp4": self.efficiency_fp4}.get(
            column
        )
        return self.efficiency if specific is None else specific


_MARKETED_CAPACITY = re.compile(r"\d+(\.\d+)? (GB|GiB|TB)")


def _check_marketed_capacity(spec: HardwareSpec) -> None:
    """``hbm_capacity_marketed``: empty, or a number and a unit ("80 GB", "141 GB", "32 GiB")."""
    value = spec.hbm_capacity_marketed
    if not isinstance(value, str) or (value and not _MARKETED_CAPACITY.fullmatch(value)):
        raise SpecError(
            f"HardwareSpec.hbm_capacity_marketed = {value!r} is not allowed: must be a number, a space and "
            f"GB, GiB or TB (e.g. '80 GB'), or empty (spec {spec.name!r})"
        )
    _check_instance(spec, "memory_type", str, optional=False)


MODEL_FIELDS = numeric_fields(ModelSpec)
HARDWARE_FIELDS = numeric_fields(HardwareSpec)
