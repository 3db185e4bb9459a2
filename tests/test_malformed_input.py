"""Malformed input at every public entry point: a SpecError (a ValueError) naming the field, the
value and what is allowed, or exit code 2 with one line on stderr for the CLI; never another
exception, never a hang.

Each entry point has its own hypothesis test; every generated example is malformed (one bad
argument, field, key or file among otherwise valid ones) and must be rejected. ``EXAMPLES`` holds
each test's ``max_examples``; :func:`test_the_fuzz_tests_throw_at_least_1000_malformed_inputs`
checks their sum and, when the whole module ran, how many examples each test really generated.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import re
import tomllib
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tensorperf as tp
from tensorperf.analysis import calibrate as calibrate_module
from tensorperf.analysis import fidelity
from tensorperf.analysis.sensitivity import PARAMETERS as SENSITIVITY_PARAMETERS
from tensorperf.catalog import presets
from tensorperf.catalog.specs import Efficiency, HardwareSpec, ModelSpec
from tensorperf.interface import io as tio
from tensorperf.interface import reductions, sweepfile
from tensorperf.interface.cli import main
from tensorperf.validation import SpecError

ROOT = Path(__file__).resolve().parents[1]
HF = ROOT / "tests" / "fixtures" / "hf"
MEASUREMENTS = ROOT / "data" / "measurements.csv"
PRESETS = ROOT / "tensorperf" / "catalog" / "presets"

# max_examples of each fuzz test; every example is a malformed input
EXAMPLES = {
    "best": 200,
    "pareto": 200,
    "sensitivity": 150,
    "calibrate_options": 150,
    "calibrate_tables": 80,
    "validate_files": 150,
    "spec_fields": 300,
    "hf_config": 200,
    "preset_files": 200,
    "sweep_files": 150,
    "io_load": 120,
    "cli": 400,
    "stream": 200,
}
RAN: dict[str, int] = {}  # examples each test really generated in this session


def fuzz(name):
    """settings + bookkeeping for one fuzz test."""

    def wrap(fn):
        fn = settings(
            max_examples=EXAMPLES[name],
            deadline=None,
            derandomize=True,
            suppress_health_check=[
                HealthCheck.too_slow,
                HealthCheck.function_scoped_fixture,
                HealthCheck.filter_too_much,
            ],
        )(fn)
        fn._fuzz_name = name
        return fn

    return wrap


def ran(name):
    RAN[name] = RAN.get(name, 0) + 1


NAN = float("nan")
MISSING = object()
_PY_SIGNATURE = re.compile(r"unexpected keyword argument|missing \d+ required|got multiple values")


class Odd:
    def __repr__(self):
        return "<Odd>"


def shows(value, msg: str) -> bool:
    """``msg`` shows ``value`` (its repr or str; NaN as 'nan')."""
    if isinstance(value, float) and math.isnan(value):
        return "nan" in msg
    texts = {repr(value), str(value)}
    if isinstance(value, float):
        texts.add(f"{value:g}")
    return any(t in msg for t in texts)


def rejects(call, *needles, value=MISSING):
    """``call()`` raises SpecError (or Python's own TypeError for a keyword that is missing or
    unknown) whose message names every needle (one of the alternatives where a needle is a tuple)
    and shows ``value``. Any other exception propagates and fails the test."""
    try:
        call()
    except SpecError as e:
        msg = str(e)
    except TypeError as e:
        msg = str(e)
        assert _PY_SIGNATURE.search(msg), f"a TypeError that is not Python's keyword check: {msg}"
    else:
        raise AssertionError(f"malformed input accepted (needles {needles}, value {value!r})")
    assert msg.strip(), "empty message"
    for needle in needles:
        alternatives = needle if isinstance(needle, tuple) else (needle,)
        assert any(a in msg for a in alternatives), f"{alternatives} not named in: {msg}"
    if value is not MISSING:
        assert shows(value, msg), f"value {value!r} not shown in: {msg}"
    return msg


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("malformed")


# ============================================================================ shared pools

# not a number (or not a finite one), for numeric fields and options
NOT_NUMBERS = [
    NAN,
    float("inf"),
    float("-inf"),
    "1",
    "x",
    "",
    None,
    True,
    False,
    [1],
    (1,),
    {},
    {"a": 1},
    b"1",
    complex(1, 1),
    Odd(),
    10**400,
    -(10**400),
    np.array([1.0, 2.0]),
]
NAN_LIKE = [NAN, np.float64("nan"), np.float32("nan")]
ODD_TEXT = st.text(alphabet="abcxyz_019 -./", min_size=0, max_size=12)


def unknown_names(known):
    known = set(known)
    return ODD_TEXT.filter(lambda s: s not in known)


# ============================================================================ best / pareto


@pytest.fixture(scope="module")
def ds():
    return tp.sweep(model="llama-3.1-8b", hardware="h100-sxm", batch=[1, 8], tp=[1, 2], weight_dtype=["bf16", "fp8"])


COND_VARS = ["tpot", "tokens_per_s_per_user", "ttft", "feasible", "memory_per_gpu"]
BAD_COMPARISONS = ["=>", "=<", "=", "!=", "", "ge", " >=", ">= ", "<>", None, 5, True, b">="]
BAD_THRESHOLDS = [
    NAN,
    np.float64("nan"),
    "20",
    "",
    None,
    True,
    False,
    np.bool_(True),
    complex(1, 0),
    [1],
    (1,),
    b"1",
    Decimal("1"),
    Odd(),
    10**400,
    -(10**400),
    {},
]
BAD_CONDITIONS = ["<1", 1, 1.5, None, ("<",), ("<", 1, 2), (), [], {"<": 1}, ("<", 1, "extra"), Odd(), "tpot<1"]


def bad_where(ds_vars):
    not_a_mapping = st.sampled_from(
        [[("tpot", ("<", 1))], "tpot<1", 5, 1.5, True, ("tpot",), Odd(), b"x", [["tpot", "<", 1]], {"tpot", "ttft"}]
    )
    bad_key = st.one_of(unknown_names(ds_vars), st.sampled_from([5, None, 1.5, ("tpot",), b"tpot"])).map(
        lambda k: {k: ("<", 1.0)}
    )
    bad_comparison = st.tuples(st.sampled_from(COND_VARS), st.sampled_from(BAD_COMPARISONS), st.floats(-1e6, 1e6)).map(
        lambda t: {t[0]: (t[1], t[2])}
    )
    bad_threshold = st.tuples(
        st.sampled_from(COND_VARS), st.sampled_from([">=", "<", "==", ">", "<="]), st.sampled_from(BAD_THRESHOLDS)
    ).map(lambda t: {t[0]: (t[1], t[2])})
    bad_shape = st.tuples(st.sampled_from(COND_VARS), st.sampled_from(BAD_CONDITIONS)).map(lambda t: {t[0]: t[1]})
    op_dim = st.sampled_from(["prefill_op_time", "decode_op_bytes"]).map(lambda k: {k: ("<", 1.0)})
    # one bad condition among good ones
    mixed = st.tuples(bad_threshold, st.floats(0, 1e3)).map(lambda t: {"ttft": ("<", t[1]), **t[0]})
    return st.one_of(not_a_mapping, bad_key, bad_comparison, bad_threshold, bad_shape, op_dim, mixed)


BAD_BOOLS = [1, 0, "yes", "true", None, NAN, np.float64(1.0), [True], (True,), Odd(), b"1"]


@st.composite
def best_case(draw, ds_vars):
    kind = draw(st.sampled_from(["objective", "where", "keep", "maximize"]))
    kw = {"objective": "tokens_per_s_per_gpu"}
    if kind == "objective":
        kw["objective"] = draw(
            st.one_of(
                unknown_names(ds_vars), st.sampled_from([5, None, NAN, True, ["tpot"], ("tpot",), Odd(), b"tpot"])
            )
        )
        value = kw["objective"]
    elif kind == "where":
        kw["where"] = value = draw(bad_where(ds_vars))
    elif kind == "keep":
        kw["keep"] = value = draw(
            st.one_of(
                st.lists(
                    st.sampled_from(["batch", "tp", "weight_dtype", "op", "hardware", "model", "nope", 5, None]),
                    min_size=1,
                    max_size=4,
                ).filter(
                    lambda ks: (
                        not (set(ks) <= {"batch", "tp", "weight_dtype"} and len(set(ks)) == len(ks) and len(ks) < 3)
                    )
                ),
                st.sampled_from([5, 1.5, None, True, Odd(), ["batch", "tp", "weight_dtype"], "op", "nope"]),
            )
        )
    else:
        kw["maximize"] = value = draw(st.sampled_from([b for b in BAD_BOOLS if b is not None]))  # None: default
    return kind, kw, value


@fuzz("best")
@given(data=st.data(), via=st.sampled_from(["accessor", "function"]))
def test_best_rejects_malformed_objective_where_keep_maximize(ds, data, via):
    ran("best")
    kind, kw, value = data.draw(best_case(list(ds.data_vars)))
    objective = kw.pop("objective")
    call = (
        (lambda: ds.tperf.best(objective, **kw))
        if via == "accessor"
        else (lambda: reductions.best(ds, objective, **kw))
    )
    needle = {"objective": "objective", "where": "where", "keep": ("keep", "dimension"), "maximize": "maximize"}[kind]
    msg = rejects(call, needle)
    if kind in ("objective", "maximize"):
        assert shows(value, msg), msg


@st.composite
def pareto_case(draw, ds_vars):
    kind = draw(st.sampled_from(["x", "y", "same", "over", "where", "maximize", "extra"]))
    kw = {}
    bad_var = st.one_of(unknown_names(ds_vars), st.sampled_from([5, None, NAN, True, ["tpot"], Odd()]))
    if kind in ("x", "y"):
        kw[kind] = draw(bad_var)
    elif kind == "same":
        kw["x"] = kw["y"] = draw(st.sampled_from(["tpot", "tokens_per_s_per_gpu", "ttft"]))
    elif kind == "over":
        kw["over"] = draw(
            st.one_of(
                st.lists(
                    st.sampled_from(["batch", "tp", "op", "hardware", "nope", 5, None]), min_size=1, max_size=3
                ).filter(lambda ks: not (set(ks) <= {"batch", "tp"} and len(set(ks)) == len(ks))),
                st.sampled_from([[], (), 5, 1.5, True, Odd(), "op", "nope"]),
            )
        )
    elif kind == "where":
        kw["where"] = draw(bad_where(ds_vars))
    elif kind == "maximize":
        kw["maximize"] = draw(
            st.sampled_from(
                [
                    True,
                    False,
                    (True,),
                    (True, True, True),
                    (1, 0),
                    "tt",
                    [NAN, True],
                    (True, "yes"),
                    Odd(),
                    1,
                ]  # (None: default)
            )
        )
    else:
        kw["extra"] = draw(
            st.one_of(
                st.lists(
                    st.one_of(unknown_names(ds_vars), st.sampled_from(["prefill_op_time", 5, None])),
                    min_size=1,
                    max_size=3,
                ),
                st.sampled_from([5, 1.5, True, Odd(), None, "nope", "decode_op_time"]),
            )
        )
    return kind, kw


@fuzz("pareto")
@given(data=st.data(), via=st.sampled_from(["pareto", "pareto_table", "accessor"]))
def test_pareto_rejects_malformed_variables_over_where_maximize_extra(ds, data, via):
    ran("pareto")
    kind, kw = data.draw(pareto_case(list(ds.data_vars)))
    if kind == "extra":
        via = "pareto_table" if via == "pareto" else via
    if via == "pareto":
        call = lambda: reductions.pareto(ds, **kw)  # noqa: E731
    elif via == "pareto_table":
        call = lambda: reductions.pareto_table(ds, **kw)  # noqa: E731
    elif kind == "extra":
        call = lambda: ds.tperf.pareto_table(**kw)  # noqa: E731
    else:
        call = lambda: ds.tperf.pareto(**kw)  # noqa: E731
    needle = {
        "x": "x",
        "y": "y",
        "same": "x and y",
        "over": ("over", "dimension"),
        "where": "where",
        "maximize": "maximize",
        "extra": "extra",
    }[kind]
    msg = rejects(call, needle)
    if kind in ("x", "y", "maximize"):
        assert shows(kw[kind], msg), msg


STREAM_GRID = dict(model="llama-3.1-8b", hardware="h100-sxm", batch=[1, 8], tp=[1, 2], weight_dtype=["bf16", "fp8"])
BAD_MEMORY = [
    0,
    -1,
    -1e9,
    NAN,
    float("inf"),
    True,
    None,
    "lots",
    "",
    "2XB",
    "GB",
    "-2GB",
    "1e400GB",
    [1],
    Odd(),
    complex(1, 1),
]
BAD_CHUNKS = [0, -1, 1.5, NAN, True, "10", [10], 2.0, Odd()]
BAD_CLIENTS = [5, 1.5, True, [], {}, Odd(), b"tcp://x"]


@st.composite
def stream_case(draw, ds_vars):
    """One malformed argument of tensorperf.best / pareto / reduce (the streamed reductions)."""
    kind = draw(st.sampled_from(["best", "pareto", "memory", "chunk_points", "progress", "client", "reduction"]))
    if kind == "best":
        sub, kw, _ = draw(best_case(ds_vars))
        return (
            "best",
            kw,
            {"objective": "objective", "where": "where", "keep": ("keep", "dimension"), "maximize": "maximize"}[sub],
        )
    if kind == "pareto":
        sub, kw = draw(pareto_case(ds_vars).filter(lambda c: c[0] != "extra"))
        return (
            "pareto",
            kw,
            {
                "x": "x",
                "y": "y",
                "same": "x and y",
                "over": ("over", "dimension"),
                "where": "where",
                "maximize": "maximize",
            }[sub],
        )
    if kind == "reduction":
        return "reduce", {"reduction": draw(st.sampled_from([5, None, Odd(), "best", object(), [1]]))}, "reduction"
    values = {
        "memory": BAD_MEMORY,
        "chunk_points": BAD_CHUNKS,
        "progress": [b for b in BAD_BOOLS if b is not None],
        "client": BAD_CLIENTS,
    }
    entries = ["best", "pareto"] + (["sweep"] if kind in ("chunk_points", "client") else [])  # sweep(client=...)
    return draw(st.sampled_from(entries)), {kind: draw(st.sampled_from(values[kind]))}, kind


@fuzz("stream")
@given(data=st.data())
def test_streamed_reductions_reject_malformed_arguments(ds, data):
    ran("stream")
    entry, kw, needle = data.draw(stream_case(list(ds.data_vars)))
    if entry == "best":
        objective = kw.pop("objective", "tokens_per_s_per_gpu")
        call = lambda: tp.best(objective, **kw, **STREAM_GRID)  # noqa: E731
    elif entry == "pareto":
        call = lambda: tp.pareto(**kw, **STREAM_GRID)  # noqa: E731
    elif entry == "sweep":
        call = lambda: tp.sweep(**kw, **STREAM_GRID)  # noqa: E731
    else:
        call = lambda: tp.reduce(kw["reduction"], **STREAM_GRID)  # noqa: E731
    rejects(call, needle)


def test_reductions_reject_what_is_not_a_dataset(ds):
    for value in (5, None, ds["tpot"], {"tpot": 1}, Odd()):
        rejects(lambda v=value: reductions.best(v, "tpot"), "Dataset")
        rejects(lambda v=value: reductions.pareto(v), "Dataset")
        rejects(lambda v=value: reductions.pareto_table(v), "Dataset")
        rejects(lambda v=value: reductions.constraint_mask(v, None), "Dataset")


# ============================================================================ sensitivity

SENSITIVITY_AXES = {
    "batch": [0, -1, 1.5, "x", [1, 1], NAN],
    "tp": [0, [1, "a"], 10**30],
    "prompt_len": [0, -5],
    "model": ["nope", 5, None],
    "hardware": ["h100", 3.0],
    "weight_dtype": ["fp6", 8],
    "frobnicate": [1],
    "hbm_bandwidth": [-1, NAN],
    "num_kv_heads_scale": [0, "x"],
}


@st.composite
def sensitivity_case(draw):
    kind = draw(st.sampled_from(["of", "wrt", "efficiency", "convention", "axes"]))
    kw = {
        "of": "tpot",
        "wrt": ["compute", "hbm_bandwidth"],
        "model": "llama-3.1-8b",
        "hardware": "h100-sxm",
        "batch": [1, 4],
    }
    if kind == "of":
        kw["of"] = draw(
            st.one_of(
                unknown_names({"tpot", "ttft", "e2e_latency", "mfu", "mbu"}),
                st.sampled_from(
                    [5, None, NAN, ["tpot"], {"tpot": 1}, "feasible", "infeasible_reason", "prefill_op_time", Odd()]
                ),
            )
        )
        return kind, kw, ("of", "metric"), kw["of"]
    if kind == "wrt":
        kw["wrt"] = draw(
            st.one_of(
                st.sampled_from(["compute", "", [], (), None, 5, 1.5, True, Odd(), {"compute": 1}]),
                st.lists(
                    st.one_of(
                        unknown_names(SENSITIVITY_PARAMETERS),
                        st.sampled_from([5, None, ["compute"], "name", "source", "efficiency"]),
                    ),
                    min_size=1,
                    max_size=3,
                ),
                st.sampled_from([["compute", "compute"], ["memory", "hbm_bandwidth", "memory"]]),
            )
        )
        return kind, kw, "wrt", MISSING
    if kind == "efficiency":
        kw["efficiency"] = draw(
            st.one_of(
                st.sampled_from([5, "compute", [("compute", 0.5)], True, Odd()]),
                st.tuples(
                    st.sampled_from(["compute", "memory", "overlap", "step_overhead", "memory_scale"]),
                    st.sampled_from([0, -0.5, 1.5, NAN, "x", None, True, 10**400, float("inf")]),
                )
                .filter(
                    lambda t: (
                        not (
                            t[0] in ("step_overhead", "memory_scale")
                            and t[1] in (0, 1.5)
                            and t[1] is not True
                            and not (t[0] == "memory_scale" and t[1] == 0)
                        )
                        and not (t[0] == "overlap" and t[1] == 0)
                    )
                )
                .map(lambda t: {t[0]: t[1]}),
                unknown_names([]).map(lambda k: {k or "?": 0.5}),
            )
        )
        return kind, kw, ("efficiency", "Efficiency"), MISSING
    if kind == "convention":
        kw["convention"] = draw(st.sampled_from(["seed", "nope", 5, None, "", ["roofline"]]))
        return kind, kw, "convention", kw["convention"]
    field = draw(st.sampled_from(sorted(SENSITIVITY_AXES)))
    kw[field] = draw(st.sampled_from(SENSITIVITY_AXES[field]))
    return kind, kw, field.removesuffix("_scale"), MISSING


@fuzz("sensitivity")
@given(case=sensitivity_case())
def test_sensitivity_rejects_malformed_of_wrt_efficiency_and_axes(case):
    ran("sensitivity")
    kind, kw, needle, value = case
    msg = rejects(lambda: tp.sensitivity(**kw), needle)
    if value is not MISSING:
        assert shows(value, msg), msg


# ============================================================================ calibrate


@pytest.fixture(scope="module")
def few_rows():
    """Six usable rows of data/measurements.csv (kept small: a bad option must fail before any fit)."""
    rows = fidelity.load_measurements(MEASUREMENTS)
    ok = fidelity.map_rows(rows)["status"].eq("ok")
    return rows[ok.to_numpy()].head(6).reset_index(drop=True)


BAD_OPTIONS = {
    "factors": [
        "compute",
        "",
        [],
        (),
        None,
        5,
        True,
        Odd(),
        ["nope"],
        ["compute", 5],
        [None],
        [["compute"]],
        ["compute", "compute"],
        [["memory"]],
        ["Compute"],
        ["seed"],
    ],
    "train_fraction": [0, 1, -0.1, 1.5, NAN, float("inf"), "0.5", None, True, False, [0.5], 10**400],
    "seed": [-1, 1.5, "0", None, True, NAN, [0], Odd(), -(10**30)],
    "steps": [-1, 1.5, "10", None, True, NAN, float("inf"), 10**30, [1], 10**400],
    "lr": [0, -0.01, NAN, float("inf"), "0.1", None, True, [0.1], 10**400, -(10**400)],
}


@fuzz("calibrate_options")
@given(
    option=st.sampled_from(sorted(BAD_OPTIONS)),
    data=st.data(),
    others=st.fixed_dictionaries({}, optional={"seed": st.integers(0, 5), "steps": st.integers(0, 3)}),
)
def test_calibrate_rejects_malformed_options_before_fitting(few_rows, option, data, others):
    ran("calibrate_options")
    value = data.draw(st.sampled_from(BAD_OPTIONS[option]))
    kw = {k: v for k, v in others.items() if k != option} | {option: value}
    msg = rejects(
        lambda: calibrate_module.calibrate(few_rows, **kw), option.removesuffix("s") if option == "factors" else option
    )
    if option != "factors":
        assert shows(value, msg), msg


@st.composite
def bad_table(draw, rows):
    kind = draw(
        st.sampled_from(
            [
                "not_a_table",
                "missing_file",
                "drop_column",
                "bad_number",
                "duplicate_id",
                "no_usable_row",
                "empty",
                "bad_count",
            ]
        )
    )
    if kind == "not_a_table":
        return kind, draw(st.sampled_from([5, None, 1.5, [1, 2], {"a": 1}, Odd(), b"x", True])), "measurements"
    if kind == "missing_file":
        return kind, draw(st.sampled_from(["/nonexistent/m.csv", "no-such-file.csv", ""])), ("no such", "path")
    frame = rows.copy()
    if kind == "drop_column":
        col = draw(st.sampled_from(list(fidelity.REQUIRED_COLUMNS)))
        return kind, frame.drop(columns=[col]), col
    if kind == "bad_number":
        col = draw(st.sampled_from(list(fidelity.NUMERIC_COLUMNS)))
        frame[col] = frame[col].astype(object)
        frame.loc[draw(st.integers(0, len(frame) - 1)), col] = draw(st.sampled_from(["x", "1,5", "--", [1], "1e"]))
        return kind, frame, col
    if kind == "bad_count":
        col = draw(st.sampled_from(["num_gpus", "tp", "pp", "dp", "ep", "batch", "isl", "osl"]))
        frame[col] = frame[col].astype(float)
        frame.loc[draw(st.integers(0, len(frame) - 1)), col] = draw(
            st.sampled_from([0, -1, 1.5, float("inf"), -float("inf"), 1e300, 2.0**60])
        )
        return kind, frame, col
    if kind == "duplicate_id":
        frame.loc[len(frame) - 1, "id"] = frame.loc[0, "id"]
        return kind, frame, "id"
    if kind == "empty":
        return kind, frame.iloc[0:0], ("no usable", "rows")
    frame["model"] = draw(st.sampled_from(["nope", "gpt-5", ""]))
    return kind, frame, ("no usable", "rows")


@fuzz("calibrate_tables")
@given(data=st.data())
def test_calibrate_rejects_malformed_measurement_tables(few_rows, data):
    ran("calibrate_tables")
    kind, table, needle = data.draw(bad_table(few_rows))
    rejects(lambda: calibrate_module.calibrate(table, steps=1), needle)


# ============================================================================ validate (files)

CSV_CELLS = ["x", "1,5", "--", "0x10", "1e", "one"]


@st.composite
def bad_measurements_file(draw, text):
    """(file bytes, needle) for a malformed measurements CSV, from the real file's first rows."""
    lines = text.splitlines()
    header, body = lines[0], lines[1:6]
    columns = header.split(",")
    kind = draw(
        st.sampled_from(
            [
                "binary",
                "empty",
                "garbage",
                "drop_column",
                "bad_number",
                "bad_count",
                "duplicate_id",
                "empty_id",
                "header_only_wrong",
                "ragged",
            ]
        )
    )
    if kind == "binary":
        return draw(st.binary(min_size=1, max_size=64).filter(lambda b: b"\n" not in b)) + b"\xff\xfe\x00", None
    if kind == "empty":
        return b"", None
    if kind == "garbage":
        return draw(st.text(alphabet='abc,;"\n 01', min_size=1, max_size=40)).encode(), None
    frame = pd.read_csv(io.StringIO("\n".join([header, *body])), dtype=str, keep_default_na=False)
    if kind == "drop_column":
        col = draw(st.sampled_from(list(fidelity.REQUIRED_COLUMNS)))
        frame = frame.drop(columns=[col])
        needle = col
    elif kind in ("bad_number", "bad_count"):
        col = draw(
            st.sampled_from(
                list(fidelity.NUMERIC_COLUMNS)
                if kind == "bad_number"
                else ["num_gpus", "tp", "pp", "dp", "ep", "batch", "isl", "osl"]
            )
        )
        cell = draw(
            st.sampled_from(CSV_CELLS if kind == "bad_number" else ["0", "-1", "1.5", "inf", "-inf", "1e300", "2e18"])
        )
        frame.loc[draw(st.integers(0, len(frame) - 1)), col] = cell
        needle = col
    elif kind == "duplicate_id":
        frame.loc[len(frame) - 1, "id"] = frame.loc[0, "id"]
        needle = "id"
    elif kind == "empty_id":
        frame.loc[draw(st.integers(0, len(frame) - 1)), "id"] = ""
        needle = "id"
    elif kind == "header_only_wrong":
        return (
            ",".join(
                draw(st.lists(ODD_TEXT.filter(lambda s: "," not in s and s not in columns), min_size=1, max_size=4))
            )
            + "\n"
        ).encode(), "column"
    else:
        raw = frame.to_csv(index=False).splitlines()
        i = draw(st.integers(1, len(raw) - 1))
        raw[i] = raw[i] + ',extra,"cells"'
        return ("\n".join(raw) + "\n").encode(), None
    return frame.to_csv(index=False).encode(), needle


@fuzz("validate_files")
@given(data=st.data(), path_kind=st.sampled_from(["file", "file", "file", "missing", "directory", "not_a_path"]))
def test_validate_rejects_malformed_measurement_files(workdir, data, path_kind):
    ran("validate_files")
    if path_kind == "missing":
        rejects(lambda: fidelity.validate(workdir / "no-such.csv"), "no-such.csv")
        return
    if path_kind == "directory":
        rejects(lambda: fidelity.validate(workdir), str(workdir))
        return
    if path_kind == "not_a_path":
        value = data.draw(st.sampled_from([5, None, 1.5, [MEASUREMENTS], Odd(), True]))
        rejects(lambda: fidelity.validate(value), "path", value=value)
        return
    content, needle = data.draw(bad_measurements_file(MEASUREMENTS.read_text()))
    path = workdir / "measurements-bad.csv"
    path.write_bytes(content)
    rejects(lambda: fidelity.validate(path), str(path), *([needle] if needle else []))


# ============================================================================ spec constructors


def _valid_model_kwargs():
    return dict(
        name="m", num_layers=4, d_model=256, num_heads=8, num_kv_heads=2, head_dim=32, vocab_size=1000, d_ff=512
    )


def _valid_hardware_kwargs():
    return dict(
        name="hw",
        peak_flops_bf16=1e15,
        hbm_bandwidth=3e12,
        hbm_capacity=80e9,
        scaleup_size=8,
        scaleup_bandwidth=450e9,
        scaleout_bandwidth=50e9,
    )


def _bad_values(rule_words: str) -> list:
    """Values that break a rule (by its words), beyond NOT_NUMBERS."""
    out = list(NOT_NUMBERS)
    if "integer" in rule_words:
        out += [1.5, 2**60, -1, np.float64(2.5)]
        if ">= 1" in rule_words:
            out += [0, -0.0]
    elif "(0, 1]" in rule_words:
        out += [0, -0.1, 1.0001, 2]
    elif "[0, 1]" in rule_words:
        out += [-0.1, 1.0001, 2]
    elif "> 0" in rule_words:
        out += [0, -1.0, -1e-300]
    elif ">= 0" in rule_words:
        out += [-1.0, -1e-300]
    elif "true or false" in rule_words:
        return [0, 1, "true", None, 1.0, NAN, [True], "False", Odd()]
    return out


def _rule_words(cls, field):
    rules = cls.CONSTRAINTS[field]
    return " ".join(r.words for r in (rules if isinstance(rules, tuple) else (rules,)))


CROSS_FIELD = {  # (class, overrides, field the message names)
    "kv_heads_divide": (ModelSpec, {"num_heads": 8, "num_kv_heads": 3}, "num_kv_heads"),
    "top_k_too_big": (ModelSpec, {"num_experts": 4, "experts_per_token": 5, "d_ff_expert": 64}, "experts_per_token"),
    "moe_no_width": (ModelSpec, {"num_experts": 4, "experts_per_token": 2}, "d_ff_expert"),
    "top_k_without_experts": (ModelSpec, {"experts_per_token": 2}, "experts_per_token"),
    "dense_prefix_too_long": (ModelSpec, {"first_dense_layers": 9}, "first_dense_layers"),
    "dense_without_d_ff": (ModelSpec, {"d_ff": 0}, "d_ff"),
    "mla_incomplete": (ModelSpec, {"kv_lora_rank": 64}, "qk_rope_head_dim"),
    "window_layers": (ModelSpec, {"sliding_window_layers": 5}, "sliding_window_layers"),
    "chunk_layers": (ModelSpec, {"chunked_layers": 5}, "chunked_layers"),
}


@st.composite
def spec_case(draw):
    kind = draw(
        st.sampled_from(["ModelSpec", "HardwareSpec", "Efficiency", "cross", "name", "nested", "unknown", "missing"])
    )
    if kind in ("ModelSpec", "HardwareSpec", "Efficiency"):
        cls = {"ModelSpec": ModelSpec, "HardwareSpec": HardwareSpec, "Efficiency": Efficiency}[kind]
        field = draw(st.sampled_from(sorted(cls.CONSTRAINTS)))
        value = draw(st.sampled_from(_bad_values(_rule_words(cls, field))))
        base = {"ModelSpec": _valid_model_kwargs, "HardwareSpec": _valid_hardware_kwargs, "Efficiency": dict}[kind]()
        return cls, base | {field: value}, field, value
    if kind == "cross":
        cls, overrides, field = CROSS_FIELD[draw(st.sampled_from(sorted(CROSS_FIELD)))]
        return cls, _valid_model_kwargs() | overrides, field, MISSING
    if kind == "name":
        cls = draw(st.sampled_from([ModelSpec, HardwareSpec]))
        base = _valid_model_kwargs() if cls is ModelSpec else _valid_hardware_kwargs()
        field = draw(st.sampled_from(["name", "source"]))
        value = draw(st.sampled_from([5, None, 1.5, ["m"], Odd(), True, b"m"] + ([""] if field == "name" else [])))
        return cls, base | {field: value}, field, value
    if kind == "nested":
        field = draw(st.sampled_from(["efficiency", "efficiency_fp8", "efficiency_fp4", "seed"]))
        value = draw(
            st.sampled_from(
                [5, "x", {"compute": 0.5}, [0.5], Odd(), True, Efficiency] + ([None] if field == "efficiency" else [])
            )
        )
        return HardwareSpec, _valid_hardware_kwargs() | {field: value}, field, MISSING
    cls = draw(st.sampled_from([ModelSpec, HardwareSpec, Efficiency]))
    base = {ModelSpec: _valid_model_kwargs, HardwareSpec: _valid_hardware_kwargs, Efficiency: dict}[cls]()
    if kind == "unknown":
        key = draw(st.sampled_from(["frobnicate", "numLayers", "peak_flops", "efficiency_fp16", "Compute"]))
        return cls, base | {key: 1}, key, MISSING
    if not base:
        return cls, {"compute": 2.0}, "compute", 2.0
    key = draw(st.sampled_from(sorted(base)))
    del base[key]
    return cls, base, key, MISSING


@fuzz("spec_fields")
@given(case=spec_case())
def test_spec_constructors_reject_malformed_fields(case):
    ran("spec_fields")
    cls, kwargs, field, value = case
    msg = rejects(lambda: cls(**kwargs), field)
    if value is not MISSING and not isinstance(value, np.ndarray):
        assert shows(value, msg), msg


# ============================================================================ from_hf_config

POS, NONNEG, BOOL, STR, NULLABLE = "pos", "nonneg", "bool", "str", "nullable"
HF_KEYS = {  # family fixture -> keys it reads and their kind
    "llama-3.1-8b": {
        "hidden_size": POS,
        "num_hidden_layers": POS,
        "num_attention_heads": POS,
        "num_key_value_heads": POS + NULLABLE,
        "vocab_size": POS,
        "intermediate_size": POS,
        "attention_bias": BOOL,
        "mlp_bias": BOOL,
        "tie_word_embeddings": BOOL,
        "hidden_act": STR,
    },
    "qwen3-235b-a22b": {
        "hidden_size": POS,
        "num_hidden_layers": POS,
        "num_experts": NONNEG,
        "num_experts_per_tok": POS,
        "moe_intermediate_size": POS,
        "decoder_sparse_step": POS,
        "head_dim": POS + NULLABLE,
        "use_sliding_window": BOOL,
    },
    "deepseek-v3": {
        "kv_lora_rank": POS,
        "qk_rope_head_dim": POS,
        "qk_nope_head_dim": POS,
        "v_head_dim": POS,
        "q_lora_rank": NONNEG + NULLABLE,
        "first_k_dense_replace": NONNEG,
        "moe_layer_freq": POS,
        "n_shared_experts": NONNEG + NULLABLE,
        "topk_method": STR,
        "num_attention_heads": POS,
    },
    "gpt-oss-120b": {
        "num_local_experts": POS,
        "num_experts_per_tok": POS,
        "sliding_window": NONNEG + NULLABLE,
        "intermediate_size": POS,
        "attention_bias": BOOL,
    },
    "mixtral-8x7b": {"num_local_experts": POS, "num_experts_per_tok": POS, "sliding_window": NONNEG + NULLABLE},
    "mistral-7b-v0.1": {"sliding_window": NONNEG + NULLABLE, "hidden_size": POS, "vocab_size": POS},
    "qwen2-7b": {"use_sliding_window": BOOL, "max_window_layers": NONNEG, "intermediate_size": POS},
}
HF_REQUIRED = {
    "llama-3.1-8b": ["hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size", "intermediate_size"],
    "deepseek-v3": [
        "kv_lora_rank",
        "qk_rope_head_dim",
        "qk_nope_head_dim",
        "v_head_dim",
        "first_k_dense_replace",
        "moe_intermediate_size",
    ],
    "gpt-oss-120b": ["num_local_experts", "intermediate_size"],
    "qwen3-235b-a22b": ["num_experts", "moe_intermediate_size", "num_experts_per_tok"],
}


def _hf_bad(kind: str) -> list:
    common = ["8", [8], {"a": 1}, 1.5, NAN, float("inf")]
    if kind.startswith(POS):
        out = common + [0, -1, True, 10**400, -(10**400)]
    elif kind.startswith(NONNEG):
        out = common + [-1, True, -(10**400)]
    elif kind.startswith(BOOL):
        out = ["true", 1, 0, [True], {}, 1.0, NAN]
    else:
        out = [5, True, [1], {}, 1.5]
    return out + ([] if kind.endswith(NULLABLE) else [None])


@st.composite
def hf_case(draw):
    """(config document or raw bytes, needle) for a malformed config.json."""
    kind = draw(st.sampled_from(["bad_value", "bad_value", "missing", "structure", "model_type", "text", "cross"]))
    family = draw(st.sampled_from(sorted(HF_KEYS)))
    doc = json.loads((HF / family / "config.json").read_text())
    if kind == "bad_value":
        key, key_kind = draw(st.sampled_from(sorted(HF_KEYS[family].items())))
        doc[key] = draw(st.sampled_from(_hf_bad(key_kind)))
        if key == "max_window_layers":
            doc["use_sliding_window"] = True  # read only then
        return doc, key
    if kind == "missing":
        fam = draw(st.sampled_from(sorted(HF_REQUIRED)))
        doc = json.loads((HF / fam / "config.json").read_text())
        key = draw(st.sampled_from(HF_REQUIRED[fam]))
        del doc[key]
        return doc, key
    if kind == "structure":
        return draw(st.sampled_from([[], [doc], 5, "config", None, 1.5, True])), "config"
    if kind == "model_type":
        choice = draw(st.sampled_from(["unknown", "not_str", "no_type", "text_config"]))
        if choice == "unknown":
            doc["model_type"] = draw(
                unknown_names(
                    [
                        "llama",
                        "mistral",
                        "mixtral",
                        "qwen2",
                        "qwen3",
                        "qwen3_moe",
                        "deepseek_v2",
                        "deepseek_v3",
                        "gpt_oss",
                    ]
                )
            )
        elif choice == "not_str":
            doc["model_type"] = draw(st.sampled_from([5, None, ["llama"], {"a": 1}, True]))
        elif choice == "no_type":
            del doc["model_type"]
            doc["architectures"] = draw(
                st.sampled_from(
                    [
                        5,
                        "LlamaForCausalLM",
                        [["LlamaForCausalLM"]],
                        [None],
                        [5],
                        {"a": 1},
                        ["NopeForCausalLM"],
                        [],
                        None,
                        True,
                    ]
                )
            )
        else:
            doc = {
                "model_type": "llava",
                "text_config": draw(st.sampled_from([5, "x", [doc], None, True, [], {"model_type": "nope"}])),
            }
        return doc, "model_type" if choice != "text_config" else "text_config"
    if kind == "text":
        return draw(
            st.sampled_from(
                [b"", b"{", b"{'a': 1}", b"\xff\xfe\x00garbage", b"[1, 2", b"nul", b'{"model_type": llama}']
            )
        ) + draw(st.binary(max_size=8)), "JSON"
    choice = draw(st.sampled_from(["head_split", "layer_types", "kv_divide", "top_k", "layers_huge"]))
    doc = json.loads((HF / "llama-3.1-8b" / "config.json").read_text())
    if choice == "head_split":
        doc.update(hidden_size=4100, num_attention_heads=32)
        doc.pop("head_dim", None)
        return doc, "head_dim"
    if choice == "layer_types":
        doc = json.loads((HF / "gpt-oss-120b" / "config.json").read_text())
        doc["layer_types"] = draw(
            st.sampled_from(
                [["sliding_attention"], ["nope"] * doc["num_hidden_layers"], "sliding_attention", [1, 2], 5]
            )
        )
        return doc, "layer_types"
    if choice == "kv_divide":
        doc["num_key_value_heads"] = 5
        return doc, "num_kv_heads"
    if choice == "top_k":
        doc = json.loads((HF / "mixtral-8x7b" / "config.json").read_text())
        doc["num_experts_per_tok"] = 9
        return doc, "experts_per_token"
    doc["num_hidden_layers"] = draw(st.sampled_from([10**12, 2**62, 10**30]))
    return doc, "num_hidden_layers"


@fuzz("hf_config")
@given(case=hf_case(), how=st.sampled_from(["file", "folder", "file"]))
def test_from_hf_config_rejects_malformed_configs(workdir, case, how):
    ran("hf_config")
    doc, needle = case
    folder = workdir / "hf-bad"
    folder.mkdir(exist_ok=True)
    path = folder / "config.json"
    path.write_bytes(doc if isinstance(doc, bytes) else json.dumps(doc).encode())
    rejects(lambda: ModelSpec.from_hf_config(folder if how == "folder" else path), str(path), needle)


def test_from_hf_config_rejects_bad_path_and_name_arguments(workdir):
    for value in (5, None, 1.5, [str(HF / "llama-3.1-8b")], Odd()):
        rejects(lambda v=value: ModelSpec.from_hf_config(v), "path", value=value)
    rejects(lambda: ModelSpec.from_hf_config(workdir / "nothing-here"), "nothing-here")
    empty = workdir / "empty-folder"
    empty.mkdir(exist_ok=True)
    rejects(lambda: ModelSpec.from_hf_config(empty), "config.json")
    for name in (5, "", ["x"]):
        rejects(lambda n=name: ModelSpec.from_hf_config(HF / "llama-3.1-8b", name=n), "name")


# ============================================================================ TOML writer for the file tests


def _toml_value(value) -> str:
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return (
            repr(value)
            if not (isinstance(value, float) and value.is_integer())
            else f"{value:.1f}"
            if abs(value) < 1e16
            else repr(value)
        )
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


class Raw:
    """A TOML literal written as is (possibly invalid TOML)."""

    def __init__(self, text):
        self.text = text

    def __repr__(self):
        return self.text


def to_toml(doc: dict) -> str:
    lines, tables = [], []
    for key, value in doc.items():
        if isinstance(value, dict) and not isinstance(value, Raw):
            tables.append((key, value))
        else:
            lines.append(f"{json.dumps(key)} = {_toml_value(value)}")
    for name, table in tables:
        sub = [(k, v) for k, v in table.items() if isinstance(v, dict)]
        lines.append(f"\n[{json.dumps(name)}]")
        lines += [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in table.items() if not isinstance(v, dict)]
        for k, v in sub:
            lines.append(f"\n[{json.dumps(name)}.{json.dumps(k)}]")
            lines += [f"{json.dumps(kk)} = {_toml_value(vv)}" for kk, vv in v.items()]
    return "\n".join(lines) + "\n"


def test_the_toml_writer_round_trips_the_presets():
    for kind, ids in (("models", presets.models()), ("hardware", presets.hardware())):
        for pid in ids[:4]:
            doc = tomllib.loads((PRESETS / kind / f"{pid}.toml").read_text())
            assert tomllib.loads(to_toml(doc)) == doc


BAD_TOML_VALUES = {
    POS: ["0", "-1", "1.5", '"8"', "true", "[1]", "{a = 1}", "nan", "inf", "-inf", "1e400", "2024-01-01", "12:00:00"],
    "float": ["0", "-1.0", "nan", "inf", "-inf", '"1e12"', "true", "[1.0]", "{a = 1}", "1e400", "2024-01-01"],
    BOOL: ["1", "0", '"true"', "[true]", "1.0", "nan"],
    "eff": ["0", "-0.5", "1.5", "nan", "inf", '"0.5"', "true", "[0.5]", "{a = 1}"],
}
MODEL_FILE_KEYS = {
    "num_layers": POS,
    "d_model": POS,
    "num_heads": POS,
    "num_kv_heads": POS,
    "head_dim": POS,
    "vocab_size": POS,
    "gated_mlp": BOOL,
    "tie_embeddings": BOOL,
}
HARDWARE_FILE_KEYS = {
    "peak_flops_bf16": "float",
    "hbm_bandwidth": "float",
    "hbm_capacity": "float",
    "scaleup_size": POS,
    "scaleup_bandwidth": "float",
    "scaleout_bandwidth": "float",
    "scaleup_mesh": BOOL,
}
SYNTAX_ERRORS = [
    "num_layers = ",
    "= 5",
    "[unclosed",
    "num_layers = 1\nnum_layers = 2",
    "a = 'x\n",
    "a = [1, 2",
    "[[efficiency]]\ncompute = 1\n[efficiency]",
    "x = {a = 1,}",
    "x = 1 2",
    "\x00 = 1",
]


@st.composite
def preset_file_case(draw):
    """(kind, file bytes, needles) for a malformed model or hardware TOML file."""
    kind = draw(st.sampled_from(["model", "hardware"]))
    pid = "llama-3.1-8b" if kind == "model" else draw(st.sampled_from(["h100-sxm", "mi300-seed", "b200"]))
    doc = tomllib.loads((PRESETS / ("models" if kind == "model" else "hardware") / f"{pid}.toml").read_text())
    keys = MODEL_FILE_KEYS if kind == "model" else HARDWARE_FILE_KEYS
    how = draw(
        st.sampled_from(["value", "value", "missing", "unknown", "syntax", "binary", "empty", "table", "top_level"])
    )
    if how == "value":
        key, key_kind = draw(st.sampled_from(sorted(keys.items())))
        doc[key] = Raw(draw(st.sampled_from(BAD_TOML_VALUES[key_kind])))
        return kind, to_toml(doc).encode(), (key,)
    if how == "missing":
        key = draw(st.sampled_from(sorted(k for k in keys if k not in ("gated_mlp", "tie_embeddings", "scaleup_mesh"))))
        doc.pop(key, None)
        return kind, to_toml(doc).encode(), (key,)
    if how == "unknown":
        key = draw(st.sampled_from(["frobnicate", "numLayers", "name", "peak_flops", "efficiency_fp16", "num_layer"]))
        doc[key] = 1
        return kind, to_toml(doc).encode(), (key,)
    if how == "syntax":
        text = draw(st.sampled_from(SYNTAX_ERRORS)) + draw(st.text(alphabet="abc=[]{}\"'\n 1.", max_size=10))
        return kind, (to_toml(doc) + "\n" + text).encode(), ("TOML", "key")
    if how == "binary":
        return kind, draw(st.binary(min_size=1, max_size=32)) + b"\xff\xfe\x80", ("TOML", "UTF-8", "utf-8")
    if how == "empty":
        return kind, draw(st.sampled_from([b"", b"# nothing\n", b"id = 'x'\n"])), ("missing", "required")
    if how == "top_level":
        doc = {draw(st.sampled_from(["model", "spec", "hardware"])): doc}
        return kind, to_toml({"x": 1} | doc).encode(), ("unknown", "missing")
    # a bad table: [efficiency], [efficiency.fp8], [seed], [sources]
    if kind == "model":
        doc["efficiency"] = draw(st.sampled_from([{"compute": 0.5}, Raw("5")]))
        return kind, to_toml(doc).encode(), ("efficiency",)
    table = draw(st.sampled_from(["efficiency", "efficiency.fp8", "seed", "sources"]))
    if table == "efficiency":
        doc["efficiency"] = draw(
            st.sampled_from(
                [
                    Raw("5"),
                    Raw('"x"'),
                    Raw("[1, 2]"),
                    Raw("true"),
                    {"compute": Raw(draw(st.sampled_from(BAD_TOML_VALUES["eff"])))},
                    {"frobnicate": 0.5},
                    {"compute_scale": 0.5},
                ]
            )
        )
        return kind, to_toml(doc).encode(), ("efficiency",)
    if table == "efficiency.fp8":
        eff = dict(doc.get("efficiency", {}))
        eff["fp8"] = draw(st.sampled_from([{"memory": Raw("1.5")}, {"nope": 0.5}, {"fp4": {"compute": 0.5}}, Raw("5")]))
        doc["efficiency"] = eff
        return kind, to_toml(doc).encode(), ("efficiency",)
    if table == "seed":
        doc["seed"] = draw(st.sampled_from([Raw("5"), Raw('"x"'), {"num_cus": 304}, {"frobnicate": 1}, Raw("[1]")]))
        return kind, to_toml(doc).encode(), ("seed",)
    doc["sources"] = Raw(draw(st.sampled_from(["5", '"x"', "[1, 2]"])))
    doc["frobnicate"] = 1  # sources may be anything; the unknown key is the error
    return kind, to_toml(doc).encode(), ("frobnicate",)


@fuzz("preset_files")
@given(case=preset_file_case())
def test_preset_file_loaders_reject_malformed_toml(workdir, case):
    ran("preset_files")
    kind, content, needles = case
    path = workdir / f"bad-{kind}.toml"
    path.write_bytes(content)
    load = presets.load_model_file if kind == "model" else presets.load_hardware_file
    rejects(lambda: load(path), str(path), needles)


def test_preset_loaders_reject_bad_paths_and_ids(workdir):
    for load in (presets.load_model_file, presets.load_hardware_file):
        for value in (5, None, 1.5, [str(workdir)], Odd()):
            rejects(lambda f=load, v=value: f(v), "path", value=value)
        rejects(lambda f=load: f(workdir / "missing.toml"), "missing.toml")
        rejects(lambda f=load: f(workdir), str(workdir))
    for value in ("nope", 5, None, ["llama-3.1-8b"], ""):
        rejects(lambda v=value: presets.model(v), "model preset", value=value)
        rejects(lambda v=value: presets.hardware_spec(v), "hardware preset", value=value)


# ============================================================================ sweep files


def _valid_sweep_doc():
    return {
        "description": "a small grid",
        "convention": "roofline",
        "sweep": {"model": "llama-3.1-8b", "hardware": "h100-sxm", "batch": [1, 2], "tp": [1, 2]},
        "efficiency": {"memory": 0.8},
        "best": {
            "objective": "tokens_per_s_per_gpu",
            "where": ["tokens_per_s_per_user >= 20"],
            "keep": ["hardware"],
            "maximize": True,
        },
    }


BAD_SWEEP_VALUES = {
    "model": ['"nope"', "5", "[]", "[[1]]", "{a = 1}", "true", '["llama-3.1-8b", 5]'],
    "hardware": ['"h100"', "3.0", "[]", "{a = 1}", "false"],
    "batch": ["0", "-1", "1.5", '"many"', "[]", "[1, 1]", "[[1]]", "{a = 1}", "true", "nan", "inf", '[1, "a"]'],
    "tp": ["0", "-2", "2.5", '"x"', "[]", "[0, 1]", "1e400"],
    "weight_dtype": ['"fp6"', "8", "[]", '["bf16", "bf16"]'],
    "prompt_len": ["0", "-1", "nan", '"1k"', "9007199254740993"],
    "zipped": ['"tp"', "5", '["nope"]', '["tp", "prompt_len"]', "[1]", "true"],
    "hbm_bandwidth_scale": ["0", "-1", "nan", '"x"', "true"],
    "num_kv_heads": ["0", "-1", "1.5", '"x"'],
}


@st.composite
def sweep_file_case(draw):
    doc = _valid_sweep_doc()
    how = draw(st.sampled_from(["sweep_value", "sweep_value", "unknown", "tables", "best", "syntax", "binary"]))
    if how == "sweep_value":
        key = draw(st.sampled_from(sorted(BAD_SWEEP_VALUES)))
        doc["sweep"][key] = Raw(draw(st.sampled_from(BAD_SWEEP_VALUES[key])))
        return to_toml(doc).encode(), (key, "zip")
    if how == "unknown":
        where = draw(st.sampled_from(["top", "sweep", "best", "efficiency"]))
        key = draw(st.sampled_from(["frobnicate", "batches", "Batch", "keep_dims", "efficency"]))
        (doc if where == "top" else doc[where])[key] = 1
        return to_toml(doc).encode(), (key,)
    if how == "tables":
        key = draw(st.sampled_from(["sweep", "efficiency", "convention", "description", "best", "no_sweep"]))
        if key == "no_sweep":
            del doc["sweep"]
            return to_toml(doc).encode(), ("[sweep]",)
        doc[key] = Raw(
            draw(
                st.sampled_from(
                    {
                        "sweep": ["5", '"x"', "[1]"],
                        "efficiency": [
                            "5",
                            '"x"',
                            "{memory = 2}",
                            '{memory = "x"}',
                            "{nope = 0.5}",
                            "{memory = nan}",
                            "{memory = true}",
                        ],
                        "convention": ['"nope"', "5", "[1]", "{a = 1}", "true"],
                        "description": ["5", "[1]", "true"],
                        "best": ["5", '"x"', "[1]"],
                    }[key]
                )
            )
        )
        return to_toml(doc).encode(), (key,)
    if how == "best":
        key = draw(st.sampled_from(["objective", "where", "keep", "maximize"]))
        doc["best"][key] = Raw(
            draw(
                st.sampled_from(
                    {
                        "objective": ["5", "[1]", "true"],
                        "where": [
                            '["x"]',
                            '["tpot <"]',
                            '["tpot => 1"]',
                            "5",
                            "[5]",
                            '["tpot < abc"]',
                            '["1 < tpot"]',
                            "{a = 1}",
                        ],
                        "keep": ["5", "[5]", "true", "{a = 1}"],
                        "maximize": ['"yes"', "1", "[true]"],
                    }[key]
                )
            )
        )
        return to_toml(doc).encode(), (key,)
    if how == "syntax":
        return (to_toml(doc) + draw(st.sampled_from(SYNTAX_ERRORS))).encode(), ("TOML", "key")
    return draw(st.binary(min_size=1, max_size=32)) + b"\xff\xfe\x80", ("TOML", "UTF-8", "utf-8")


@fuzz("sweep_files")
@given(case=sweep_file_case())
def test_sweep_file_loader_rejects_malformed_files(workdir, case):
    ran("sweep_files")
    content, needles = case
    path = workdir / "bad-sweep.toml"
    path.write_bytes(content)
    rejects(lambda: sweepfile.load(path), str(path), needles)


# ============================================================================ io readers


@st.composite
def io_case(draw):
    """(file name, bytes or None for no file or 'dir' for a directory, needle)."""
    how = draw(
        st.sampled_from(["suffix", "missing", "garbage", "json_structure", "json_structure", "csv", "directory"])
    )
    if how == "suffix":
        name = draw(st.sampled_from(["r.txt", "r", "r.NC", "r.nc.bak", "r.toml", "r.parquet", "r.", ".json.x"]))
        return name, b"{}", "extension"
    if how == "missing":
        return draw(st.sampled_from(["absent.nc", "absent.json", "absent.csv", "absent.zarr"])), None, "absent"
    if how == "garbage":
        suffix = draw(st.sampled_from([".nc", ".json", ".csv", ".zarr"]))
        content = draw(st.one_of(st.binary(max_size=48), st.text(max_size=48).map(str.encode)))
        return "garbage" + suffix, content + b"\xff\x00", "garbage"
    if how == "directory":
        suffix = draw(st.sampled_from([".nc", ".json", ".csv", ".zarr"]))
        return "folder" + suffix, "dir", "folder"
    if how == "csv":
        content = draw(
            st.sampled_from([b"", b"\n\n", b"\xff\xfe\x00", b"batch,tp\n1,2\n1,2\n", b"tp,ttft\n1,2\n1,3\n"])
        )
        return "table.csv", content, "table.csv"
    doc = draw(
        st.sampled_from(
            [
                [],
                5,
                "x",
                None,
                {"data_vars": 5},
                {"data_vars": {"a": 5}},
                {"data_vars": {"a": {"dims": ["x"]}}},
                {"data_vars": {"a": {"dims": ["x"], "data": [1, 2], "dtype": "nope"}}},
                {"data_vars": {"a": {"dims": ["x", "y"], "data": [1, 2]}}},
                {"data_vars": {"a": {"dims": 5, "data": [1, 2]}}},
                {"data_vars": {"a": {"dims": ["x"], "data": [[1], [2, 3]]}}},
                {"data_vars": {}, "attrs": 5},
                {"data_vars": {}, "coords": 5},
                {"data_vars": {}, "coords": {"x": {"dims": ["x", "y"], "data": [1, 1]}}},
                {"coords": {}},
                {
                    "data_vars": {"a": {"dims": ["x"], "data": [1, 2]}},
                    "coords": {"x": {"dims": ["x"], "data": [1, 2, 3]}},
                },
            ]
        )
    )
    return "structure.json", json.dumps(doc).encode(), "structure.json"


@fuzz("io_load")
@given(case=io_case())
def test_io_load_rejects_bad_suffixes_missing_and_corrupt_files(workdir, case):
    ran("io_load")
    name, content, needle = case
    folder = workdir / "io"
    folder.mkdir(exist_ok=True)
    path = folder / name
    if path.is_dir() and content != "dir":
        import shutil

        shutil.rmtree(path)
    elif path.exists() and not path.is_dir():
        path.unlink()
    if content == "dir":
        path.mkdir(exist_ok=True)
    elif content is not None:
        path.write_bytes(content)
    rejects(lambda: tio.load(path), needle)


def test_io_rejects_bad_path_arguments(ds):
    for value in (5, None, 1.5, ["x.nc"], Odd()):
        rejects(lambda v=value: tio.load(v), "path", value=value)
        rejects(lambda v=value: tio.save(ds, v), "path", value=value)
    rejects(lambda: tio.save(ds, "x.txt"), "extension")
    rejects(lambda: tio.save(ds, "/nonexistent-dir/x.json"), "nonexistent-dir")


# ============================================================================ CLI


def run_cli(argv):
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(argv, out=out)
    return code, err.getvalue(), out.getvalue()


@pytest.fixture(scope="module")
def cli_files(workdir):
    """Small good and bad files for the CLI: path by role."""
    d = workdir / "cli"
    d.mkdir(exist_ok=True)
    files = {}

    def write(name, content):
        path = d / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        files[name] = str(path)

    rows = MEASUREMENTS.read_text().splitlines()
    write("good.csv", "\n".join(rows[:6]) + "\n")
    write("bad-measurements.csv", "\n".join(rows[:6]).replace(",128,128,", ",128,x,", 1) + "\n")
    write("no-columns.csv", "a,b\n1,2\n")
    write("garbage.csv", b"\xff\xfe\x00\x01garbage")
    write("empty.csv", "")
    write("bad-kernels.csv", "gpu,op\nh100_sxm,gemm\n")
    write("bad-sweep.toml", "[sweep]\nmodel = 'llama-3.1-8b'\nhardware = 'h100-sxm'\nbatch = 0\n")
    write("unknown-key.toml", "[sweep]\nmodel = 'llama-3.1-8b'\nhardware = 'h100-sxm'\nfrobnicate = 1\n")
    write("syntax.toml", "[sweep\nmodel = \n")
    write("binary.toml", b"\xff\xfe\x80garbage")
    write("bad-eff.toml", "[efficiency]\ncompute = 1.5\n")
    write("eff-unknown.toml", "nope = 0.5\n")
    write("eff-string.toml", "memory = '0.8'\n")
    write("bad-model.toml", "num_layers = -1\n")
    write("bad-hardware.toml", "peak_flops_bf16 = 'fast'\n")
    write("bad-config.json", '{"model_type": "llama", "hidden_size": -1}')
    write("garbage.json", b"\x00\x01{")
    write("list.json", "[1, 2]")
    write("garbage.nc", b"CDF\x01garbage")
    write("results.txt", "text")
    return files


SWEEP_LIKE = ("sweep", "best", "pareto", "explain", "sensitivity")
FLAG_BAD = [  # (flag, value, needles)
    ("--batch", "0", ("batch",)),
    ("--batch", "x", ("batch",)),
    ("--batch", "1,,x", ("batch",)),
    ("--batch", "-4", ("batch",)),
    ("--batch", "maximum", ("batch",)),
    ("--batch", "1,1", ("batch",)),
    ("--tp", "0", ("tp",)),
    ("--tp", "1.5", ("tp",)),
    ("--tp", "", ("tp",)),
    ("--tp", "1e400", ("tp",)),
    ("--tp", "9007199254740993", ("tp",)),
    ("--prompt-len", "-1", ("prompt",)),
    ("--cp", "nan", ("cp",)),
    ("--chunk-size", "0", ("chunk",)),
    ("--max-num-seqs", "0", ("max_num_seqs", "max-num-seqs")),
    ("--world-size", "x", ("world",)),
    ("--microbatches", "0", ("microbatches",)),
    ("--model", "nope", ("model",)),
    ("--model", "5", ("model",)),
    ("--hardware", "h100", ("hardware",)),
    ("--weight-dtype", "fp6", ("weight_dtype", "weight-dtype")),
    ("--kv-dtype", "int3", ("kv_dtype", "kv-dtype")),
    ("--act-dtype", "", ("act-dtype", "act_dtype")),
    ("--allreduce", "star", ("allreduce",)),
    ("--set", "nope=1", ("nope",)),
    ("--set", "hbm_bandwidth", ("hbm_bandwidth",)),
    ("--set", "hbm_bandwidth=", ("hbm_bandwidth",)),
    ("--set", "hbm_bandwidth=x", ("hbm_bandwidth",)),
    ("--set", "hbm_bandwidth_scale=0", ("hbm_bandwidth_scale",)),
    ("--set", "num_kv_heads=-1", ("num_kv_heads",)),
    ("--set", "num_kv_heads=nan", ("num_kv_heads",)),
    ("--zip", "nope", ("nope",)),
    ("--zip", "tp", ("tp",)),
    ("--convention", "nope", ("convention",)),
    ("--efficiency", "@bad-eff.toml", ("bad-eff.toml",)),
    ("--efficiency", "@eff-unknown.toml", ("nope",)),
    ("--efficiency", "@eff-string.toml", ("memory",)),
    ("--efficiency", "@syntax.toml", ("syntax.toml",)),
    ("--efficiency", "@binary.toml", ("binary.toml",)),
    ("--efficiency", "/nonexistent/eff.toml", ("eff.toml",)),
    ("--model", "@bad-model.toml", ("bad-model.toml",)),
    ("--model", "@bad-config.json", ("bad-config.json",)),
    ("--model", "@garbage.json", ("garbage.json",)),
    ("--hardware", "@bad-hardware.toml", ("bad-hardware.toml",)),
    ("--hardware", "/nonexistent/h.toml", ("h.toml",)),
    ("--frobnicate", "1", ("frobnicate",)),
    ("--file", "@bad-sweep.toml", ("bad-sweep.toml",)),
    ("--file", "@unknown-key.toml", ("frobnicate",)),
    ("--file", "@syntax.toml", ("syntax.toml",)),
    ("--file", "/nonexistent/s.toml", ("s.toml",)),
]
COMMAND_BAD = {
    "sweep": [
        ("-o", "out.txt", ("out.txt",)),
        ("-o", "/nonexistent-dir/out.nc", ("nonexistent-dir",)),
        ("--limit", "x", ("limit",)),
        ("", "@results.txt", ("results.txt", "FILE", "toml")),
    ],
    "best": [
        ("--objective", "nope", ("nope",)),
        ("--objective", "prefill_op_flops", ("keep", "prefill_op_flops")),
        ("--where", "tpot", ("tpot",)),
        ("--where", "tpot=>1", ("tpot",)),
        ("--where", "nope<1", ("nope",)),
        ("--where", "tpot<abc", ("tpot",)),
        ("--keep", "nope", ("nope",)),
        ("--keep", "tp,tp", ("tp",)),
        ("--minimize", "x", ("x",)),
        ("", "@garbage.nc", ("garbage.nc",)),
        ("", "@list.json", ("list.json",)),
        ("-o", "winners.xlsx", ("winners.xlsx",)),
    ],
    "pareto": [
        ("--x", "nope", ("nope",)),
        ("--y", "5", ("5",)),
        ("--x", "tokens_per_s_per_gpu", ("x and y",)),
        ("--over", "nope", ("nope",)),
        ("--over", "tp,tp", ("tp",)),
        ("--where", "tpot<", ("tpot",)),
        ("--where", "ttft>=x", ("ttft",)),
        ("", "@garbage.json", ("garbage.json",)),
        ("-o", "front.txt", ("front.txt",)),
    ],
    "explain": [
        ("--tp", "1,2", ("tp",)),
        ("--batch", "1,2", ("batch",)),
        ("--convention", "seed", ("roofline",)),
        ("--zip", "tp,batch", ("zip",)),
    ],
    "sensitivity": [
        ("--of", "nope", ("nope",)),
        ("--of", "feasible", ("feasible",)),
        ("--wrt", "nope", ("nope",)),
        ("--wrt", ",", ("wrt",)),
        ("--of", "prefill_op_time", ("prefill_op_time",)),
        ("--convention", "seed", ("roofline",)),
        ("-o", "s.png", ("s.png",)),
        ("--limit", "1.5", ("limit",)),
    ],
    "validate": [
        ("", "@garbage.csv", ("garbage.csv",)),
        ("", "@bad-measurements.csv", ("bad-measurements.csv",)),
        ("", "@no-columns.csv", ("no-columns.csv",)),
        ("", "@empty.csv", ("empty.csv",)),
        ("", "/nonexistent/m.csv", ("m.csv",)),
        ("--efficiency", "@bad-eff.toml", ("bad-eff.toml",)),
        ("--efficiency", "@eff-unknown.toml", ("nope",)),
        ("-o", "/nonexistent-dir/r.csv", ("nonexistent-dir",)),
        ("--frobnicate", "1", ("frobnicate",)),
    ],
    "calibrate": [
        ("", "@garbage.csv", ("garbage.csv",)),
        ("", "@no-columns.csv", ("no-columns.csv",)),
        ("", "/nonexistent/m.csv", ("m.csv",)),
        ("--factors", "nope", ("nope",)),
        ("--factors", ",", ("factors",)),
        ("--train-fraction", "1.5", ("train_fraction", "train-fraction")),
        ("--train-fraction", "x", ("train-fraction", "train_fraction")),
        ("--train-fraction", "nan", ("train_fraction",)),
        ("--seed", "-1", ("seed",)),
        ("--seed", "x", ("seed",)),
        ("--steps", "-1", ("steps",)),
        ("--steps", "1.5", ("steps",)),
        ("--kernels", "@bad-kernels.csv", ("bad-kernels.csv",)),
        ("--kernels", "@garbage.csv", ("garbage.csv",)),
        ("--kernels", "/nonexistent/k.csv", ("k.csv",)),
        ("-o", "/nonexistent-dir/eff.toml", ("nonexistent-dir",)),
    ],
    "presets": [("--frobnicate", "1", ("frobnicate",)), ("", "extra", ("extra",))],
    "plot": [
        ("kind", "histogram", ("histogram",)),
        ("results", "@garbage.nc", ("garbage.nc",)),
        ("results", "@results.txt", ("results.txt",)),
        ("results", "/nonexistent/r.nc", ("r.nc",)),
        ("results", "@bad-sweep.toml", ("bad-sweep.toml",)),
        ("-o", "figure.txt", ("figure.txt",)),
        ("-o", "", ("figure", "extension", "-o")),
        ("--sel", "tp", ("tp",)),
        ("--sel", "nope=1", ("nope",)),
        ("--sel", "tp=3", ("tp",)),
        ("--sel", "tp=x", ("tp",)),
    ],
}


@st.composite
def cli_case(draw, files, outdir):
    command = draw(st.sampled_from(sorted(COMMAND_BAD)))
    pool = COMMAND_BAD[command] + (FLAG_BAD if command in SWEEP_LIKE else [])
    flag, value, needles = draw(st.sampled_from(pool))
    value = files[value[1:]] if value.startswith("@") else value
    if flag == "-o" and value and "/" not in value:
        value = str(outdir / value)
    small = ["--model", "llama-3.1-8b", "--hardware", "h100-sxm"]
    if command in SWEEP_LIKE:
        extra = draw(st.sampled_from([[], ["--batch", "1,4"], ["--prompt-len", "256"]])) if command != "explain" else []
        extra = [] if extra and extra[0] == flag else extra
        if flag == "--file":
            argv = [command, flag, value]
        elif flag == "":
            argv = [command, value]
        else:
            argv = [command, *small, *extra, flag, value]
    elif command in ("validate", "calibrate"):
        if flag == "":
            argv = [command, value]
        else:
            argv = [command, files["good.csv"], flag, value]
        if command == "calibrate":
            argv += ["--steps", "1"] if flag != "--steps" else []
    elif command == "presets":
        argv = [command, *([value] if flag == "" else [flag, value])]
    else:  # plot KIND RESULTS -o FIGURE
        parts = {"kind": "pareto", "results": files["good-results"], "-o": str(outdir / "figure.png")}
        sel = []
        if flag == "--sel":
            sel = ["--sel", value]
        else:
            parts[flag] = value
        argv = [command, parts["kind"], parts["results"], "-o", parts["-o"], *sel]
    return argv, needles


@pytest.fixture(scope="module")
def cli_files_with_results(cli_files, workdir, ds):
    path = workdir / "cli" / "good-results.nc"
    tio.save(ds, path)
    return cli_files | {"good-results": str(path)}


@fuzz("cli")
@given(data=st.data())
def test_cli_rejects_malformed_flags_values_and_files_with_exit_code_2(cli_files_with_results, workdir, data):
    ran("cli")
    argv, needles = data.draw(cli_case(cli_files_with_results, workdir / "cli"))
    code, err, _ = run_cli(argv)
    assert code == 2, (argv, code, err)
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, (argv, err)
    assert any(n in lines[0] for n in needles), (argv, needles, lines[0])


# ============================================================================ the count


def test_the_fuzz_tests_throw_at_least_1000_malformed_inputs():
    fuzz_tests = {fn._fuzz_name for fn in globals().values() if callable(fn) and hasattr(fn, "_fuzz_name")}
    assert fuzz_tests == set(EXAMPLES), "each entry in EXAMPLES belongs to one fuzz test"
    assert sum(EXAMPLES.values()) >= 1000
    if set(RAN) == set(EXAMPLES):  # the whole module ran: count the examples really generated
        assert sum(RAN.values()) >= 1000, RAN
        for name, n in RAN.items():
            assert n >= EXAMPLES[name] // 2, (name, n, EXAMPLES[name])
