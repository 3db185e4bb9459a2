"""The figures: each plot function returns a matplotlib Figure (saved when given a path) whose title
names the model, hardware and workload and whose axes carry long names and readable units; the
`tensorperf plot` command draws results files, `plot pareto` with any two variables and --where."""

import numpy as np
import pytest
import xarray as xr

import tensorperf as tp
from tensorperf.interface import figure_text, io
from tensorperf.interface import plot as tplot
from tensorperf.interface.cli import main
from tensorperf.interface.reductions import pareto_table
from tensorperf.validation import SpecError

pytest.importorskip("matplotlib")
from matplotlib.figure import Figure  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


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


@pytest.fixture(scope="module")
def ds(results):
    return io.load(results / "sweep.nc")


def _one_line(label: str) -> str:
    return label.replace("\n", " ")


# --------------------------------------------------------------------------- units at the edge


@pytest.mark.parametrize(
    "unit, values, factor, text",
    [
        ("s", [0.0123, 0.002], 1e3, "ms"),  # largest 12.3 ms
        ("s", [2.5, 0.1], 1.0, "s"),
        ("s", [4.0e-5], 1e6, "µs"),  # 40 µs
        ("bytes", [8.1e10, 1e9], 1e-9, "GB"),  # 81 GB
        ("bytes", [3.2e7], 1e-6, "MB"),
        ("FLOP", [2.0e15], 1e-15, "PFLOP"),
        ("J", [0.2], 1e3, "mJ"),  # 200 mJ
        ("W", [700.0], 1.0, "W"),
        ("tokens/s", [1.5e5], 1.0, "tokens/s"),  # no prefix for a compound unit
        ("1", [0.4], 1.0, ""),  # dimensionless: no unit drawn
        ("s", [np.nan], 1.0, "s"),  # nothing finite: the SI unit
    ],
)
def test_readable_unit(unit, values, factor, text):
    got = figure_text.readable(unit, values)
    assert got.text == text and got.factor == pytest.approx(factor)


def test_labels_and_conditions(ds):
    assert figure_text.clause("time to first token (mean over the batch)") == "time to first token, mean over the batch"
    assert figure_text.axis_label(ds, "ttft", figure_text.Unit(1e3, "ms")) == (
        "time to first token, mean over the batch (ms)"
    )
    assert figure_text.long_name(ds, "tp") == "tensor-parallel degree"  # a dim: the axis registry's help
    assert figure_text.condition_text(ds, "ttft", ("<=", 0.5)) == "ttft <= 0.5 s"
    assert (
        figure_text.condition_text(ds, "tokens_per_s_per_gpu", (">", 1e6))
        == "tokens_per_s_per_gpu > 1,000,000 tokens/s"
    )
    assert figure_text.condition_text(ds, "mfu", (">=", 2.5e-6)) == "mfu >= 2.5e-06"  # dimensionless: no unit
    assert figure_text.condition_text(ds, "tokens_per_s_per_user", ((">=", 20.0), ("<=", 50.0))) == (
        "20 <= tokens_per_s_per_user <= 50 tokens/s"
    )


# --------------------------------------------------------------------------- each function returns a Figure


def test_pareto_returns_a_titled_labelled_figure(ds):
    fig = tplot.pareto(ds)
    assert isinstance(fig, Figure)
    title = fig.get_suptitle()
    assert "llama-3.1-8b on h100-sxm, b200" in title and "prompt 1024, output 128 tokens" in title
    ax = fig.axes[0]
    assert ax.get_xlabel() == "output tokens per second seen by one user (tokens/s)"
    assert ax.get_ylabel() == "output tokens per second per GPU (tokens/s)"
    # one curve per hardware, its points the frontier's (SI values, no scale for tokens/s)
    frame = pareto_table(ds, "tokens_per_s_per_user", "tokens_per_s_per_gpu")
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert sorted(lines) == ["b200", "h100-sxm"]
    b200 = frame[frame.hardware == "b200"].sort_values("tokens_per_s_per_user")
    np.testing.assert_allclose(lines["b200"].get_xdata(), b200.tokens_per_s_per_user)
    np.testing.assert_allclose(lines["b200"].get_ydata(), b200.tokens_per_s_per_gpu)


def test_pareto_any_two_variables_where_and_units(ds):
    where = {"tokens_per_s_per_user": (">=", 200.0)}
    fig = tplot.pareto(ds, x="ttft", y="tokens_per_s_per_gpu", where=where)
    frame = pareto_table(ds, "ttft", "tokens_per_s_per_gpu", where=where)
    assert frame.ttft.max() < 1.0  # so the axis is in ms
    ax = fig.axes[0]
    assert ax.get_xlabel() == "time to first token, mean over the batch (ms)"
    assert "only points with tokens_per_s_per_user >= 200 tokens/s" in fig.get_suptitle()
    drawn = np.sort(np.concatenate([line.get_xdata() for line in ax.get_lines()]))
    np.testing.assert_allclose(drawn, np.sort(frame.ttft.values) * 1e3)  # s -> ms
    # the filter acted: every frontier point meets it, and fewer points than without it
    assert (ds.tokens_per_s_per_user.max() > 200) and len(frame) < len(pareto_table(ds, "ttft", "tokens_per_s_per_gpu"))


def test_a_time_axis_over_decades_is_log_scaled(ds):
    frame = pareto_table(ds, "ttft", "tokens_per_s_per_gpu")
    assert frame.ttft.max() / frame.ttft.min() >= 100  # so x is log-scaled; throughput never is
    fig = tplot.pareto(ds, x="ttft")
    assert (fig.axes[0].get_xscale(), fig.axes[0].get_yscale()) == ("log", "linear")
    fig = tplot.pareto(ds, x="ttft", where={"ttft": ("<=", 50 * frame.ttft.min())})  # less than 100x
    assert fig.axes[0].get_xscale() == "linear"
    assert tplot.pareto(ds).axes[0].get_yscale() == "linear"


def test_breakdown_figure(ds):
    one = ds.sel(pp=1, tp=2, batch=8)
    fig = tplot.breakdown(one)
    title = fig.get_suptitle()
    assert "Time per operation: llama-3.1-8b on h100-sxm, b200" in title and "batch 8, tp 2, pp 1" in title
    prefill, decode = fig.axes[:2]
    assert _one_line(prefill.get_ylabel()).startswith("prefill time of each operation for one microbatch")
    assert _one_line(decode.get_ylabel()).startswith("time of each operation in one decode step")
    # bar heights are the per-op times in the axis' unit: the stacked top of each bar is the sum over ops
    for ax in (prefill, decode):
        name = "prefill_op_time" if ax is prefill else "decode_op_time"
        total = one[name].sum("op").transpose("hardware").values
        unit = figure_text.readable("s", total)
        assert _one_line(ax.get_ylabel()).endswith(f"({unit.text})")
        tops = {}
        for bar in ax.patches:
            x = round(bar.get_x() + bar.get_width() / 2)
            tops[x] = max(tops.get(x, 0.0), bar.get_y() + bar.get_height())
        np.testing.assert_allclose([tops[0], tops[1]], total * unit.factor, rtol=1e-9)
    assert prefill.get_ylabel().count("(s)") + prefill.get_ylabel().count("(ms)") == 1


def test_breakdown_names_infeasible_points():
    # 8B on one 80 GB H100 at 4096 requests of 2048 tokens: the KV cache cannot fit (infeasible)
    ds = tp.sweep(model="llama-3.1-8b", hardware="h100-sxm", prompt_len=2048, batch=[8, 4096])
    assert not bool(ds.feasible.sel(batch=4096)) and bool(ds.feasible.sel(batch=8))
    fig = tplot.breakdown(ds)
    assert "not drawn (infeasible): batch=4096" in fig.get_suptitle()
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["batch=8"]


def test_memory_figure(ds):
    one = ds.sel(batch=8)
    fig = tplot.memory(one)
    assert "Memory per GPU: llama-3.1-8b on h100-sxm, b200" in fig.get_suptitle()
    assert "batch 8" in fig.get_suptitle()
    colorbar = fig.axes[-1]
    assert _one_line(colorbar.get_ylabel()) == "memory needed per GPU, worst pipeline stage (GB)"
    panel = fig.axes[0]
    assert panel.get_xlabel() == "tp: tensor-parallel degree" and panel.get_title() == "h100-sxm"
    # cell (tp=1, pp=1) shows memory_per_gpu in GB, 3 significant digits
    gb = float(one.memory_per_gpu.sel(hardware="h100-sxm", tp=1, pp=1)) / 1e9
    cells = {(round(t.get_position()[0]), round(t.get_position()[1])): t.get_text() for t in panel.texts}
    assert cells[(0, 0)] == f"{gb:.3g}"
    # one pipeline degree (pp a scalar coordinate after .sel): a one-row heatmap
    fig = tplot.memory(ds.sel(batch=8, pp=1, hardware="b200"))
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["1"]
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["1", "2"]
    assert "batch 8" in fig.get_suptitle()


def test_sensitivity_figure(results):
    sens = io.load(results / "sens.nc")
    fig = tplot.sensitivity(sens)
    title = fig.get_suptitle()
    assert "Sensitivity of the time per output token: llama-3.1-8b on h100-sxm" in title
    assert "median elasticity over the feasible points of batch 1/64" in title
    ax = fig.axes[0]
    assert ax.get_xlabel() == "change of the time per output token, mean over the generation (%)"
    # hbm_bandwidth's bar: +10% bandwidth -> elasticity x 10 % change of TPOT (median over batch)
    e = float(sens.elasticity.sel(param="hbm_bandwidth").median())
    labels = [t.get_text() for t in ax.get_yticklabels()]
    row = labels.index(f"hbm_bandwidth (elasticity {e:+.2f})")
    assert "compute (elasticity +0.00)" in labels  # TPOT at batch 1 and 64 is memory-bound: no -0.00
    plus = [b for b in ax.patches if round(b.get_y() + b.get_height() / 2) == row][0]
    assert plus.get_width() == pytest.approx(10 * e)


# --------------------------------------------------------------------------- paths, accessor


def test_a_path_also_saves_the_figure(ds, tmp_path):
    out = tmp_path / "p.png"
    fig = tplot.pareto(ds, out)
    assert isinstance(fig, Figure) and out.read_bytes()[:8] == PNG_MAGIC
    assert tplot.memory(ds.sel(batch=8), str(tmp_path / "m.svg")) is not None
    assert (tmp_path / "m.svg").read_text().lstrip().startswith(("<?xml", "<svg"))
    before = sorted(tmp_path.iterdir())
    tplot.breakdown(ds.sel(pp=1, batch=8))  # no path: nothing written
    assert sorted(tmp_path.iterdir()) == before


def test_accessor(ds, tmp_path):
    fig = ds.tperf.plot.pareto(x="tpot", where={"tokens_per_s_per_user": (">=", 100)})
    assert isinstance(fig, Figure) and fig.axes[0].get_xlabel().endswith("(ms)")
    assert "only points with tokens_per_s_per_user >= 100 tokens/s" in fig.get_suptitle()
    assert isinstance(ds.sel(batch=8).tperf.plot.memory(), Figure)
    assert isinstance(ds.sel(pp=1, batch=8).tperf.plot.breakdown(), Figure)
    out = tmp_path / "m.png"
    fig = ds.sel(batch=8).tperf.plot("memory", out)
    assert fig.get_suptitle().startswith("Memory per GPU") and out.read_bytes()[:8] == PNG_MAGIC
    with pytest.raises(SpecError, match="plot kind 'bars' is not allowed: choose one of pareto, breakdown"):
        ds.tperf.plot("bars")


def test_plot_errors_name_the_input(ds, tmp_path):
    with pytest.raises(SpecError, match="hardware, batch vary; select with --sel"):
        tplot.memory(ds)
    with pytest.raises(SpecError, match="more than 24; select fewer with --sel"):
        tplot.breakdown(xr.concat([ds, ds.assign_coords(model="x")], "model"))
    with pytest.raises(SpecError, match="needs the variable 'elasticity'"):
        tplot.sensitivity(ds)
    with pytest.raises(SpecError, match=r"allowed: \.png, \.svg, \.pdf"):
        tplot.memory(ds, tmp_path / "m.jpg")
    with pytest.raises(
        SpecError, match="x = 'tokens_per_s_per_usr' is not a variable.*Did you mean 'tokens_per_s_per_user'"
    ):
        tplot.pareto(ds, x="tokens_per_s_per_usr")
    with pytest.raises(SpecError, match="y = 'op' is not a variable"):
        tplot.pareto(ds, y="op")


# --------------------------------------------------------------------------- the command line


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


def test_plot_pareto_axes_and_where_on_the_command_line(results, monkeypatch, capsys):
    drawn = []

    def spy(ds, path, **options):
        fig = tplot.pareto(ds, path, **options)
        drawn.append((options, fig))
        return fig

    monkeypatch.setattr(tplot, "KINDS", {**tplot.KINDS, "pareto": spy})
    out = results / "ttft.png"
    argv = ["plot", "pareto", str(results / "sweep.nc"), "-o", str(out), "--x", "ttft", "--y", "tokens_per_s_per_gpu"]
    argv += ["--where", "tokens_per_s_per_user>=100", "--where", "ttft<=0.5"]
    assert main(argv) == 0, capsys.readouterr().err
    assert out.read_bytes()[:8] == PNG_MAGIC
    ((options, fig),) = drawn
    assert options == {
        "x": "ttft",
        "y": "tokens_per_s_per_gpu",
        "where": {"tokens_per_s_per_user": (">=", 100.0), "ttft": ("<=", 0.5)},
    }
    assert "only points with tokens_per_s_per_user >= 100 tokens/s and ttft <= 0.5 s" in fig.get_suptitle()
    assert fig.axes[0].get_xlabel() == "time to first token, mean over the batch (ms)"


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["plot", "bars", "x.nc", "-o", "x.png"], "invalid choice: 'bars'"),
        (["plot", "pareto", "RESULTS.nc", "-o", "x.gif"], "allowed: .png, .svg, .pdf"),
        (["plot", "memory", "RESULTS.nc", "-o", "x.png", "--sel", "hardware=h300"], "no such label"),
        (["plot", "pareto", "RESULTS.nc", "-o", "x.png", "--x", "tokens_per_s_per_usr"], "'tokens_per_s_per_usr'"),
        (["plot", "pareto", "RESULTS.nc", "-o", "x.png", "--y", "ttf"], "y = 'ttf' is not a variable"),
        (["plot", "pareto", "RESULTS.nc", "-o", "x.png", "--where", "tpot_ms<=5"], "'tpot_ms'"),
        (["plot", "pareto", "RESULTS.nc", "-o", "x.png", "--where", "tpot=5"], "tpot=5"),
        (["plot", "memory", "RESULTS.nc", "-o", "x.png", "--x", "ttft"], "--x applies to plot pareto only"),
        (["plot", "breakdown", "RESULTS.nc", "-o", "x.png", "--where", "ttft<=1"], "--where applies to plot pareto"),
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
