"""Saving and loading results by extension: values, coordinates and attrs survive a round trip."""

import numpy as np
import pytest
import xarray as xr

import tensorperf as tp
from tensorperf.interface import io
from tensorperf.validation import SpecError


@pytest.fixture(scope="module")
def ds():
    return tp.sweep(
        model="llama-3.1-8b",
        hardware=["h100-sxm", "b200"],
        weight_dtype=["bf16", "fp4"],
        batch=[1, 8],
        tp=[1, 2],
        hbm_bandwidth_scale=[1, 1.3],
    )


def assert_same(back: xr.Dataset, ds: xr.Dataset) -> None:
    assert set(back.variables) == set(ds.variables)
    assert back.attrs == ds.attrs
    for name in ds.variables:
        a, b = ds[name], back[name]
        assert b.dims == a.dims and b.attrs == a.attrs, name
        if a.dtype.kind == "f":
            np.testing.assert_array_equal(b.values, a.values)
        else:
            assert (b.values == a.values).all(), name


@pytest.mark.parametrize("ext", [".nc", ".zarr", ".json"])
def test_round_trip_keeps_values_coords_and_attrs(ds, tmp_path, ext):
    if ext == ".zarr":
        pytest.importorskip("zarr")
    path = tmp_path / f"out{ext}"
    io.save(ds, path)
    back = io.load(path)
    assert_same(back, ds)
    assert back.attrs["tensorperf_version"] == tp.__version__ and "h100-sxm" in back.attrs["hardware_specs"]
    assert back.ttft.attrs["units"] == "s" and back.memory_per_gpu.attrs["units"] == "bytes"
    assert list(back["hardware"].values) == ["h100-sxm", "b200"]
    io.save(ds, path)  # overwrites


def test_netcdf3_through_scipy_keeps_reserved_attr_names(tmp_path, monkeypatch):
    pytest.importorskip("scipy")
    monkeypatch.setattr(io, "netcdf_engine", lambda: "scipy")
    sens = tp.sensitivity(
        of="tpot", wrt=["memory", "hbm_bandwidth"], model="llama-3.1-8b", hardware="h100-sxm", batch=[1, 8]
    )
    assert sens.attrs["mode"] == "reverse"  # scipy's writer keeps its own 'mode' attribute
    path = tmp_path / "sens.nc"
    io.save(sens, path)
    back = io.load(path)
    assert_same(back, sens)


def test_json_is_standard_json_with_null_for_nan(ds, tmp_path):
    import json

    path = tmp_path / "out.json"
    io.save(ds, path)
    text = path.read_text()
    assert "NaN" not in text
    doc = json.loads(text)
    assert doc["data_vars"]["ttft"]["attrs"]["units"] == "s" and None in np.ravel(doc["data_vars"]["ttft"]["data"])


def test_csv_is_a_tidy_table_that_reads_back(ds, tmp_path):
    import pandas as pd

    path = tmp_path / "out.csv"
    io.save(ds, path)
    frame = pd.read_csv(path)
    assert len(frame) == ds.ttft.size and {"hardware", "batch", "tp", "ttft", "tpot"} <= set(frame.columns)
    assert "prefill_op_time" not in frame.columns  # per-op variables need .nc/.zarr/.json
    back = io.load(path)
    assert back.ttft.dims == ds.ttft.dims
    np.testing.assert_allclose(back.ttft.values, ds.ttft.values)
    assert back["model"].item() == "llama-3.1-8b"


def test_bad_extension_and_missing_file(ds, tmp_path):
    with pytest.raises(SpecError, match=r"unknown extension '\.xlsx'; allowed: \.nc, \.zarr, \.csv, \.json"):
        io.save(ds, tmp_path / "x.xlsx")
    with pytest.raises(SpecError, match="does not exist"):
        io.load(tmp_path / "missing.nc")
    (tmp_path / "junk.json").write_text("{}")
    with pytest.raises(SpecError, match="junk.json"):
        io.load(tmp_path / "junk.json")


def test_a_loaded_dataset_has_the_accessor_in_a_fresh_process(ds, tmp_path):
    # `import tensorperf` imports lazily (PEP 562): without xarray imported first, nothing registered
    # Dataset.tperf until a public name was used; load() must register it itself
    import subprocess
    import sys

    path = tmp_path / "out.json"
    io.save(ds, path)
    code = (
        "import tensorperf, tensorperf.interface.io as io\n"
        f"ds = io.load({str(path)!r})\n"
        "best = ds.tperf.best('tokens_per_s_per_gpu')\n"
        "print(float(best.tokens_per_s_per_gpu))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert float(proc.stdout) == float(ds.tokens_per_s_per_gpu.max())
