"""The command line, called in-process (main([...])) and once as the installed script."""

import io
import shutil
import subprocess

import pytest
import xarray as xr

from tensorperf.cli import main


def run(argv):
    out = io.StringIO()
    code = main(argv, out=out)
    return code, out.getvalue()


def test_default_sweep_prints_best_layouts():
    code, text = run([])
    assert code == 0
    assert "gpt-moe-1.8t on 64 GPUs" in text
    for floor in ("10", "20"):
        assert f">= {floor} tokens/s per user" in text
    header = next(line for line in text.splitlines() if line.startswith("hardware"))
    assert header.split() == ["hardware", "dtype", "prompt", "tp", "pp", "dp", "ep", "batch", "tok/s/GPU",
                              "tok/s/user", "TTFT", "s", "mem/GPU", "GB"]
    # h100 has no fp4 math: that row has no layout
    assert any(line.startswith("h100-sxm") and " fp4 " in line and line.rstrip().endswith("-")
               for line in text.splitlines())


def test_presets_lists_ids_with_key_numbers():
    code, text = run(["presets"])
    assert code == 0
    assert "llama-3.1-70b" in text and "70.55" in text  # 70,553,706,496 parameters
    assert "h100-sxm" in text and "989.4" in text


def test_sweep_flags_and_output(tmp_path):
    path = tmp_path / "out.nc"
    code, text = run(["sweep", "--model", "llama-3.1-8b", "--hardware", "h100-sxm,b200", "--batch", "1,8",
                      "--prompt-len", "1024", "-o", str(path)])
    assert code == 0 and f"wrote {path}" in text
    ds = xr.open_dataset(path)
    assert ds.ttft.dims == ("hardware", "batch") and ds.ttft.attrs["units"] == "s"


@pytest.mark.parametrize("argv, needle", [
    (["sweep", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--batch", "x"], "--batch"),
    (["sweep", "--model", "nope", "--hardware", "h100-sxm"], "unknown model preset 'nope'"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_input_is_one_line_exit_2(argv, needle, capsys):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2
    assert needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_installed_script_runs():
    exe = shutil.which("tensorperf")
    if exe is None:
        pytest.skip("tensorperf is not installed on PATH (pip install .)")
    proc = subprocess.run([exe, "presets"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "deepseek-v3" in proc.stdout
