"""Hardware presets: every preset loads, cites its sources, and carries the published numbers.

Published figures are dense (no sparsity) and in SI units; link bandwidths are per GPU per
direction. Sources for each number are in the preset's [sources] table; the ones checked here are
repeated next to the assertion. Peaks that vendors round (989.4 vs 2 x 989.43) are matched to 1e-4.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tensorperf.catalog.presets import hardware, hardware_spec
from tensorperf.catalog.specs import HARDWARE_FIELDS

PRESET_IDS = (
    "a100-sxm-80g",
    "h100-sxm",
    "h200-sxm",
    "h800",
    "b200",
    "gb200",
    "b300",
    "gb300",
    "mi300x",
    "mi325x",
    "mi355x",
)
HOPPER = ("h100-sxm", "h200-sxm", "h800")
BLACKWELL = ("b200", "gb200", "b300", "gb300")
CDNA3 = ("mi300x", "mi325x")
HARDWARE_DIR = Path(__file__).resolve().parents[1] / "tensorperf" / "catalog" / "presets" / "hardware"


def _raw(preset_id: str) -> dict:
    with open(HARDWARE_DIR / f"{preset_id}.toml", "rb") as f:
        return tomllib.load(f)


@pytest.mark.parametrize("preset_id", PRESET_IDS)
def test_preset_loads(preset_id: str) -> None:
    spec = hardware_spec(preset_id)
    assert spec.name == preset_id
    assert preset_id in hardware()
    assert spec.source
    for name in ("compute", "attention", "memory", "scaleup", "scaleout"):
        assert 0.0 < getattr(spec.efficiency, name) <= 1.0


@pytest.mark.parametrize("preset_id", PRESET_IDS)
def test_every_number_has_a_source(preset_id: str) -> None:
    raw = _raw(preset_id)
    assert raw["id"] == preset_id
    assert raw["display_name"] and raw["notes"]
    sources = raw["sources"]
    for name in set(raw) & set(HARDWARE_FIELDS):
        assert sources.get(name), f"{preset_id}: no [sources] entry for {name}"
    for name in raw.get("efficiency", {}):
        assert sources.get(f"efficiency.{name}"), f"{preset_id}: no [sources] entry for efficiency.{name}"


# ---- published facts ---------------------------------------------------------------------------


def test_h100_published() -> None:
    h100 = hardware_spec("h100-sxm")
    # NVIDIA H100 SXM: 989.4 TFLOP/s dense BF16 (datasheet gives 1,979 with sparsity), HBM3 3.35 TB/s
    # (shared/data/hardware_specs.csv; glennklockwood.com/garden/processors/h100; docs/model.md §6).
    assert h100.peak_flops_bf16 == pytest.approx(989.4e12, rel=1e-4)
    assert h100.hbm_bandwidth == pytest.approx(3.35e12)
    # NVLink4 900 GB/s bidirectional = 450 GB/s per direction (hardware_specs.csv).
    assert h100.scaleup_bandwidth == pytest.approx(450e9)
    assert h100.scaleup_size == 8


def test_h200_published() -> None:
    # NVIDIA H200 SXM: HBM3e 4.8 TB/s (hardware_specs.csv; docs/model.md §6); same compute as H100.
    h200 = hardware_spec("h200-sxm")
    assert h200.hbm_bandwidth == pytest.approx(4.8e12)
    assert h200.peak_flops_bf16 == hardware_spec("h100-sxm").peak_flops_bf16


def test_h800_is_h100_with_cut_nvlink() -> None:
    # H800: H100 compute and HBM; NVLink 400 GB/s bidirectional = 200e9 per direction
    # (ai-dynamo/aiconfigurator systems/h800_sxm.yaml).
    h800, h100 = hardware_spec("h800"), hardware_spec("h100-sxm")
    assert h800.peak_flops_bf16 == h100.peak_flops_bf16
    assert h800.hbm_bandwidth == h100.hbm_bandwidth
    assert h800.scaleup_bandwidth == pytest.approx(200e9)


def test_b200_published() -> None:
    # NVIDIA HGX B200: 9 PFLOP/s dense FP4, 2.25 PFLOP/s dense BF16 (hardware_specs.csv, glennklockwood
    # B200 HGX 1000 W table); NVLink5 1.8 TB/s bidirectional = 900 GB/s per direction.
    b200 = hardware_spec("b200")
    assert b200.peak_flops_fp4 == pytest.approx(9e15)
    assert b200.peak_flops_bf16 == pytest.approx(2.25e15)
    assert b200.scaleup_bandwidth == pytest.approx(900e9)


def test_mi300x_published() -> None:
    # AMD MI300X: 1307.4 TFLOP/s dense BF16 (304 CUs x 2048 FLOP/clk x 2.1 GHz), HBM3 5.3 TB/s
    # (hardware_specs.csv; docs/model.md §6); 7 xGMI links x 64 GB/s per direction (docs/model.md §6).
    mi300x = hardware_spec("mi300x")
    assert mi300x.peak_flops_bf16 == pytest.approx(1307.4e12, rel=1e-4)
    assert mi300x.hbm_bandwidth == pytest.approx(5.3e12)
    assert mi300x.scaleup_bandwidth == pytest.approx(7 * 64e9)
    assert mi300x.peak_flops_fp4 == 0


def test_mi355x_bf16() -> None:
    # AMD publishes 2.5 PFLOP/s dense FP16/BF16 for MI355X (formula 2.4 GHz x 1024 x 1024 = 2516.6e12,
    # stas00/ml-engineering compute/accelerator/README.md).
    assert hardware_spec("mi355x").peak_flops_bf16 == pytest.approx(2.5e15, rel=0.01)


@pytest.mark.parametrize("preset_id", ("gb200", "gb300"))
def test_nvl72_domain(preset_id: str) -> None:
    # GB200/GB300 NVL72: one NVLink5 domain of 72 GPUs (hardware_specs.csv scaleup_domain_gpus 72).
    assert hardware_spec(preset_id).scaleup_size == 72


@pytest.mark.parametrize("preset_id", tuple(p for p in PRESET_IDS if p not in ("gb200", "gb300")))
def test_eight_gpu_domain(preset_id: str) -> None:
    # HGX/DGX baseboards and AMD UBB: 8 GPUs per NVLink/xGMI domain.
    assert hardware_spec(preset_id).scaleup_size == 8


def test_a100_has_no_fp8() -> None:
    # Ampere has no FP8 (or FP4) tensor cores (hardware_specs.csv: 'no FP8').
    a100 = hardware_spec("a100-sxm-80g")
    assert a100.peak_flops_fp8 == 0
    assert a100.peak_flops_fp4 == 0
    assert a100.peak_flops_bf16 == pytest.approx(312e12)


@pytest.mark.parametrize("preset_id", HOPPER + CDNA3)
def test_no_fp4_before_blackwell_and_cdna4(preset_id: str) -> None:
    assert hardware_spec(preset_id).peak_flops_fp4 == 0


@pytest.mark.parametrize("preset_id", BLACKWELL + ("mi355x",))
def test_fp4_on_blackwell_and_cdna4(preset_id: str) -> None:
    spec = hardware_spec(preset_id)
    assert spec.peak_flops_fp4 >= 4 * spec.peak_flops_bf16


@pytest.mark.parametrize("preset_id", HOPPER + BLACKWELL + CDNA3 + ("mi355x",))
def test_fp8_is_twice_bf16(preset_id: str) -> None:
    # Hopper, Blackwell, CDNA3 and CDNA4 tensor/matrix cores run dense FP8 at exactly 2x dense BF16.
    spec = hardware_spec(preset_id)
    assert spec.peak_flops_fp8 > 0
    assert spec.peak_flops_fp8 == pytest.approx(2 * spec.peak_flops_bf16, rel=1e-12)


@pytest.mark.parametrize("preset_id", PRESET_IDS)
def test_usable_capacity_is_close_to_marketing(preset_id: str) -> None:
    # Capacities are the usable figure a device reports (docs/model.md §8.20), within 10 % of the
    # marketing number for every part (e.g. H100 81,559 MiB vs 80 GB, H200 143,771 MiB vs 141 GB).
    marketing = {
        "a100-sxm-80g": 80e9,
        "h100-sxm": 80e9,
        "h200-sxm": 141e9,
        "h800": 80e9,
        "b200": 180e9,
        "gb200": 192e9,
        "b300": 288e9,
        "gb300": 288e9,
        "mi300x": 192e9,
        "mi325x": 256e9,
        "mi355x": 288e9,
    }[preset_id]
    assert hardware_spec(preset_id).hbm_capacity == pytest.approx(marketing, rel=0.10)


def test_h200_usable_capacity() -> None:
    # docs/model.md §8.20: an H200 reports 143,771 MiB.
    assert hardware_spec("h200-sxm").hbm_capacity == 143_771 * 2**20
