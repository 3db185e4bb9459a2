"""Malformed input to sweep() and the CLI: always a SpecError (a ValueError) or exit code 2, never
another exception."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tensorperf as tp
from tensorperf.interface.cli import main

BAD = st.sampled_from(
    [
        0,
        -1,
        1.5,
        float("nan"),
        float("inf"),
        "x",
        [],
        [0],
        [1, "a"],
        {"a": 1},
        True,
        [True],
        np.array([[1, 2]]),
        [1, 1],
        10**30,
        10**400,
        -0.0,
        b"bytes",
        object(),
        "cuda:7",
    ]
)
FIELDS = st.sampled_from(
    [
        "model",
        "hardware",
        "weight_dtype",
        "kv_dtype",
        "act_dtype",
        "prompt_len",
        "output_len",
        "batch",
        "tp",
        "cp",
        "pp",
        "dp",
        "ep",
        "microbatches",
        "world_size",
        "max_num_seqs",
        "chunk_size",
        "convention",
        "efficiency",
        "dtype",
        "device",
        "zipped",
        "hbm_bandwidth",
        "num_layers",
        "hbm_bandwidth_scale",
        "num_kv_heads",
        "frobnicate",
    ]
)
SETTINGS = settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(field=FIELDS, value=BAD)
def test_sweep_rejects_malformed_input_with_a_spec_error(field, value):
    kw = dict(model="llama-3.1-8b", hardware="h100-sxm", batch=[1, 2], tp=[1, 2])
    kw[field] = value
    try:
        tp.sweep(**kw)
    except tp.SpecError as e:
        assert str(e)  # names the field and the value
    except TypeError as e:  # only Python's own "unexpected keyword argument" for unknown names
        assert "unexpected keyword" in str(e) or "got an" in str(e), e


FLAG_VALUES = st.sampled_from(["0", "-3", "x", "1,,2", "1.5", "nan", "", "max", "h100", "fp6", "1e400"])
FLAGS = st.sampled_from(
    [
        "--batch",
        "--tp",
        "--prompt-len",
        "--model",
        "--hardware",
        "--weight-dtype",
        "--cp",
        "--chunk-size",
        "--set",
        "--where",
        "--efficiency",
    ]
)


@SETTINGS
@given(command=st.sampled_from(["sweep", "best", "pareto", "explain", "sensitivity"]), flag=FLAGS, value=FLAG_VALUES)
def test_cli_rejects_malformed_flags_with_exit_code_2(command, flag, value):
    import contextlib
    import io

    argv = [command, "--model", "llama-3.1-8b", "--hardware", "h100-sxm", flag, value]
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(argv, out=out)
    err = err.getvalue()
    assert code in (0, 2)
    if code == 2:
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1
