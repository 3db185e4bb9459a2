"""The weight format of each tensor group and the GEMM kernel paths that can run it (docs/model.md §3.13).

A recipe (:class:`~tensorperf.catalog.specs.RecipeSpec`) gives each tensor group (attention, MLP,
routed experts, embeddings) a weight format; a group it leaves open follows ``weight_dtype``. A
group's GEMMs can run on these paths:

- native: weights and activations in the format's own math (W16A16 bf16, W8A8 fp8/int8, W4A4
  fp4/mxfp4/nvfp4) where the hardware has that peak: the kernel table of that column;
- weight-only (W8A16, W4A16): the weights dequantized to bf16 in the GEMM's main loop (Marlin,
  Machete, TensorRT-LLM's weight-only GEMMs), bf16 math, where the stack has such a kernel for the
  format and the hardware has no native math for it (vLLM and SGLang pick their Marlin kernels by
  device capability, not per shape: vllm/model_executor/layers/quantization/fp8.py, mxfp4.py). No
  weight-only kernel is in the project's kernel measurements: its factors are the bf16 GEMM's,
  the neighbouring measured path (Marlin streams 4-bit weights at close to the bandwidth of an
  fp16 GEMV: "near-ideal 4x speedup up to batch sizes of 16-32", IST-DASLab/marlin README), and it
  streams its weights once per DEQUANT_TILE_ROWS rows (the weight re-reads of a kernel that tiles
  tokens: ceil(m / 64) passes);
  Block-scaled fp8 weights (``fp8_block``) run the device's ``fp8_block`` table where it has one
  (their GEMM runs with a per-token-group activation quantization kernel, a fixed cost per GEMM
  that static per-tensor fp8 does not pay: docs/model.md §3.7.1);
- W4A8: 4-bit weights with fp8 activations and fp8 math where the stack has it and the hardware
  has fp8 math (TensorRT-LLM W4A8 AWQ on Hopper, MXFP4 x FP8 MoE on Blackwell): the fp8 table.

The runtime runs the fastest available path: t = min over available paths of the roofline time.
With one format for every group and no path beyond the native one (the ``uniform`` recipe on a
stack that offers none) nothing here is built and the engine runs as before, bit for bit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import torch

from tensorperf.catalog.specs import Efficiency, RecipeSpec
from tensorperf.engine.grid import Grid
from tensorperf.units import DTYPE_BYTES, FOUR_BIT_FORMATS, MATH_COLUMN

GROUPS = RecipeSpec.GROUPS
# The group whose format each weight-reading op streams (the router's small gate counts with attention)
OP_GROUP = MappingProxyType(
    {
        "embed": "embeddings",
        "qkv": "attention",
        "out_proj": "attention",
        "router": "attention",
        "mlp": "mlp",
        "shared_experts": "mlp",
        "experts": "experts",
        "lm_head": "embeddings",
    }
)
GEMM_OPS = frozenset({"qkv", "out_proj", "mlp", "experts", "shared_experts", "lm_head"})

FORMATS = tuple(DTYPE_BYTES)
_COLUMN_CODE = {"bf16": 0, "fp8": 1, "fp4": 2, "none": 3}  # 3: no native math (the bf16 table, unavailable)


@dataclass(frozen=True)
class KernelPath:
    """One way to run a group's GEMMs at each point: its peak and kernel factors (named as
    Efficiency's), and where it is available."""

    peak: torch.Tensor
    compute: torch.Tensor
    gemm_half_tokens: torch.Tensor
    expert_compute: torch.Tensor
    expert_half_tokens: torch.Tensor
    gemm_memory: torch.Tensor
    gemm_latency: torch.Tensor
    expert_latency: torch.Tensor
    available: torch.Tensor
    reread_rows: float | None = None  # rows per pass over the weights (None: the weights stream once)


@dataclass(frozen=True)
class Kernels:
    """Per tensor group: bytes per weight and its GEMM paths (the native one first)."""

    bytes: Mapping[str, torch.Tensor]
    paths: Mapping[str, tuple[KernelPath, ...]]


def _block_scaled(grid: Grid) -> bool:
    """Whether some point has block-scaled fp8 weights on a device with its own fp8_block table."""
    formats = set(grid.values["weight_dtype"]) | {getattr(r, g) for r in grid.values["recipe"] for g in GROUPS}
    return "fp8_block" in formats and any(h.efficiency_fp8_block is not None for h in grid.values["hardware"])


def _mxfp4_measured(grid: Grid) -> bool:
    """Whether some point has MXFP4 weights on a device with its own weight-only MXFP4 table."""
    formats = set(grid.values["weight_dtype"]) | {getattr(r, g) for r in grid.values["recipe"] for g in GROUPS}
    return "mxfp4" in formats and any(h.efficiency_mxfp4_w4a16 is not None for h in grid.values["hardware"])


def _extra_paths_offered(grid: Grid) -> tuple[bool, bool]:
    """(weight-only, W4A8): whether some stack of the grid offers the path for some format."""
    stacks = grid.values["stack"]
    return any(s.weight_only_formats for s in stacks), any(s.w4a8_formats for s in stacks)


def needed(grid: Grid) -> bool:
    """Whether any point has a group in another format than weight_dtype or a path beyond the native one."""
    return not all(r.uniform for r in grid.values["recipe"]) or any(_extra_paths_offered(grid)) or _block_scaled(grid)


def _codes(grid: Grid) -> dict[str, torch.Tensor]:
    """Each group's format (an index into FORMATS) at each point: the recipe's, else weight_dtype's."""
    index = {f: i for i, f in enumerate(FORMATS)}
    own = grid.lookup("weight_dtype", index, torch.int64)
    out = {}
    for g in GROUPS:
        given = grid.place("recipe", [index[getattr(r, g)] if getattr(r, g) else -1 for r in grid.values["recipe"]])
        given = given.to(torch.int64)
        out[g] = torch.where(given >= 0, given, own)
    return out


def _offers(grid: Grid, code: torch.Tensor, field: str) -> torch.Tensor:
    """Whether each point's stack lists the point's format in its ``field`` (a format list)."""
    stacks = grid.values["stack"]
    out = torch.zeros((), dtype=torch.bool, device=grid.device)
    for i, f in enumerate(FORMATS):
        listed = [f in getattr(s, field) for s in stacks]
        if any(listed):
            out = out | ((code == i) & grid.place("stack", listed, torch.bool))
    return out


def _mixed(
    tables: Sequence[Efficiency], column: torch.Tensor, name: str, block: Any = None, mxfp4: Any = None
) -> torch.Tensor:
    """A kernel factor from the bf16 / fp8 / fp4 table of each point's column (3: bf16's); where
    ``block`` holds (block-scaled fp8 weights), the fp8_block table instead of the fp8 one; where
    ``mxfp4`` holds (MXFP4 weights on the weight-only path), the mxfp4_w4a16 table instead of bf16's."""
    bf16, fp8, fp4, fp8_block, mxfp4_w4a16 = (getattr(t, name) for t in tables)
    if block is not None:
        fp8 = torch.where(block, fp8_block, fp8)
    if mxfp4 is not None:
        bf16 = torch.where(mxfp4, mxfp4_w4a16, bf16)
    return torch.where(column == 1, fp8, torch.where(column == 2, fp4, bf16))


# Rows of activations one pass of a dequantizing kernel over the weights serves: Marlin slices M into
# problems of at most max_m_blocks = 4 blocks of 16 rows, each of which streams (and dequantizes) the
# whole weight matrix again (vllm csrc/quantization/gptq_marlin/gptq_marlin.cu, marlin_mm main loop).
DEQUANT_TILE_ROWS = 64.0


def _path(
    tables: Sequence[Efficiency],
    column: torch.Tensor,
    peak: torch.Tensor,
    available: Any,
    reread_rows: float | None = None,
    block: Any = None,
    mxfp4: Any = None,
    moe_column: torch.Tensor | None = None,
) -> KernelPath:
    """``moe_column``: the table whose fused-MoE fixed time (expert_latency) the path pays, where it
    is not ``column``'s."""

    def factor(name: str) -> torch.Tensor:
        return _mixed(tables, column, name, block, mxfp4)

    return KernelPath(
        peak=peak,
        compute=factor("compute"),
        gemm_half_tokens=factor("gemm_half_tokens"),
        expert_compute=factor("expert_compute"),
        expert_half_tokens=factor("expert_half_tokens"),
        gemm_memory=factor("gemm_memory"),
        gemm_latency=factor("gemm_latency"),
        expert_latency=factor("expert_latency")
        if moe_column is None
        else _mixed(tables, moe_column, "expert_latency", block, mxfp4),
        available=available,
        reread_rows=reread_rows,
    )


def kernels(grid: Grid, hardware: Any, tables: Sequence[Efficiency], dtype: torch.dtype) -> Kernels:
    """Bytes per weight and the GEMM paths of every group. ``tables``: each hardware's bf16, fp8,
    fp4, block-scaled fp8 and weight-only MXFP4 kernel factors (factors.KERNEL_TABLES) with the
    caller's overrides applied.

    A stack's ``no_native_formats`` take away a format's native path although the hardware has its
    math (TensorRT-LLM runs MXFP4 experts W4A8 on Blackwell, not W4A4). The W4A8 path of a 4-bit
    float format (fp4, mxfp4, nvfp4) needs fp4 tensor cores, whose MMA takes fp8 x fp4 operands
    (Blackwell's kind::f8f6f4); Hopper has none, so TensorRT-LLM runs MXFP4 weights W4A16 there
    (tensorrt_llm/_torch/model_config.py get_mxfp4_quant_algo: W4A8_MXFP4_MXFP8 or W4A8_MXFP4_FP8
    at SM >= 100, else W4A16_MXFP4). int4 (W4A8 AWQ) needs fp8 math only."""
    hw = hardware
    size = torch.tensor([DTYPE_BYTES[f] for f in FORMATS], dtype=dtype, device=grid.device)
    column_of = torch.tensor([_COLUMN_CODE[MATH_COLUMN[f]] for f in FORMATS], device=grid.device)
    four_bit = torch.tensor([f in FOUR_BIT_FORMATS for f in FORMATS], device=grid.device)
    float_four_bit = torch.tensor([f in FOUR_BIT_FORMATS and f != "int4" for f in FORMATS], device=grid.device)
    weight_only, w4a8 = _extra_paths_offered(grid)
    withheld = any(s.no_native_formats for s in grid.values["stack"])
    peaks = (hw.peak_flops_bf16, hw.peak_flops_fp8, hw.peak_flops_fp4)
    has_fp8, has_fp4 = hw.peak_flops_fp8 > 0, hw.peak_flops_fp4 > 0
    block_code = FORMATS.index("fp8_block") if _block_scaled(grid) else None
    mxfp4_code = FORMATS.index("mxfp4") if _mxfp4_measured(grid) else None
    paths, nbytes = {}, {}
    for g, code in _codes(grid).items():
        column = column_of[code]
        peak = torch.where(column == 1, peaks[1], torch.where(column == 2, peaks[2], peaks[0]))
        native = (peak > 0) & (column < 3)
        if withheld:
            native = native & ~_offers(grid, code, "no_native_formats")
        block = None if block_code is None else code == block_code
        group = [_path(tables, column, torch.where((peak > 0) & (column < 3), peak, peaks[0]), native, block=block)]
        if weight_only:  # bf16 math on dequantized weights, where the format has no native math here
            offered = _offers(grid, code, "weight_only_formats") & ~native
            mxfp4 = None if mxfp4_code is None else code == mxfp4_code
            group.append(_path(tables, torch.zeros_like(column), peaks[0], offered, DEQUANT_TILE_ROWS, mxfp4=mxfp4))
        if w4a8:  # fp8 math on 4-bit weights (fp8 x fp4 operands: fp4 tensor cores)
            mma = torch.where(float_four_bit[code], has_fp4, has_fp8)
            offered = _offers(grid, code, "w4a8_formats") & four_bit[code] & mma
            # a 4-bit float format's W4A8 MoE is the fp4 kernels' family (TensorRT-LLM-Gen's
            # mxe4m3 x mxe2m1 block-scale MoE beside its nvfp4 one): the fp4 table's fixed time
            moe = torch.where(float_four_bit[code], 2, 1)
            fp8_math = torch.ones_like(column)
            group.append(_path(tables, fp8_math, torch.where(has_fp8, peaks[1], peaks[0]), offered, moe_column=moe))
        paths[g], nbytes[g] = tuple(group), size[code]
    return Kernels(bytes=MappingProxyType(nbytes), paths=MappingProxyType(paths))


def supported(k: Kernels, model: Any) -> torch.Tensor:
    """Some path runs every group the model has: attention and embeddings always, the MLP group
    where the model has dense layers or shared experts, the experts group where it has experts."""
    some = {g: _any(p.available for p in paths) for g, paths in k.paths.items()}
    mlp_used = (model.num_layers - model.num_moe_layers > 0) | (model.num_shared_experts > 0)
    experts_used = model.num_experts > 0
    return some["attention"] & some["embeddings"] & (some["mlp"] | ~mlp_used) & (some["experts"] | ~experts_used)


def _any(flags: Any) -> torch.Tensor:
    out = None
    for f in flags:
        out = f if out is None else out | f
    return out
