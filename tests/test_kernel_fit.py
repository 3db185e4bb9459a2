"""Size-dependent efficiency curves fitted to measured kernels (data/kernel_measurements.csv)."""

from pathlib import Path

import pytest
import torch

from tensorperf.analysis.kernel_fit import fit_kernels, fits_table, load_kernels
from tensorperf.engine.physics.roofline import saturation
from tensorperf.validation import SpecError

DATA = Path(__file__).resolve().parents[1] / "data" / "kernel_measurements.csv"


@pytest.fixture(scope="module")
def fits():
    frame = load_kernels(DATA)
    keep = ((frame.gpu == "h100_sxm") & (frame.op == "gemm") & (frame.dtype == "bfloat16")) | (
        (frame.gpu == "h200_sxm") & frame.op.isin(["moe_experts", "nccl_all_reduce"])
    )
    return fits_table(fit_kernels(frame[keep], steps=600)).set_index(["kind", "gpu", "dtype"])


def test_gemm_curve_fits_h100_bf16(fits):
    row = fits.loc[("gemm", "h100-sxm", "bfloat16")]
    # measured: 8192^3 at 79% of 989 TFLOP/s, m = 1..16 at ~79% of HBM bandwidth
    assert 0.75 < row.compute < 0.86 and 0.7 < row.memory < 0.9
    assert row.median_abs_error < 0.05 and row.max_abs_error < 0.15


def test_grouped_expert_gemms_saturate_with_tokens_per_expert(fits):
    row = fits.loc[("moe_experts", "h200-sxm", "fp8_block")]
    # DeepSeek-V3 / Qwen3 expert GEMMs: 64 tokens run at ~1% of peak, 8192 tokens at ~28%
    assert 10 < row.expert_half_tokens < 1000
    assert row.median_abs_error < 0.15


def test_all_reduce_bandwidth_rises_with_message_size(fits):
    row = fits.loc[("nccl_all_reduce", "h200-sxm", "bfloat16(half)")]
    # 8-GPU NVLink all-reduce: 256 MiB at ~99% of bus bandwidth, 1 MiB far below
    assert 0.7 < row.scaleup <= 1.0 and row.comm_half_bytes > 2**14
    assert row.median_abs_error < 0.25


def test_saturation_is_exactly_one_when_off_and_one_half_at_half():
    m = torch.tensor([1.0, 64.0, 4096.0], dtype=torch.float64)
    assert torch.equal(saturation(m, torch.tensor(0.0, dtype=torch.float64)), torch.ones(3, dtype=torch.float64))
    assert float(saturation(torch.tensor(64.0), torch.tensor(64.0))) == 0.5
    assert float(saturation(torch.tensor(0.0), torch.tensor(0.0))) == 1.0  # no work: no 0/0


def test_bad_kernel_file(tmp_path):
    bad = tmp_path / "k.csv"
    bad.write_text("gpu,op\nh100_sxm,gemm\n")
    with pytest.raises(SpecError, match="column 'dtype' is missing"):
        load_kernels(bad)
