"""Unit constants and the element sizes of the number formats tensorperf knows.

Everything inside tensorperf is SI (s, B, FLOP, B/s, FLOP/s); these constants are for the edges.
"""

from __future__ import annotations

from types import MappingProxyType

MS = 1e-3  # seconds per millisecond

# Bytes per element of each storage format. fp4 (NVFP4/MXFP4) packs two values per byte; the
# block scales (one 8-bit scale per 16 or 32 values) are ignored at this level of detail.
DTYPE_BYTES = MappingProxyType({"fp32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0, "fp4": 0.5})

# Which peak-rate column of a hardware spec a weight format computes at (weight-only int8 runs
# its math at fp8/int8 tensor-core rate on hardware that has one).
MATH_COLUMN = MappingProxyType(
    {"fp32": "bf16", "bf16": "bf16", "fp16": "bf16", "fp8": "fp8", "int8": "fp8", "fp4": "fp4"}
)
