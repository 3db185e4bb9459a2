"""Spec files: a TOML hardware/model file works in sweep like a preset; malformed files name file and key."""

import numpy as np
import pytest

import tensorperf as tp
from tensorperf.catalog.presets import load_hardware_file, load_model_file

GOOD_HW = """
id = "my-gpu"
peak_flops_bf16 = 1.0e15
peak_flops_fp8 = 2.0e15
hbm_bandwidth = 5.0e12
hbm_capacity = 1.0e11
scaleup_size = 8
scaleup_bandwidth = 4.5e11
scaleout_bandwidth = 5.0e10
[efficiency]
memory = 0.75
[sources]
all = "made up for a test"
"""


def test_hardware_toml_in_sweep_equals_spec_object(tmp_path):
    path = tmp_path / "my-gpu.toml"
    path.write_text(GOOD_HW)
    spec = load_hardware_file(path)
    assert spec.name == "my-gpu" and spec.efficiency.memory == 0.75
    a = tp.sweep(model="llama-3.1-8b", hardware=str(path), batch=[1, 16])
    b = tp.sweep(model="llama-3.1-8b", hardware=spec, batch=[1, 16])
    np.testing.assert_array_equal(a.tpot.values, b.tpot.values)
    assert a.hardware.item() == "my-gpu"


def test_model_toml_roundtrip(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(
        'id = "tiny"\nnum_layers = 2\nd_model = 64\nnum_heads = 4\nnum_kv_heads = 2\n'
        "head_dim = 16\nvocab_size = 1000\nd_ff = 128\n"
    )
    m = load_model_file(path)
    # attention 64·64 + 2·64·32 + 64·64 = 12,288; MLP 3·64·128 = 24,576; norms 128 -> 36,992 per layer;
    # x2 + embedding 64,000 + LM head 64,000 + final norm 64 = 202,048
    assert m.num_params == 202_048
    ds = tp.sweep(model=str(path), hardware="h100-sxm")
    assert bool(ds.feasible)


@pytest.mark.parametrize(
    "text, match",
    [
        (GOOD_HW.replace("hbm_bandwidth", "hbm_bandwith"), r"my-gpu.toml: unknown key 'hbm_bandwith'"),
        (
            GOOD_HW.replace("hbm_bandwidth = 5.0e12", "hbm_bandwidth = -5.0"),
            r"my-gpu.toml: HardwareSpec.hbm_bandwidth = -5.0 is not allowed: must be a finite number > 0",
        ),
        (GOOD_HW.replace("hbm_capacity = 1.0e11\n", ""), r"my-gpu.toml: .*hbm_capacity"),
        (GOOD_HW.replace("memory = 0.75", "memory = 2"), r"my-gpu.toml: \[efficiency\]: Efficiency.memory = 2"),
        (GOOD_HW.replace("scaleup_size = 8", "scaleup_size = 8.5"), r"HardwareSpec.scaleup_size = 8.5"),
        (GOOD_HW + "\n[[broken", r"my-gpu.toml: not valid TOML"),
        (
            GOOD_HW.replace("scaleup_size = 8", 'hbm_capacity_marketed = "100GB"\nscaleup_size = 8'),
            r"my-gpu.toml: HardwareSpec.hbm_capacity_marketed = '100GB' is not allowed: must be a number, a space",
        ),
    ],
)
def test_malformed_hardware_file(tmp_path, text, match):
    path = tmp_path / "my-gpu.toml"
    path.write_text(text)
    with pytest.raises(tp.SpecError, match=match):
        load_hardware_file(path)


def test_missing_file_is_a_spec_error(tmp_path):
    with pytest.raises(tp.SpecError, match="cannot read"):
        load_model_file(tmp_path / "nope.toml")


def test_marketed_capacity_keys(tmp_path):
    # hbm_capacity is the exact byte count the model uses; hbm_capacity_marketed and memory_type are display only
    path = tmp_path / "my-gpu.toml"
    path.write_text(
        GOOD_HW.replace("scaleup_size = 8", 'hbm_capacity_marketed = "96 GB"\nmemory_type = "HBM3"\nscaleup_size = 8')
    )
    spec = load_hardware_file(path)
    assert (spec.hbm_capacity, spec.hbm_capacity_marketed, spec.memory_type) == (1.0e11, "96 GB", "HBM3")
    plain = tmp_path / "plain" / "my-gpu.toml"
    plain.parent.mkdir()
    plain.write_text(GOOD_HW)
    a = tp.sweep(model="llama-3.1-8b", hardware=str(path), batch=[1, 16])
    b = tp.sweep(model="llama-3.1-8b", hardware=str(plain), batch=[1, 16])
    np.testing.assert_array_equal(a.tpot.values, b.tpot.values)  # the display fields change no number
