"""The command line's forms for a new user (issue #20): the one-table default run, ranges, `all`,
repeatable and range `--where`, `--no-breakdown`, `--isl/--osl`, a fast `--help`, close matches."""

import io
import re
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

import tensorperf as tp
from tensorperf.interface import sweepfile
from tensorperf.interface.cli import COMMANDS, build_parser, default, main
from tensorperf.interface.io import load
from tensorperf.validation import close_matches, unknown_name_error


def run(argv):
    out = io.StringIO()
    code = main(argv, out=out)
    return code, out.getvalue()


def fails(argv, capsys):
    """exit code 2 and the one line on stderr."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


SMALL = ["--model", "llama-3.1-8b", "--hardware", "h100-sxm"]

# --------------------------------------------------------------------------- the default run


def test_default_run_is_one_ranked_table_under_30_lines():
    code, text = run([])
    assert code == 0
    lines = text.splitlines()
    assert len(lines) < 30
    # the two-line header: why (the seed question, and what "seed" means), then what was swept
    assert "seed: the notebook" in lines[0] and "gpt-moe-1.8t" in lines[0] and "64 GPUs" in lines[0]
    assert lines[1].startswith("Swept ") and "configurations" in lines[1] and "8K-token prompts" in lines[1]
    # the ranking and its limits, named as --where takes them
    title = next(line for line in lines if line.startswith("Ranked by"))
    assert "serving_tokens_per_s_per_gpu" in title
    assert "serving_tokens_per_s_per_user >= 20" in title and "serving_ttft <= 2 s" in title
    head = lines.index(next(line for line in lines if line.startswith("rank")))
    for column in ("hardware", "dtype", "tp", "pp", "dp", "ep", "batch"):
        assert f" {column} " in lines[head]
    for column in ("serving tok/s/GPU", "serving tok/s/user", "serving TTFT s"):  # the three variables above
        assert column in lines[head]
    # one row per hardware of the fixed list, ranked rows first
    body = lines[head + 2 : head + 2 + len(default.DEFAULT_HARDWARE)]
    assert sorted(line.split()[1] for line in body) == sorted(default.DEFAULT_HARDWARE)
    ranked = [line.split() for line in body if line.split()[0] != "-"]
    assert [int(r[0]) for r in ranked] == list(range(1, len(ranked) + 1)) and len(ranked) >= 5
    gpu, user, ttft = ([float(r[i]) for r in ranked] for i in (8, 9, 10))
    assert gpu == sorted(gpu, reverse=True)
    assert min(user) >= 20 and max(ttft) <= 2.0  # every row meets the stated limits
    for line in body[len(ranked) :]:
        assert "no " in line  # a short reason, not a row of dashes
    hint = "\n".join(lines[head + 2 + len(default.DEFAULT_HARDWARE) :])
    assert "tensorperf --full" in hint and "plot pareto" in hint and ".png" in hint and "--no-breakdown" in hint


def test_default_run_row_is_the_library_best():
    # the first row's winner, recomputed by the library's own streamed best for that hardware alone
    rows, _, points, feasible = default.winners()
    top = rows[0]
    res = tp.best(
        "serving_tokens_per_s_per_gpu",
        where={"serving_tokens_per_s_per_user": (">=", 20), "serving_ttft": ("<=", 2)},
        keep=[],
        **dict(default.DEFAULT_SWEEP, hardware=top["hardware"], prompt_len=8192),
    )
    assert float(res["serving_tokens_per_s_per_gpu"]) == pytest.approx(top["serving_tokens_per_s_per_gpu"], rel=1e-12)
    assert str(res["best_weight_dtype"].values) == top["weight_dtype"]
    # 11 hardware x 3 dtypes x 9 batches x 7 x 7 x 7 x 5 (tp, pp, dp, ep) = 509,355 points at one prompt length
    assert points == 11 * 3 * 9 * 7**3 * 5 == 509_355 and 0 < feasible < points


def test_default_run_hardware_without_a_layout_gets_a_reason(monkeypatch):
    # a TTFT ceiling no layout meets, on two presets: both rows say why instead of failing
    monkeypatch.setattr(default, "DEFAULT_HARDWARE", ("h100-sxm", "b200"))
    monkeypatch.setattr(default, "TTFT", ("serving_ttft", "<=", 1e-6))
    code, text = run([])
    assert code == 0
    assert "   -  h100-sxm  no layout has TTFT <= 1e-06 s" in text and "   -  b200      no layout has" in text
    assert default._reasons(["x"], {"x": 0}) == {"x": "no feasible layout (memory or number formats)"}


def test_default_run_hardware_list_is_fixed():
    # adding presets does not change the default run: its list is written down
    assert default.DEFAULT_SWEEP["hardware"] == list(default.DEFAULT_HARDWARE)
    assert set(default.DEFAULT_HARDWARE) <= set(tp.presets.hardware())


# --------------------------------------------------------------------------- ranges and `all`


def test_batch_range_every_integer_and_geometric(tmp_path):
    path = tmp_path / "r.nc"
    code, _ = run(["sweep", *SMALL, "--batch", "1:512", "--no-breakdown", "-o", str(path)])
    assert code == 0
    assert load(path)["batch"].values.tolist() == list(range(1, 513))
    code, _ = run(["sweep", *SMALL, "--batch", "1:512:x2", "--tp", "1,2,4,8", "-o", str(path)])
    assert code == 0
    ds = load(path)
    assert ds["batch"].values.tolist() == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
    assert ds["tp"].values.tolist() == [1, 2, 4, 8]


@pytest.mark.parametrize(
    "text, integer, values",
    [
        ("1:8", True, [1, 2, 3, 4, 5, 6, 7, 8]),
        ("1:100:x2", True, [1, 2, 4, 8, 16, 32, 64]),  # STOP is not reached: 128 > 100
        ("1024:4096:1024", True, [1024, 2048, 3072, 4096]),
        ("1,3,8:32:x2", True, [1, 3, 8, 16, 32]),
        ("0.5:2:x2", False, [0.5, 1.0, 2.0]),
        ("0:1:0.25", False, [0.0, 0.25, 0.5, 0.75, 1.0]),
        ("0.1:0.3:0.1", False, [0.1, 0.2, 0.3]),  # 0.1 + 2 * 0.1 is 0.30000000000000004: rounded
    ],
)
def test_range_grammar(text, integer, values):
    assert sweepfile.parse_values(text, integer) == values


def test_ranges_in_every_command_with_axis_flags():
    with_axes = []
    for command in COMMANDS:
        parser = build_parser([command])._subparsers._group_actions[0].choices[command]
        if "--tp" not in parser._option_string_actions:
            continue
        with_axes.append(command)
        required = [x for a in parser._actions if a.required and a.option_strings for x in (a.option_strings[0], "o")]
        argv = [command, *required, "--tp", "1:8:x2", "--isl", "1024:2048:1024", "--osl", "64"]
        args = build_parser([command]).parse_args(argv)
        assert args.tp == [1, 2, 4, 8] and args.prompt_len == [1024, 2048] and args.output_len == 64
    assert {"sweep", "best", "pareto", "explain", "sensitivity"} <= set(with_axes)


def test_ranges_in_explain_and_pareto_run():
    code, text = run(["explain", *SMALL, "--tp", "2:2", "--batch", "8:8:x2"])  # one-value ranges: one point
    assert code == 0 and "feasible: yes" in text
    code, text = run(["pareto", *SMALL, "--batch", "1:64:x4", "--tp", "1:2"])
    assert code == 0 and "over batch, tp" in text


@pytest.mark.parametrize(
    "value, why",
    [
        ("1:0", "START 1 > STOP 0"),
        ("a:b", "'a' is not a number"),
        ("1:512:x1", "FACTOR > 1"),
        ("1:2:3:4", "not 2 or 3"),
        ("2.5:8", "'2.5' is not an integer"),
        ("1:1e9", "more than 100,000"),
    ],
)
def test_a_bad_range_names_the_flag_the_value_and_the_forms(value, why, capsys):
    err = fails(["sweep", *SMALL, "--batch", value], capsys)
    assert "argument --batch" in err and repr(value) in err and why in err
    assert "START:STOP:xFACTOR" in err and "START:STOP:STEP" in err


def test_hardware_all_and_model_all(tmp_path):
    path = tmp_path / "all.nc"
    code, _ = run(["sweep", "--model", "all", "--hardware", "all", "--no-breakdown", "-o", str(path)])
    assert code == 0
    ds = load(path)
    assert ds["hardware"].values.tolist() == list(tp.presets.hardware())
    assert ds["model"].values.tolist() == list(tp.presets.models())


def test_sweep_file_ranges_and_all(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text(
        '[sweep]\nmodel = "llama-3.1-8b"\nhardware = "all"\nbatch = "1:64:x4"\ntp = [1, "2:8:x2"]\n'
        'request_rate = "0.5:2:x2"\n[best]\nwhere = ["20 <= tokens_per_s_per_user <= 500", "ttft <= 1"]\n'
    )
    spec = sweepfile.load(f)
    assert spec.inputs["hardware"] == list(tp.presets.hardware())
    assert spec.inputs["batch"] == [1, 4, 16, 64] and spec.inputs["tp"] == [1, 2, 4, 8]
    assert spec.inputs["request_rate"] == [0.5, 1.0, 2.0]
    assert spec.best["where"] == {"tokens_per_s_per_user": ((">=", 20.0), ("<=", 500.0)), "ttft": ("<=", 1.0)}
    f.write_text('[sweep]\nmodel = "llama-3.1-8b"\nhardware = "h100-sxm"\nbatch = "8:1"\n')
    with pytest.raises(tp.SpecError, match=r"s\.toml: \[sweep\] batch = '8:1' is not a valid range.*START 8 > STOP 1"):
        sweepfile.load(f)


# --------------------------------------------------------------------------- --where


GRID = ["--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--batch", "1,8,64", "--tp", "1,2,4"]


def _library_best(where):
    ds = tp.sweep(model="llama-3.1-8b", hardware="h100-sxm", batch=[1, 8, 64], tp=[1, 2, 4])
    ok = ds.feasible.astype(bool)
    for name, (lo, hi) in where.items():
        ok = ok & (ds[name] >= lo) & (ds[name] <= hi)
    return float(ds.serving_tokens_per_s_per_gpu.where(ok).max())


def _row_value(text, column):
    """The value in ``column`` of the first row of a printed table (cells apart by 2+ spaces)."""
    lines = text.splitlines()
    heads, row = (re.split(r"\s{2,}", lines[i].strip()) for i in (1, 3))
    return float(row[heads.index(column)])


def test_where_repeatable_and_range():
    common = ["best", *GRID, "--objective", "serving_tokens_per_s_per_gpu"]
    code, text = run([*common, "--where", "serving_ttft<=2", "--where", "serving_tokens_per_s_per_user>=20"])
    assert code == 0 and "with serving_ttft <= 2 and serving_tokens_per_s_per_user >= 20" in text
    expected = _library_best({"serving_ttft": (0, 2), "serving_tokens_per_s_per_user": (20, np.inf)})
    assert _row_value(text, "serving tok/s/GPU") == pytest.approx(expected, abs=0.05)
    # a range binds from both sides: the unlimited best is faster per user than 300 tok/s/user
    code, text = run([*common, "--where", "150<=serving_tokens_per_s_per_user<=300"])
    assert code == 0 and "serving_tokens_per_s_per_user >= 150 and serving_tokens_per_s_per_user <= 300" in text
    expected = _library_best({"serving_tokens_per_s_per_user": (150, 300)})
    assert _row_value(text, "serving tok/s/GPU") == pytest.approx(expected, abs=0.05)
    assert 150 <= _row_value(text, "serving tok/s/user") <= 300
    assert expected < _library_best({"serving_tokens_per_s_per_user": (0, np.inf)})
    # the same range as two flags on one variable
    code, again = run(
        [*common, "--where", "serving_tokens_per_s_per_user>=150", "--where", "serving_tokens_per_s_per_user<=300"]
    )
    assert code == 0 and again.splitlines()[3] == text.splitlines()[3]


def test_where_range_in_a_where_mapping_of_the_library():
    ds = tp.sweep(model="llama-3.1-8b", hardware="h100-sxm", batch=[1, 8, 64], tp=[1, 2, 4], breakdown=False)
    res = ds.tperf.best("tokens_per_s_per_gpu", where={"tokens_per_s_per_user": ((">=", 150), ("<=", 300))}, keep=[])
    per_user = ds.tokens_per_s_per_user
    expected = ds.tokens_per_s_per_gpu.where((per_user >= 150) & (per_user <= 300)).max()
    assert float(res.tokens_per_s_per_gpu) == float(expected)


@pytest.mark.parametrize(
    "expr, needle",
    [("50<=tpot<=20", "50 to 20 is an empty range"), ("1 < tpot", "LOW <= VARIABLE <= HIGH"), ("tpot<<3", "--where")],
)
def test_bad_where_is_one_line(expr, needle, capsys):
    err = fails(["best", *SMALL, "--where", expr], capsys)
    assert needle in err and repr(expr) in err


# --------------------------------------------------------------------------- --no-breakdown, aliases


def test_no_breakdown_flag_and_the_refusal_names_it(tmp_path, monkeypatch, capsys):
    path = tmp_path / "nb.nc"
    assert run(["sweep", *SMALL, "--batch", "1,8", "--no-breakdown", "-o", str(path)])[0] == 0
    assert not [v for v in load(path).data_vars if "_op_" in v]
    assert run(["sweep", *SMALL, "--batch", "1,8", "-o", str(path)])[0] == 0
    assert "prefill_op_time" in xr.open_dataset(path).data_vars
    # a machine of 64 kB (16 pages of 4 kB) and 64 points of >= 1 kB each: the sweep is refused up
    # front, and the message names the flag
    import tensorperf.interface.api as api

    monkeypatch.setattr(api.os, "sysconf", lambda name: 4096 if name == "SC_PAGE_SIZE" else 16)
    err = fails(["sweep", *SMALL, "--batch", "1:64"], capsys)
    assert "--no-breakdown" in err and "breakdown=False" in err


def test_isl_osl_aliases(tmp_path):
    path = tmp_path / "a.nc"
    code, _ = run(["sweep", *SMALL, "--isl", "2048", "--osl", "256", "-o", str(path)])
    assert code == 0
    ds = load(path)
    assert int(ds["prompt_len"]) == 2048 and int(ds["output_len"]) == 256
    helptext = build_parser(["sweep"])._subparsers._group_actions[0].choices["sweep"].format_help()
    assert "--prompt-len N, --isl N" in helptext and "--output-len N, --osl N" in helptext
    assert "1:512:x2" in helptext and "--no-breakdown" in helptext


# --------------------------------------------------------------------------- --help


def test_help_imports_neither_torch_nor_xarray():
    # `tensorperf --help` stays light: only the chosen command's module is imported, torch lazily
    code = (
        "import sys\nfrom tensorperf.interface.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('torch', 'xarray', 'pandas') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("[]"), proc.stdout + proc.stderr
    assert "--full" in proc.stdout and "1:512:x2" in proc.stdout and "--isl" in proc.stdout


def test_python_dash_m_tensorperf_runs():
    proc = subprocess.run([sys.executable, "-m", "tensorperf", "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "usage: tensorperf" in proc.stdout
    proc = subprocess.run(
        [sys.executable, "-m", "tensorperf", "sweep", *SMALL], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and "1 configuration" in proc.stdout


def test_command_list_matches_each_command_s_own_help():
    stubs = build_parser(())._subparsers._group_actions[0]
    full = build_parser()._subparsers._group_actions[0]
    listed = {a.dest: a.help for a in stubs._choices_actions}
    own = {a.dest: a.help for a in full._choices_actions}
    # a command's help changed in its module: copy it into COMMANDS (tensorperf/interface/cli/__init__.py)
    assert listed == own == dict(COMMANDS)


# --------------------------------------------------------------------------- close matches


def test_close_matches_only_close_ones_at_most_three():
    names = ["tp", "pp", "dp", "ep", "batch", "prompt_len", "norm_bias_scale", "chunk_size", "vocab_size"]
    assert close_matches("tensor_parallel", names) == []  # no unrelated 'norm_bias_scale'
    assert close_matches("prompt_lenght", names) == ["prompt_len"]
    assert close_matches("batch_size", names)[0] == "batch" and len(close_matches("batch_size", names)) <= 3
    assert close_matches("h100", tp.presets.hardware())[0] == "h100-sxm"


def test_an_unknown_name_of_many_points_to_the_list_instead_of_printing_it():
    with pytest.raises(tp.SpecError) as e:
        tp.sweep(model="llama-3.1-8b", hardware="h100-sxm", tensor_parallel=2)
    text = str(e.value)
    assert "unknown sweep input 'tensor_parallel'" in text and "Did you mean" not in text
    assert "norm_bias_scale" not in text and "names in all" in text and "tensorperf sweep --help" in text
    err = str(unknown_name_error("hardware preset", "h100x", [f"gpu{i}" for i in range(30)] + ["h100-sxm"]))
    assert "Did you mean 'h100-sxm'?" in err and "31 names in all; `tensorperf presets` lists them" in err
    assert "gpu7" not in err
    short = unknown_name_error("dtype", "fp9", ["fp8", "bf16"])
    assert "Available: bf16, fp8" in str(short)  # a short list is spelled out


def test_unknown_variable_and_flag_suggest_close_names(capsys):
    err = fails(["best", *SMALL, "--where", "tokens_per_gpu>=1"], capsys)
    assert "Did you mean 'tokens_per_s_per_gpu'" in err and "names in all" in err and len(err) < 600
    err = fails(["sweep", *SMALL, "--prompt-lenght", "8"], capsys)
    assert "did you mean --prompt-len?" in err
