"""The registry of sweep inputs (tensorperf.axes) is the one list: sweep()'s signature and docs, the
CLI flags, the sweep-file keys, the label tables and the engine's axis order all agree with it."""

import inspect

import tensorperf as tp
from tensorperf.axes import AXES, DEFAULTS, DIM_ORDER, EVAL_ORDER, LABEL_AXES, LAYOUT_AXES, ZIP_DIM, Kind
from tensorperf.interface.cli import build_parser
from tensorperf.interface.sweepfile import SWEEP_KEYS
from tensorperf.run.inputs import LABELS

# sweep() keywords that are not grid inputs: how to evaluate and what to return
OPTIONS = {"zipped", "convention", "efficiency", "dtype", "device", "breakdown", "client", "chunk_points"}


def test_sweep_signature_lists_every_axis_with_its_default():
    params = inspect.signature(tp.sweep).parameters
    named = [n for n, p in params.items() if p.kind is p.KEYWORD_ONLY and n not in OPTIONS]
    assert named == list(AXES)  # the registry's order, nothing more, nothing less
    for name, axis in AXES.items():
        p = params[name]
        if axis.required:
            assert p.default is inspect.Parameter.empty, name  # model and hardware are required
        else:
            assert p.default == axis.default, name
    assert any(p.kind is p.VAR_KEYWORD for p in params.values())  # what-if fields


def test_sweep_docstring_names_every_axis():
    doc = tp.sweep.__doc__
    missing = [n for n in AXES if f"``{n}``" not in doc]
    assert not missing, f"sweep() documents no {missing}"


def test_cli_has_one_flag_per_axis():
    sweep = build_parser()._subparsers._group_actions[0].choices["sweep"]
    flags = {s for action in sweep._actions for s in action.option_strings}
    assert {a.flag for a in AXES.values()} <= flags
    assert AXES["prompt_len"].flag == "--prompt-len"


def test_sweep_file_keys_are_the_axes():
    assert set(SWEEP_KEYS) == set(AXES) | {"zipped"}


def test_orders_and_tables_derive_from_the_registry():
    assert DIM_ORDER == tuple(AXES)
    assert sorted(EVAL_ORDER) == sorted((ZIP_DIM, *AXES))
    assert EVAL_ORDER[0] == ZIP_DIM and EVAL_ORDER[-2:] == ("batch", "dp")  # tokens per microbatch innermost
    assert len({a.rank for a in AXES.values()}) == len(AXES)
    assert set(LABELS) == set(LABEL_AXES)
    assert {"tp", "pp", "dp", "ep", "cp", "batch"} <= set(LAYOUT_AXES)
    assert "model" not in LAYOUT_AXES and "prompt_len" not in LAYOUT_AXES
    assert DEFAULTS["prompt_len"] == 1024 and DEFAULTS["microbatches"] is None


def test_an_axis_left_out_takes_its_registered_default():
    ds = tp.sweep(model="llama-3.1-8b", hardware="h100-sxm", breakdown=False)
    for name, axis in AXES.items():
        if axis.default is not None:
            assert ds[name].item() == axis.default, name
        elif axis.kind is not Kind.SPEC:
            assert name not in ds.coords, name  # optional inputs stay absent


def test_the_public_names_of_the_package():
    # the names users and tools call (the layered modules behind them may move; these may not)
    for name in (
        "sweep",
        "best",
        "pareto",
        "reduce",
        "sensitivity",
        "calibrate",
        "report",
        "build_grid",
        "presets",
        "ModelSpec",
        "HardwareSpec",
        "StackSpec",
        "Efficiency",
        "SpecError",
        "Reason",
        "describe",
        "Reduction",
        "keep_freed_memory",
        "__version__",
    ):
        assert name in tp.__all__ and getattr(tp, name) is not None, name
    assert callable(tp.calibrate) and tp.calibrate.__module__ == "tensorperf.analysis.calibrate"
    import xarray as xr

    assert hasattr(xr.Dataset, "tperf")  # the accessor is registered by importing tensorperf
