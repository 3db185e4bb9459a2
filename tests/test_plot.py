"""Each plot kind writes a non-empty figure from results read back from disk."""

import pytest
import xarray as xr

import tensorperf as tp
from tensorperf.interface import io
from tensorperf.interface import plot as tplot
from tensorperf.interface.cli import main
from tensorperf.validation import SpecError

pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plots")
    ds = tp.sweep(model="llama-3.1-8b", hardware=["h100-sxm", "b200"], batch=[1, 8, 64], tp=[1, 2], pp=[1, 2])
    io.save(ds, folder / "sweep.nc")
    sens = tp.sensitivity(
        of="tpot", wrt=["memory", "compute", "hbm_bandwidth"], model="llama-3.1-8b", hardware="h100-sxm", batch=[1, 64]
    )
    io.save(sens, folder / "sens.nc")
    return folder


@pytest.mark.parametrize(
    "kind, source, extra",
    [
        ("pareto", "sweep.nc", []),
        ("breakdown", "sweep.nc", ["--sel", "batch=8", "--sel", "tp=2", "--sel", "pp=1"]),
        ("memory", "sweep.nc", ["--sel", "batch=8"]),
        ("sensitivity", "sens.nc", []),
    ],
)
@pytest.mark.parametrize("ext", [".png", ".svg"])
def test_each_kind_writes_a_figure(results, kind, source, extra, ext, capsys):
    out = results / f"{kind}{ext}"
    code = main(["plot", kind, str(results / source), "-o", str(out), *extra])
    assert code == 0, capsys.readouterr().err
    assert out.stat().st_size > 1000
    if ext == ".svg":
        assert out.read_text().lstrip().startswith(("<?xml", "<svg"))


def test_plot_functions_take_a_dataset(results):
    ds = io.load(results / "sweep.nc")
    assert tplot.pareto(ds, results / "p.png").stat().st_size > 0
    assert tplot.breakdown(ds.sel(pp=1), results / "b.png").stat().st_size > 0  # 12 bars
    with pytest.raises(SpecError, match="hardware, batch vary; select with --sel"):
        tplot.memory(ds, results / "m.png")
    with pytest.raises(SpecError, match="more than 24; select fewer with --sel"):
        tplot.breakdown(xr.concat([ds, ds.assign_coords(model="x")], "model"), results / "b.png")
    with pytest.raises(SpecError, match="needs the variable 'elasticity'"):
        tplot.sensitivity(ds, results / "s.png")
    with pytest.raises(SpecError, match=r"allowed: \.png, \.svg, \.pdf"):
        tplot.memory(ds, results / "m.jpg")


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["plot", "bars", "x.nc", "-o", "x.png"], "invalid choice: 'bars'"),
        (["plot", "pareto", "RESULTS.nc", "-o", "x.gif"], "allowed: .png, .svg, .pdf"),
        (["plot", "memory", "RESULTS.nc", "-o", "x.png", "--sel", "hardware=h300"], "no such label"),
    ],
)
def test_bad_plot_input_is_one_line_exit_2(results, argv, needle, capsys):
    argv = [a.replace("RESULTS.nc", str(results / "sweep.nc")) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_plot_runs_a_sweep_file(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text('[sweep]\nmodel = "llama-3.1-8b"\nhardware = ["h100-sxm", "b200"]\nbatch = [1, 8]\ntp = [1, 2]\n')
    out = tmp_path / "p.svg"
    assert main(["plot", "pareto", str(f), "-o", str(out)]) == 0 and out.stat().st_size > 1000
