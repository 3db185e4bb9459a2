"""The command line, called in-process (main([...])) and once as the installed script."""

import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import tensorperf as tp
from tensorperf.engine.metrics import OP_BOUNDS
from tensorperf.interface import sweepfile
from tensorperf.interface.cli import DEFAULT_SWEEP, main
from tensorperf.interface.io import load


def run(argv):
    out = io.StringIO()
    code = main(argv, out=out)
    return code, out.getvalue()


def test_default_sweep_full_prints_best_layouts():
    # `tensorperf --full`: the detailed tables plain `tensorperf` printed before it became one table
    # (tests/test_cli_forms.py checks that table)
    code, text = run(["--full"])
    assert code == 0
    assert "gpt-moe-1.8t on 64 GPUs" in text
    for floor in ("10", "20"):
        assert f">= {floor} tokens/s per user" in text
    header = next(line for line in text.splitlines() if line.startswith("hardware"))
    assert header.split() == [
        "hardware",
        "dtype",
        "prompt",
        "tp",
        "pp",
        "dp",
        "ep",
        "batch",
        "serving",
        "tok/s/GPU",
        "serving",
        "tok/s/user",
        "serving",
        "TTFT",
        "s",
        "serving",
        "E2E",
        "s",
        "mem/GPU",
        "GB",
    ]
    # h100 has no fp4 math: that row has no layout
    assert any(
        line.startswith("h100-sxm") and " fp4 " in line and line.rstrip().endswith("-") for line in text.splitlines()
    )


def test_presets_lists_ids_with_key_numbers():
    code, text = run(["presets"])
    assert code == 0
    assert "llama-3.1-70b" in text and "70.55" in text  # 70,553,706,496 parameters
    assert "h100-sxm" in text and "989.4" in text


def test_sweep_flags_and_output(tmp_path):
    path = tmp_path / "out.nc"
    code, text = run(
        [
            "sweep",
            "--model",
            "llama-3.1-8b",
            "--hardware",
            "h100-sxm,b200",
            "--batch",
            "1,8",
            "--prompt-len",
            "1024",
            "-o",
            str(path),
        ]
    )
    assert code == 0 and f"wrote {path}" in text
    ds = xr.open_dataset(path)
    assert ds.ttft.dims == ("hardware", "batch") and ds.ttft.attrs["units"] == "s"


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["sweep", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--batch", "x"], "--batch"),
        (["sweep", "--model", "nope", "--hardware", "h100-sxm"], "unknown model preset 'nope'"),
        (["frobnicate"], "invalid choice"),
    ],
)
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


# --------------------------------------------------------------------------- subcommands

SMALL = ["--model", "llama-3.1-8b", "--hardware", "h100-sxm,b200", "--batch", "1,8", "--tp", "1,2"]
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_sweep_prints_every_point_of_a_small_grid_with_why_infeasible():
    code, text = run(["sweep", *SMALL, "--weight-dtype", "bf16,fp4"])
    assert code == 0
    assert "16 configurations" in text and "12 feasible" in text
    header = next(line for line in text.splitlines() if line.startswith("hardware"))
    assert header.split()[:4] == ["hardware", "dtype", "batch", "tp"] and "why infeasible" in header
    assert any(line.startswith("h100-sxm") and " fp4 " in line and line.endswith("dtype") for line in text.splitlines())


def test_sweep_flags_cover_every_input_and_what_if(tmp_path):
    path = tmp_path / "out.json"
    code, text = run(
        [
            "sweep",
            "--model",
            "llama-3.1-8b",
            "--hardware",
            "h100-sxm",
            "--batch",
            "max",
            "--max-num-seqs",
            "8,64",
            "--act-dtype",
            "bf16",
            "--kv-dtype",
            "fp8",
            "--world-size",
            "2",
            "--tp",
            "1,2",
            "--microbatches",
            "1",
            "--set",
            "hbm_bandwidth_scale=1,1.3",
            "--set",
            "num_kv_heads=8",
            "-o",
            str(path),
        ]
    )
    assert code == 0, text
    ds = load(path)
    assert ds.ttft.dims == ("tp", "max_num_seqs", "hbm_bandwidth_scale")
    assert str(ds["batch"].values) == "max" and ds["kv_dtype"].item() == "fp8"
    assert not bool(ds.feasible.sel(tp=1).any())  # world size 2
    assert "concurrency" in text


def test_sweep_big_grid_prints_best_per_non_layout_dims():
    code, text = run(["sweep", *SMALL, "--limit", "4"])
    assert code == 0
    assert "Best point by tokens_per_s_per_gpu (max) for each hardware" in text
    rows = [line.split() for line in text.splitlines() if line.startswith(("h100-sxm", "b200"))]
    assert [r[0] for r in rows] == ["h100-sxm", "b200"]


def test_sweep_file_and_flags_override(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text(
        'description = "tiny"\n[sweep]\nmodel = "llama-3.1-8b"\nhardware = ["h100-sxm", "b200"]\n'
        "batch = [1, 8]\ntp = [1, 2]\n[efficiency]\nmemory = 0.5\n"
    )
    out = tmp_path / "o.nc"
    code, text = run(["sweep", str(f), "--hardware", "b200", "-o", str(out)])
    assert code == 0 and text.splitlines()[1] == "tiny"
    ds = load(out)
    assert ds["hardware"].item() == "b200" and ds.ttft.dims == ("batch", "tp")
    ref = tp.sweep(model="llama-3.1-8b", hardware="b200", batch=[1, 8], tp=[1, 2], efficiency={"memory": 0.5})
    np.testing.assert_allclose(ds.tpot.values, ref.tpot.values)
    assert run(["sweep", "--file", str(f), "--tp", "4"])[0] == 0


def test_best_where_keep_and_results_file(tmp_path):
    code, text = run(["best", *SMALL, "--where", "tokens_per_s_per_user>=200", "--keep", "hardware"])
    assert code == 0
    assert "with tokens_per_s_per_user >= 200 for each hardware" in text
    lines = text.splitlines()
    assert lines[1].split()[:3] == ["hardware", "batch", "tp"]
    b200 = next(line.split() for line in lines if line.startswith("b200"))
    ds = tp.sweep(model="llama-3.1-8b", hardware="b200", batch=[1, 8], tp=[1, 2])
    ok = ds.tokens_per_s_per_gpu.where(ds.tokens_per_s_per_user >= 200)
    assert float(b200[3]) == pytest.approx(float(ok.max()), abs=0.05)
    saved = tmp_path / "r.nc"
    assert run(["sweep", *SMALL, "-o", str(saved)])[0] == 0
    code, again = run(["best", str(saved), "--objective", "tpot", "--minimize"])
    assert code == 0 and "Best point by tpot (min) for each hardware" in again


def test_pareto_prints_the_frontier_and_saves_csv(tmp_path):
    path = tmp_path / "front.csv"
    code, text = run(["pareto", *SMALL, "-o", str(path)])
    assert code == 0 and "Pareto frontier of tokens_per_s_per_gpu versus tokens_per_s_per_user over batch, tp" in text
    frame = pd.read_csv(path)
    ref = tp.sweep(model="llama-3.1-8b", hardware=["h100-sxm", "b200"], batch=[1, 8], tp=[1, 2]).tperf.pareto_table()
    assert len(frame) == len(ref) and f": {len(ref)} points" in text


def test_explain_one_point_per_op_table():
    code, text = run(["explain", "--model", "llama-3.1-70b", "--hardware", "h100-sxm", "--tp", "8", "--batch", "8"])
    assert code == 0
    assert "feasible: yes" in text and "Prefill" in text and "Decode" in text
    prefill, decode = text.split("\nPrefill")[1].split("\nDecode")
    bound = {line.split()[0]: line.split()[-1] for line in prefill.splitlines()[3:]}
    assert bound["mlp"] == "compute" and bound["tp_comm"] == "communication"
    dec = {line.split()[0]: line.split()[-1] for line in decode.splitlines()[3:]}
    assert dec["mlp"] == "memory"  # batch-8 decode streams the weights
    assert "time ms" in prefill and "FLOP" in prefill


def test_explain_infeasible_point_spells_out_the_reason():
    code, text = run(["explain", "--model", "llama-3.1-70b", "--hardware", "h100-sxm"])
    assert code == 0 and "feasible: no (memory; infeasible_reason 4)" in text


def test_op_bound_codes():
    ds = tp.sweep(model="llama-3.1-70b", hardware="h100-sxm", tp=[1, 8], batch=[1, 256])
    assert ds.prefill_op_bound.dtype == np.int8 and ds.decode_op_bound.attrs["units"] == "1"
    assert "2=memory" in ds.decode_op_bound.attrs["long_name"]
    code = {name: i for i, name in enumerate(OP_BOUNDS)}
    # unmasked even where infeasible (tp=1 does not fit): the codes describe the formulas
    assert int(ds.prefill_op_bound.sel(tp=8, batch=256, op="mlp")) == code["compute"]
    assert int(ds.decode_op_bound.sel(tp=8, batch=1, op="mlp")) == code["memory"]
    assert int(ds.decode_op_bound.sel(tp=8, batch=1, op="tp_comm")) == code["communication"]
    assert int(ds.decode_op_bound.sel(tp=1, batch=1, op="tp_comm")) == code["none"]  # no peers
    assert (ds.decode_op_bound.sel(op=["router", "experts", "ep_comm"]) == code["none"]).all()  # dense model


def test_sensitivity_prints_elasticities_and_saves(tmp_path):
    path = tmp_path / "sens.nc"
    code, text = run(
        [
            "sensitivity",
            "--model",
            "llama-3.1-8b",
            "--hardware",
            "h100-sxm",
            "--batch",
            "1",
            "--of",
            "tpot",
            "--wrt",
            "memory,compute,hbm_bandwidth",
            "-o",
            str(path),
        ]
    )
    assert code == 0
    lines = text.splitlines()
    body = lines[next(i for i, line in enumerate(lines) if line.startswith("---")) + 1 :]
    rows = {line.split()[0]: float(line.split()[1]) for line in body}
    assert set(rows) == {"memory", "compute", "hbm_bandwidth"}
    assert -1.001 <= rows["hbm_bandwidth"] < -0.3  # batch-1 decode is memory-bound
    assert load(path).attrs["of"] == "tpot"


@pytest.mark.parametrize("name", ["llama-3.1-70b-h100-h200-b200.toml", "deepseek-v3-wide-ep.toml"])
def test_examples_run(name):
    code, text = run(["sweep", str(EXAMPLES / name)])
    assert code == 0
    assert "Best point by tokens_per_s_per_gpu (max) with tokens_per_s_per_user" in text
    assert text.count("\n") > 5


def test_seed_example_is_the_default_sweep():
    spec = sweepfile.load(EXAMPLES / "seed-scenario.toml")
    assert spec.inputs == dict(DEFAULT_SWEEP)
    # the default run's hardware: every preset of the seed's time but the seed's own mi300 numbers
    assert set(DEFAULT_SWEEP["hardware"]) <= set(tp.presets.hardware()) - {"mi300-seed"}
    assert len(DEFAULT_SWEEP["hardware"]) == 11


@pytest.mark.parametrize(
    "body, needle",
    [
        (
            '[sweep]\nmodel = "llama-3.1-8b"\nhardwre = "h100-sxm"\n',
            "unknown key 'hardwre' in [sweep]. Did you mean 'hardware'? Allowed: model, hardware",
        ),
        ('[sweep]\nmodel = "llama-3.1-8b"\nhardware = "h100-sxm"\ntp = [0, 2]\n', "[sweep] tp = 0 is not allowed"),
        (
            '[sweep]\nmodel = "llama-3.1-8b"\nhardware = "h100-sxm"\n[report]\n',
            "unknown key 'report' in the sweep file. Allowed: description, convention, sweep, efficiency, best",
        ),
        ('[sweep]\nmodel = "llama-3.1-8b"\nhardware = "h100-sxm"\n[efficiency]\nmemroy = 0.5\n', "efficiency factor"),
        ('[sweep]\nmodel = "llama-3.1-8b"\nhardware = "h100-sxm"\n[best]\nwhere = ["tpot ~ 3"]\n', "[best] where"),
        ("[sweep\n", "not valid TOML"),
        ('model = "x"\n', "unknown key 'model' in the sweep file"),
    ],
)
def test_bad_sweep_file_is_one_line_naming_the_file_and_key(tmp_path, capsys, body, needle):
    f = tmp_path / "bad.toml"
    f.write_text(body)
    code = main(["sweep", str(f)])
    err = capsys.readouterr().err
    assert code == 2 and needle in err and str(f) in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["sweep", "--model", "llama-3.1-8b"], "--hardware is required"),
        (["sweep", *SMALL, "--set", "nope=1"], "argument --set"),
        (["sweep", *SMALL, "--batch", "maxx"], "argument --batch"),
        (["sweep", *SMALL, "-o", "x.xlsx"], "allowed: .nc, .zarr, .csv, .json"),
        (["best", *SMALL, "--where", "tpot<<3"], "argument --where"),
        (["best", *SMALL, "--keep", "hw"], "unknown dimension in keep 'hw'"),
        (["best", *SMALL, "--objective", "speed"], "unknown objective 'speed'"),
        (["best", *SMALL, "--where", "5<=tpot<=1"], "5 to 1 is an empty range"),
        (["explain", *SMALL], "one point only, but --hardware has 2 values"),
        (
            ["explain", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--convention", "seed"],
            "--convention roofline",
        ),
        (
            ["sensitivity", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--wrt", "nope"],
            "parameter in wrt 'nope'",
        ),
        (["plot", "nope", "x.nc", "-o", "x.png"], "argument KIND: invalid choice: 'nope'"),
        (["plot", "pareto", "missing.nc", "-o", "x.png"], "does not exist"),
        (["plot", "pareto", "results.txt", "-o", "x.png"], "RESULTS 'results.txt' must be"),
    ],
)
def test_bad_subcommand_input_is_one_line_exit_2(argv, needle, capsys):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2
    assert needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_sweep_and_explain_show_serving_under_load():
    # a request-rate sweep prints the serving columns (the static ones do not depend on the rate)
    argv = ["--model", "llama-3.1-70b", "--hardware", "h100-sxm", "--tp", "4", "--weight-dtype", "fp8"]
    code, text = run(["sweep", *argv, "--batch", "64", "--request-rate", "1,3,50"])
    assert code == 0
    header = next(line for line in text.splitlines() if line.startswith("req/s in"))
    assert "serving TTFT s" in header and "serving TPOT ms" in header
    assert "overloaded" in text  # 50 req/s is beyond this deployment's capacity
    code, text = run(["explain", *argv, "--batch", "64", "--request-rate", "3", "--isl-range-ratio", "0.8"])
    assert code == 0
    assert "3 requests/s (Poisson), at most 64 in flight, ISL in [0.8·L, L]" in text
    assert "serving under load: TTFT" in text and "static batch (all prompts at once, then decode)" in text
