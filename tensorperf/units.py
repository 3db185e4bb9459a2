"""Unit constants and the element sizes of the number formats tensorperf knows.

Everything inside tensorperf is SI (s, B, FLOP, B/s, FLOP/s); these constants are for the edges.
"""

from __future__ import annotations

from types import MappingProxyType

MS = 1e-3  # seconds per millisecond

# Bytes per element of each storage format, scales included where the format carries them
# (docs/model.md §3.13). "fp4" is the seed's idealised 4-bit format (scales ignored, 0.5 B);
# the named 4-bit formats count their block scales:
#   fp8_block: one fp32 scale per 128x128 block (DeepSeek-V3 report, section 3.3.2): 1 + 4/16384 B
#   int4: GPTQ/AWQ, one fp16 scale per group of 128 (GPTQ paper §4, AutoAWQ q_group_size=128): (4 + 16/128)/8
#   mxfp4: OCP Microscaling spec v1.0: one E8M0 (8-bit) scale per 32 values: (4 + 8/32)/8 = 4.25 bits
#   nvfp4: one E4M3 scale per 16 values (NVIDIA Blackwell NVFP4; the per-tensor fp32 scale is
#          negligible): (4 + 8/16)/8 = 4.5 bits
DTYPE_BYTES = MappingProxyType(
    {
        "fp32": 4.0,
        "bf16": 2.0,
        "fp16": 2.0,
        "fp8": 1.0,
        "fp8_block": 1.0 + 4.0 / (128 * 128),
        "int8": 1.0,
        "fp4": 0.5,
        "int4": (4 + 16 / 128) / 8,
        "mxfp4": (4 + 8 / 32) / 8,
        "nvfp4": (4 + 8 / 16) / 8,
    }
)

# Which peak-rate column of a hardware spec a weight format's native GEMM path computes at (weights
# and activations in the format: W16A16, W8A8, W4A4). int8 runs at the int8/fp8 tensor-core rate on
# hardware that has one; int4 has no native path on any preset (its GEMMs run weight-only, W4A16/W4A8:
# docs/model.md §3.13), "none" marks it.
MATH_COLUMN = MappingProxyType(
    {
        "fp32": "bf16",
        "bf16": "bf16",
        "fp16": "bf16",
        "fp8": "fp8",
        "fp8_block": "fp8",
        "int8": "fp8",
        "fp4": "fp4",
        "int4": "none",
        "mxfp4": "fp4",
        "nvfp4": "fp4",
    }
)

# Weight formats stored in fewer bytes than bf16: the ones a weight-only (dequantizing) kernel can read
QUANTIZED_FORMATS = tuple(name for name, size in DTYPE_BYTES.items() if size < 2.0)
FOUR_BIT_FORMATS = tuple(name for name, size in DTYPE_BYTES.items() if size < 1.0)
