"""Command line: ``tensorperf`` (the default sweep) and the subcommands ``sweep``, ``best``,
``pareto``, ``explain``, ``sensitivity``, ``calibrate``, ``validate``, ``presets`` and ``plot``.

Parses arguments, builds the inputs (flags over a TOML sweep file, :mod:`tensorperf.sweepfile`),
calls the library and formats the output; no physics here. A bad flag, value or file is one line
on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import xarray as xr

from tensorperf.axes import AXES, Kind
from tensorperf.catalog import presets
from tensorperf.engine.masks import describe
from tensorperf.interface.api import sweep
from tensorperf.interface.reductions import best
from tensorperf.interface.report import table
from tensorperf.run.allocator import keep_freed_memory
from tensorperf.run.inputs import check_efficiency
from tensorperf.validation import SpecError, read_toml

# The seed's scenario: the 1.8T MoE on 64 GPUs, prompts of 8K and 16K tokens, 1024 output tokens,
# fp16/fp8/fp4, every power-of-two layout, across the hardware presets.
POW2 = [1, 2, 4, 8, 16, 32, 64]
DEFAULT_SWEEP: dict[str, Any] = dict(
    model="gpt-moe-1.8t",
    weight_dtype=["fp16", "fp8", "fp4"],
    prompt_len=[8192, 16384],
    output_len=1024,
    batch=[1, 2, 4, 8, 16, 32, 64, 128, 256],
    tp=POW2,
    pp=POW2,
    dp=POW2,
    ep=[1, 2, 4, 8, 16],
    world_size=64,
)
INTERACTIVITY = (10.0, 20.0)
PLOT_KINDS = ("pareto", "breakdown", "memory", "sensitivity")
DEFAULT_WRT = ("compute", "memory", "gemm_memory", "attention", "hbm_bandwidth", "scaleup_bandwidth")
BEST_COLUMNS = [
    "hardware",
    "weight_dtype",
    "prompt_len",
    "tp",
    "pp",
    "dp",
    "ep",
    "batch",
    "tokens_per_s_per_gpu",
    "tokens_per_s_per_user",
    "ttft",
    "memory_per_gpu",
]


class UsageError(Exception):
    """A bad flag or value: one line, exit code 2."""


def _csv(kind):
    def parse(text: str):
        items = [t.strip() for t in text.split(",") if t.strip()]
        try:
            values = [kind(t) for t in items]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated {kind.__name__} values, got {text!r}") from None
        if not values:
            raise argparse.ArgumentTypeError(f"expected comma-separated {kind.__name__} values, got {text!r}")
        return values[0] if len(values) == 1 else values

    return parse


def _default_run(out) -> int:
    from types import MappingProxyType

    from tensorperf.run.inputs import build_grid
    from tensorperf.run.stream import Best, Combined, Count, kept_shape, reduce

    hw = [h for h in presets.hardware() if h != "mi300-seed"]
    inputs = dict(hardware=hw, **DEFAULT_SWEEP)
    keep = ("hardware", "weight_dtype", "prompt_len")
    shape = kept_shape(build_grid(**inputs), keep)
    bests = tuple(
        Best("tokens_per_s_per_gpu", MappingProxyType({"tokens_per_s_per_user": (">=", floor)}), keep, True, shape)
        for floor in INTERACTIVITY
    )
    # one streamed pass: every chunk evaluated once, reduced to the counts and the winners
    count, *winners = reduce(Combined((Count(MappingProxyType({}), (), ()), *bests)), **inputs)
    print(
        f"tensorperf default sweep: gpt-moe-1.8t on 64 GPUs, {len(hw)} hardware presets, "
        f"{int(count.points):,} configurations ({int(count.feasible):,} feasible)",
        file=out,
    )
    for floor, res in zip(INTERACTIVITY, winners):
        rows = []
        for rec in res.to_dataframe().reset_index().to_dict("records"):
            rec.update({d: rec.get(f"best_{d}") for d in ("tp", "pp", "dp", "ep", "batch")})
            rows.append(rec)
        print(
            f"\nBest layout by output tokens/s per GPU at >= {floor:g} tokens/s per user ('-': no layout reaches it)",
            file=out,
        )
        print(table(rows, BEST_COLUMNS), file=out)
    return 0


def _presets(out) -> int:
    rows = []
    for mid in presets.models():
        m = presets.model(mid)
        rows.append(
            {
                "id": mid,
                "params B": m.num_params / 1e9,
                "active B": m.num_active_params / 1e9,
                "layers": m.num_layers,
                "d_model": m.d_model,
                "experts": m.num_experts or "-",
            }
        )
    print("Models", file=out)
    print(table(rows, ["id", "params B", "active B", "layers", "d_model", "experts"]), file=out)
    rows = []
    for hid in presets.hardware():
        h = presets.hardware_spec(hid)
        rows.append(
            {
                "id": hid,
                "bf16 TFLOP/s": h.peak_flops_bf16 / 1e12,
                "fp8 TFLOP/s": h.peak_flops_fp8 / 1e12,
                "fp4 TFLOP/s": h.peak_flops_fp4 / 1e12,
                "HBM GB": h.hbm_capacity / 1e9,
                "HBM TB/s": h.hbm_bandwidth / 1e12,
                "scale-up GPUs": h.scaleup_size,
                "scale-up GB/s": h.scaleup_bandwidth / 1e9,
            }
        )
    print("\nHardware (dense peaks; link bandwidth per GPU per direction)", file=out)
    print(table(rows, list(rows[0])), file=out)
    return 0


# --------------------------------------------------------------------------- sweep inputs

# sweep() inputs given by flags: input name -> flag (every registered axis)
INPUT_FLAGS = {name: axis.flag for name, axis in AXES.items()}
METRIC_COLUMNS = ["ttft", "tpot", "tokens_per_s_per_gpu", "tokens_per_s_per_user", "memory_per_gpu"]
OBJECTIVE = "tokens_per_s_per_gpu"


def _batch(text: str):
    if text.strip() == "max":
        return "max"
    return _csv(int)(text)


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _what_if(text: str) -> tuple[str, Any]:
    """``--set FIELD=V1,V2``: a what-if input (numbers; integers stay integers)."""
    from tensorperf.run.inputs import OVERRIDABLE

    name, sep, values = text.partition("=")
    name = name.strip()
    if not sep or name not in OVERRIDABLE:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not FIELD=V1,V2,... with FIELD a numeric ModelSpec/HardwareSpec field or <field>_scale "
            "(e.g. hbm_bandwidth_scale=1,1.3 or num_kv_heads=1,8)"
        )
    try:
        numbers = [int(v) if v.strip().lstrip("-").isdigit() else float(v) for v in _names(values)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: the values of {name} must be numbers") from None
    if not numbers:
        raise argparse.ArgumentTypeError(f"{text!r}: give at least one value for {name}")
    return name, numbers[0] if len(numbers) == 1 else numbers


def _where(text: str) -> tuple[str, tuple[str, float]]:
    from tensorperf.interface.sweepfile import parse_where

    try:
        return parse_where(text)
    except SpecError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("--where ")) from None


def _is_results(path: str | None) -> bool:
    from tensorperf.interface.io import FORMATS

    return path is not None and any(path.endswith(f) for f in FORMATS)


def _sweep_inputs(args, command: str) -> tuple[dict[str, Any], Any]:
    """sweep() keyword arguments from the sweep file (if any) overridden by the flags, and the file."""
    from tensorperf.interface import sweepfile

    path = _file_arg(args)
    spec = sweepfile.load(path) if path else None
    inputs: dict[str, Any] = dict(spec.inputs) if spec else {}
    for name in INPUT_FLAGS:
        if getattr(args, name, None) is not None:
            inputs[name] = getattr(args, name)
    if args.zipped is not None:
        inputs["zipped"] = args.zipped
    for name, values in args.what_if or ():
        inputs[name] = values
    for name in ("model", "hardware"):
        if name not in inputs:
            raise UsageError(
                f"tensorperf {command}: {INPUT_FLAGS[name]} is required (or {name} in a sweep file's [sweep] table)"
            )
    efficiency = spec.efficiency if spec else None
    if args.efficiency:
        efficiency = _efficiency_file(args.efficiency)
    inputs["efficiency"] = efficiency
    inputs["convention"] = args.convention or (spec.convention if spec else None) or "roofline"
    return inputs, spec


def _file_arg(args) -> str | None:
    if args.file and args.file_flag and args.file != args.file_flag:
        raise UsageError(f"give the sweep file once: {args.file} or --file {args.file_flag}")
    return args.file or args.file_flag


def _given_sweep_flags(args) -> list[str]:
    flags = [INPUT_FLAGS[n] for n in INPUT_FLAGS if getattr(args, n, None) is not None]
    flags += ["--zip"] * (args.zipped is not None) + ["--set"] * bool(args.what_if)
    flags += ["--efficiency"] * bool(args.efficiency) + ["--convention"] * bool(args.convention)
    return flags


def _results(args, command: str) -> tuple[xr.Dataset, Any]:
    """The Dataset a command works on: a saved results file, or a sweep from a file and flags."""
    path = _file_arg(args)
    if _is_results(path):
        flags = _given_sweep_flags(args)
        if flags:
            raise UsageError(
                f"tensorperf {command}: {flags[0]} does not apply to a results file ({path}); "
                "give a sweep file (.toml) or flags to run a sweep"
            )
        from tensorperf.interface.io import load

        return load(path), None
    inputs, spec = _sweep_inputs(args, command)
    return sweep(**inputs), spec


def _summary(ds: xr.Dataset, spec) -> str:
    sizes = ", ".join(f"{d} {n}" for d, n in ds.sizes.items() if d != "op") or "one point"
    n = int(ds.ttft.size)
    text = f"{n:,} configuration{'s' * (n != 1)} ({sizes}); {int(ds.feasible.sum()):,} feasible"
    if spec is not None and spec.description:
        text = f"{spec.description}\n{text}"
    return text


def _dim_columns(frame, dims) -> list[str]:
    return [c for c in frame.columns if c in dims and frame[c].nunique() > 1]


def _point_rows(ds: xr.Dataset, limit: int, out) -> None:
    """Every point of a small grid: the varying inputs, the headline metrics, why infeasible."""
    metrics = METRIC_COLUMNS + (["concurrency"] if ds["batch"].dtype.kind in "OUS" else [])  # batch='max'
    shown = ds[[v for v in metrics + ["infeasible_reason"] if v in ds]]
    if not shown.ttft.dims:
        shown = shown.expand_dims("point")
    frame = shown.to_dataframe().reset_index()
    frame["why infeasible"] = [describe(int(c)) if c else "" for c in frame["infeasible_reason"]]
    cols = _dim_columns(frame, [c for c in ds.coords if c != "op"]) + [m for m in metrics if m in frame]
    if frame["infeasible_reason"].any():
        cols.append("why infeasible")
    print(table(frame.to_dict("records")[:limit], cols), file=out)
    if len(frame) > limit:
        print(f"... {len(frame) - limit} more rows (use -o to save them all)", file=out)


def _best_rows(
    res: xr.Dataset, keep: Sequence[str], objective: str, extra: Sequence[str] = ()
) -> tuple[list[dict], list[str]]:
    data = res if res["found"].dims else res.expand_dims("_row")
    frame = data.to_dataframe().reset_index()
    chosen = [c.removeprefix("best_") for c in frame.columns if c.startswith("best_")]
    frame = frame.rename(columns={f"best_{c}": c for c in chosen})
    rows = frame.to_dict("records")
    for row in rows:
        if not row["found"]:
            row.update({c: None for c in chosen})
    metrics = [objective] + [m for m in [*extra, *METRIC_COLUMNS] if m != objective and m in frame]
    cols = [k for k in keep if k in frame] + [c for c in chosen if c != "point"] + metrics
    return rows, cols


def _where_dict(pairs) -> dict | None:
    """--where conditions as best()/pareto() take them: one per variable."""
    if not pairs:
        return None
    names = [name for name, _ in pairs]
    twice = next((n for n in names if names.count(n) > 1), None)
    if twice:
        raise UsageError(f"--where names {twice} twice; give one condition per variable")
    return dict(pairs)


def _where_text(where: dict) -> str:
    return " and ".join(f"{k} {op} {v:g}" for k, (op, v) in where.items())


def _print_best(ds: xr.Dataset, out, objective: str, where: dict, keep: list[str] | None, maximize: bool) -> xr.Dataset:
    from tensorperf.interface.reductions import default_over
    from tensorperf.validation import unknown_name_error

    if objective not in ds.data_vars:
        raise unknown_name_error("objective", objective, ds.data_vars)
    dims = list(ds[objective].dims)
    if keep is None:
        over = default_over(ds, dims)
        keep = [d for d in dims if d not in over]
    res = best(ds, objective, where=where or None, keep=keep, maximize=maximize)
    batch_max = "batch" in ds.coords and ds["batch"].dtype.kind in "OUS"
    return _show_best(res, out, objective, where, keep, maximize, batch_max)


def _show_best(
    res: xr.Dataset, out, objective: str, where: dict, keep: Sequence[str], maximize: bool, batch_max: bool
) -> xr.Dataset:
    """Print the winners of best() (in memory or streamed) as a table under a one-line title."""
    rows, cols = _best_rows(res, keep, objective, ["concurrency"] if batch_max else [])
    title = f"Best point by {objective} ({'max' if maximize else 'min'})"
    title += f" with {_where_text(where)}" if where else ""
    title += f" for each {', '.join(keep)}" if keep else ""
    print(f"{title} ('-': no feasible point qualifies)", file=out)
    print(table(rows, cols), file=out)
    return res


def _grid_of(inputs: dict):
    """The Grid of a streamed command's inputs (no evaluation): its dims and shape."""
    from tensorperf.run.inputs import build_grid

    return build_grid(**{k: v for k, v in inputs.items() if k not in ("efficiency", "convention")})


def _print_streamed_best(
    inputs: dict,
    grid,
    out,
    objective: str,
    where: dict,
    keep: list[str] | None,
    maximize: bool,
    memory: str,
    client: str | None = None,
) -> xr.Dataset:
    from tensorperf.run.stream import best as stream_best
    from tensorperf.run.stream import default_over

    if keep is None:
        keep = [d for d in grid.dims if d not in default_over(grid)]
    res = stream_best(
        objective, where=where or None, keep=keep, maximize=maximize, memory=memory, client=client, **inputs
    )
    return _show_best(res, out, objective, where, keep, maximize, inputs.get("batch") == "max")


def _check_output(args) -> None:
    """-o FILE: a known extension (where the command has a choice of formats) in a folder that exists,
    checked before any work."""
    output = getattr(args, "output", None)
    if output is None:
        return
    if args.command in ("sweep", "best", "pareto", "sensitivity") and not (
        args.command == "pareto" and output.endswith(".csv")
    ):
        from tensorperf.interface.io import check_path

        check_path(output)
    from pathlib import Path

    folder = Path(output).parent
    if not output.strip() or not folder.is_dir():
        raise UsageError(f"tensorperf {args.command}: -o {output!r}: the folder {str(folder)!r} does not exist")


def _sweep(args, out) -> int:
    inputs, spec = _sweep_inputs(args, "sweep")
    ds = sweep(**inputs, client=args.scheduler)
    if args.output:
        from tensorperf.interface.io import save

        save(ds, args.output)
        print(f"wrote {args.output}", file=out)
    print(_summary(ds, spec), file=out)
    size = int(ds.ttft.size)
    chosen = spec.best if spec is not None else {}
    if size <= args.limit and not chosen:
        _point_rows(ds, args.limit, out)
        return 0
    print("", file=out)
    objective = chosen.get("objective", OBJECTIVE)
    keep = chosen.get("keep")
    if keep is not None and objective in ds:  # less dims the flags made scalar
        keep = [k for k in keep if k in ds[objective].dims]
    _print_best(ds, out, objective, chosen.get("where", {}), keep, chosen.get("maximize", True))
    if size > args.limit:
        print(
            "\n(more views of the grid: tensorperf best|pareto with the same inputs; -o FILE saves every point)",
            file=out,
        )
    return 0


def _best(args, out) -> int:
    if _is_results(_file_arg(args)):
        ds, spec = _results(args, "best")
        dims = None
    else:  # streamed: the grid is evaluated in chunks under --memory, never held whole
        inputs, spec = _sweep_inputs(args, "best")
        grid = _grid_of(inputs)
        dims = grid.dims
        ds = None
    chosen = spec.best if spec is not None else {}
    objective = args.objective or chosen.get("objective", OBJECTIVE)
    where = _where_dict(args.where) or chosen.get("where", {})
    keep = args.keep
    if keep is None and chosen.get("keep") is not None:  # the file's choice, less dims the flags made scalar
        scalar_now = dims if ds is None else (ds[objective].dims if objective in ds else None)
        keep = [k for k in chosen["keep"] if k in scalar_now] if scalar_now is not None else chosen["keep"]
    maximize = not args.minimize if args.minimize else chosen.get("maximize", True)
    if ds is None:
        res = _print_streamed_best(inputs, grid, out, objective, where, keep, maximize, args.memory, args.scheduler)
    else:
        res = _print_best(ds, out, objective, where, keep, maximize)
    if args.output:
        from tensorperf.interface.io import save

        save(res, args.output)
        print(f"wrote {args.output}", file=out)
    return 0


def _pareto(args, out) -> int:
    from tensorperf.interface.reductions import default_over, pareto, pareto_table

    where = _where_dict(args.where)
    if not _is_results(_file_arg(args)):  # streamed: the grid is evaluated in chunks under --memory
        return _streamed_pareto(args, out, where)
    ds, _ = _results(args, "pareto")
    extra = ["concurrency"] if "batch" in ds.coords and ds["batch"].dtype.kind in "OUS" else []  # batch='max'
    extra = [v for v in (*extra, "ttft", "tpot", "memory_per_gpu") if v in ds.data_vars and v not in (args.x, args.y)]
    frame = pareto_table(ds, args.x, args.y, over=args.over, where=where, extra=extra)
    dims = [d for d in ds.dims if d in ds[args.x].dims or d in ds[args.y].dims]
    over = args.over or default_over(ds, dims)
    kept = [d for d in dims if d not in over]
    _print_frontier(args, out, frame, where, over, kept, extra)
    if args.output:
        if args.output.endswith(".csv"):
            frame.to_csv(args.output, index=False)
        else:
            from tensorperf.interface.io import save

            save(pareto(ds, args.x, args.y, over=args.over, where=where), args.output)
        print(f"wrote {args.output}", file=out)
    return 0


def _streamed_pareto(args, out, where) -> int:
    from tensorperf.run.stream import default_over
    from tensorperf.run.stream import pareto as stream_pareto

    inputs, _ = _sweep_inputs(args, "pareto")
    front = stream_pareto(
        args.x, args.y, over=args.over, where=where, memory=args.memory, client=args.scheduler, **inputs
    )
    frame = front.to_dataframe().reset_index(drop=True)
    extra = ["concurrency"] if inputs.get("batch") == "max" else []
    extra = [v for v in (*extra, "ttft", "tpot", "memory_per_gpu") if v in frame and v not in (args.x, args.y)]
    grid = _grid_of(inputs)
    over = args.over or list(default_over(grid))
    kept = [d for d in grid.dims if d not in over]
    _print_frontier(args, out, frame, where, over, kept, extra, labels_from=list(front.coords))
    if args.output:
        if args.output.endswith(".csv"):
            frame.to_csv(args.output, index=False)
        else:
            from tensorperf.interface.io import save

            save(front, args.output)
        print(f"wrote {args.output}", file=out)
    return 0


def _print_frontier(args, out, frame, where, over, kept, extra, labels_from=None) -> None:
    print(
        f"Pareto frontier of {args.y} versus {args.x} over {', '.join(over)}"
        + (f" with {_where_text(where)}" if where else "")
        + f": {len(frame)} points",
        file=out,
    )
    columns = labels_from if labels_from is not None else frame.columns
    labels = [
        c
        for c in columns
        if c not in (args.x, args.y, *extra, "point") and (c in kept or c in over or frame[c].nunique() > 1)
    ]
    print(table(frame.to_dict("records"), labels + [args.y, args.x, *extra]), file=out)


def _prefix(values, unit: str) -> tuple[str, float]:
    """A unit prefix that keeps the largest of ``values`` in [1, 1000)."""
    top = max([abs(v) for v in values if v == v] + [0.0])
    for power, name in ((15, "P"), (12, "T"), (9, "G"), (6, "M"), (3, "k")):
        if top >= 10**power:
            return f"{name}{unit}", 10.0**-power
    return unit, 1.0


def _op_table(ds: xr.Dataset, phase: str) -> str:
    from tensorperf.engine.metrics import OP_BOUNDS

    flops = ds[f"{phase}_op_flops"].values
    nbytes = ds[f"{phase}_op_bytes"].values
    times = ds[f"{phase}_op_time"].values
    bound = ds[f"{phase}_op_bound"].values if f"{phase}_op_bound" in ds else None
    total = float(times.sum())
    fhead, fscale = _prefix(flops, "FLOP")
    bhead, bscale = _prefix(nbytes, "B")
    rows = []
    for i, op in enumerate(ds["op"].values.tolist()):
        if not times[i] > 0:  # no work in this model/layout
            continue
        comm = op.endswith("_comm")  # network traffic, not FLOPs or HBM bytes
        rows.append(
            {
                "op": op,
                "flop": None if comm else flops[i],
                "bytes": None if comm else nbytes[i],
                "time": times[i],
                "share": times[i] / total if total else None,
                "bound": OP_BOUNDS[int(bound[i])] if bound is not None else "-",
            }
        )
    rows.append(
        {
            "op": "total",
            "flop": float(flops.sum()),
            "bytes": float(nbytes.sum()),
            "time": total,
            "share": 1.0,
            "bound": "",
        }
    )
    formats = {
        "op": ("op", 1, "s"),
        "flop": (fhead, fscale, "~.2f"),
        "bytes": (bhead, bscale, "~.2f"),
        "time": ("time ms", 1e3, "~.3f"),
        "share": ("share %", 100, "~.1f"),
        "bound": ("bound", 1, "s"),
    }
    return table(rows, list(formats), formats)


def _explain(args, out) -> int:
    inputs, spec = _sweep_inputs(args, "explain")
    for name, value in inputs.items():
        if name in ("efficiency", "convention"):
            continue
        if name == "zipped" and value:
            raise UsageError(f"tensorperf explain: one point only; --zip {','.join(value)} makes several")
        if isinstance(value, list) and len(value) > 1:
            flag = INPUT_FLAGS.get(name, f"--set {name}=")
            raise UsageError(
                f"tensorperf explain: one point only, but {flag} has {len(value)} values "
                f"({', '.join(map(str, value))}); give one value for each input"
            )
        if isinstance(value, list):
            inputs[name] = value[0]
    if inputs["convention"] != "roofline":
        raise UsageError("tensorperf explain: the per-op breakdown needs --convention roofline")
    ds = sweep(**inputs)
    p = {k: ds[k].item() for k in ds.coords if not ds[k].dims}
    n_gpus = int(ds.num_gpus)
    what_if = [f"{k}={p[k]:g}" for k in p if k not in INPUT_FLAGS and k != "op"]
    print(
        f"{p['model']} on {p['hardware']}: weights {p['weight_dtype']}, KV {p['kv_dtype']}, "
        f"prompt {p['prompt_len']}, output {p['output_len']}, batch {p['batch']}, "
        f"tp {p['tp']} x cp {p['cp']} x pp {p['pp']} x dp {p['dp']} (ep {p['ep']}"
        + (f", chunks of {p['chunk_size']}" if "chunk_size" in p else "")
        + ") "
        f"= {n_gpus} GPUs" + (f"; what-if {', '.join(what_if)}" if what_if else ""),
        file=out,
    )
    code = int(ds.infeasible_reason)
    if code:
        print(f"feasible: no ({describe(code)}; infeasible_reason {code})", file=out)
    else:
        print("feasible: yes", file=out)
    gb = 1e-9
    mem = (
        f"memory {float(ds.memory_per_gpu) * gb:.1f} of {float(ds.memory_capacity_per_gpu) * gb:.1f} GB usable "
        f"per GPU (weights {float(ds.weight_memory_per_gpu) * gb:.1f}, KV cache "
        f"{float(ds.kv_cache_memory_per_gpu) * gb:.1f}, activations {float(ds.activation_memory_per_gpu) * gb:.1f})"
    )
    if code:
        print(mem, file=out)
        print("(times and per-op numbers are not defined at an infeasible point)", file=out)
        return 0
    print(
        f"TTFT {float(ds.ttft):.3f} s, TPOT {float(ds.tpot) * 1e3:.2f} ms ({float(ds.tokens_per_s_per_user):.1f} "
        f"tokens/s/user), {float(ds.tokens_per_s_per_gpu):.1f} output tokens/s/GPU, MFU {float(ds.mfu):.3f}, "
        f"MBU {float(ds.mbu):.3f}",
        file=out,
    )
    print(mem, file=out)
    print(
        "\nPrefill: the batch's prompts, per GPU, all layers (bound: compute if compute time > memory time)", file=out
    )
    print(_op_table(ds, "prefill"), file=out)
    print("\nDecode: one step at the mean context, per GPU, all layers", file=out)
    print(_op_table(ds, "decode"), file=out)
    return 0


def _sensitivity(args, out) -> int:
    from tensorperf.interface.api import sensitivity

    inputs, spec = _sweep_inputs(args, "sensitivity")
    res = sensitivity(of=args.of, wrt=args.wrt, **inputs)
    if args.output:
        from tensorperf.interface.io import save

        save(res, args.output)
        print(f"wrote {args.output}", file=out)
    print(
        f"Elasticity of {args.of} (d ln {args.of} / d ln parameter: % change of {args.of} per 1% of the parameter)",
        file=out,
    )
    el = res["elasticity"]
    if el.dims == ("param",):
        rows = [
            {"parameter": p, "elasticity": float(e), "value": float(res["value"])}
            for p, e in zip(res["param"].values.tolist(), el.values)
        ]
        rows.sort(key=lambda r: -abs(r["elasticity"]))
        for r in rows:
            r["elasticity"] = round(r["elasticity"], 3)
        print(table(rows, ["parameter", "elasticity"]), file=out)
        return 0
    wide = el.to_dataset(dim="param").round(3)
    wide["feasible"] = res["feasible"]
    frame = wide.to_dataframe().reset_index()
    params = [str(p) for p in res["param"].values.tolist()]
    cols = _dim_columns(frame, [d for d in el.dims if d != "param"]) + params + ["feasible"]
    print(table(frame.to_dict("records")[: args.limit], cols), file=out)
    if len(frame) > args.limit:
        print(f"... {len(frame) - args.limit} more rows (use -o to save them all)", file=out)
    return 0


def _plot(args, out) -> int:
    from tensorperf.interface import plot

    if _is_results(args.results):
        from tensorperf.interface.io import load

        ds = load(args.results)
    elif args.results.endswith(".toml"):
        from tensorperf.interface import sweepfile

        spec = sweepfile.load(args.results)
        ds = sweep(**spec.inputs, efficiency=spec.efficiency, convention=spec.convention or "roofline")
    else:
        from tensorperf.interface.io import FORMATS

        raise UsageError(
            f"tensorperf plot: RESULTS {args.results!r} must be a results file "
            f"({', '.join(FORMATS)}) or a sweep file (.toml)"
        )
    plot._check_path(args.output)
    if args.sel:
        ds = plot.select(ds, dict(args.sel))
    plot.KINDS[args.kind](ds, args.output)
    print(f"wrote {args.output}", file=out)
    return 0


VALIDATE_GROUPS = (("metric", "metric"), ("source", "source"), ("hardware", "hardware"), ("family", "model family"))


def _efficiency_file(path: str) -> dict[str, float]:
    """A TOML table of Efficiency field -> value (top level, or under [efficiency])."""
    doc = read_toml(path, "efficiency file")
    table = doc["efficiency"] if set(doc) == {"efficiency"} and isinstance(doc["efficiency"], dict) else doc
    for key, value in table.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SpecError(f"{path}: efficiency {key} = {value!r} is not a number")
    try:
        return check_efficiency(table)
    except SpecError as e:
        raise SpecError(f"{path}: {e}") from None


def _validate(args, out) -> int:
    from tensorperf.analysis import fidelity

    efficiency = _efficiency_file(args.efficiency) if args.efficiency else None
    report = fidelity.predict(fidelity.load_measurements(args.file), efficiency=efficiency)
    if args.output:
        report.to_csv(args.output, index=False)
        print(f"wrote {args.output}", file=out)
    stats = fidelity.summary(report)
    overall = stats.iloc[0]
    print(
        f"{args.file}: {int(overall['rows'])} rows, {int(overall['ok'])} predicted "
        f"({overall['ok'] / max(overall['rows'], 1):.0%}), median |error| {overall['median']:.1%}, "
        f"p90 |error| {overall['p90']:.1%}"
        + (
            " (efficiency overrides: " + ", ".join(f"{k}={v:g}" for k, v in efficiency.items()) + ")"
            if efficiency
            else ""
        ),
        file=out,
    )
    columns = ["rows", "ok", "median |err| %", "p90 |err| %", "bias %"]
    for group, title in VALIDATE_GROUPS:
        part = stats[stats["group"] == group]
        rows = [
            {
                title: r["key"],
                "rows": int(r["rows"]),
                "ok": int(r["ok"]),
                "median |err| %": round(100 * r["median"], 1),
                "p90 |err| %": round(100 * r["p90"], 1),
                "bias %": round(100 * r["bias"], 1),
            }
            for r in part.to_dict("records")
        ]
        print(f"\nBy {title} (bias: median signed error; '-': no row predicted)", file=out)
        print(table(rows, [title] + columns), file=out)
    skipped = report.loc[report["status"] != "ok", "status"].value_counts()
    if len(skipped):
        print("\nSkipped rows", file=out)
        print(table([{"rows": int(n), "status": s} for s, n in skipped.items()], ["rows", "status"]), file=out)
    return 0


def _calibrate(args, out) -> int:
    from tensorperf.analysis.calibrate import DEFAULT_FACTORS, calibrate

    factors = args.factors if args.factors else list(DEFAULT_FACTORS)
    factors = [factors] if isinstance(factors, str) else factors
    kernels = None
    if args.kernels:  # read before the fit: a bad file fails at once
        from tensorperf.analysis.kernel_fit import load_kernels

        kernels = load_kernels(args.kernels)
    result = calibrate(args.file, factors=factors, train_fraction=args.train_fraction, seed=args.seed, steps=args.steps)
    print(
        f"{args.file}: {result.rows['train']} train / {result.rows['test']} test rows (seed {args.seed}); "
        f"median |error| train {result.before['train']:.1%} -> {result.after['train']:.1%}, "
        f"test {result.before['test']:.1%} -> {result.after['test']:.1%}",
        file=out,
    )
    print(table([{"factor": k, "fitted": v} for k, v in result.factors.items()], ["factor", "fitted"]), file=out)
    if args.output:
        with open(args.output, "w") as fh:
            fh.write(result.to_toml())
        print(f"wrote {args.output} (use it with --efficiency)", file=out)
    if kernels is not None:
        from tensorperf.analysis.kernel_fit import fit_kernels, fits_table

        fits = fits_table(fit_kernels(kernels))
        print(f"\nSize-dependent efficiency curves fitted to {args.kernels}", file=out)
        print(table(fits.to_dict("records"), list(fits.columns)), file=out)
    return 0


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit code 2, no traceback
        raise UsageError(f"{self.prog}: {message}")


def _assignment(text: str) -> tuple[str, str]:
    dim, sep, value = text.partition("=")
    if not sep or not dim.strip() or not value.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not DIM=VALUE (e.g. hardware=b200 or tp=8)")
    return dim.strip(), value.strip()


def _add_sweep_flags(p: argparse.ArgumentParser, results: bool = False) -> None:
    """The inputs of one sweep: a TOML sweep file and/or flags (flags win)."""
    what = "a sweep file (.toml) or a results file (.nc, .zarr, .json, .csv)" if results else "a sweep file (.toml)"
    p.add_argument("file", nargs="?", metavar="FILE", help=what)
    p.add_argument("--file", dest="file_flag", metavar="FILE", help=what)
    for name, axis in AXES.items():  # one flag per registered sweep input
        parse = _batch if axis.kind is Kind.BATCH else _csv(int) if axis.integer else _csv(str)
        many = "comma-separated" + (", or 'max'" if axis.kind is Kind.BATCH else "")
        p.add_argument(axis.flag, dest=name, type=parse, help=f"{axis.help} ({many})")
    p.add_argument(
        "--zip",
        dest="zipped",
        type=_names,
        metavar="NAMES",
        help="inputs (lists of one length) that share one 'point' dimension, e.g. tp,dp",
    )
    p.add_argument(
        "--set",
        dest="what_if",
        type=_what_if,
        action="append",
        metavar="FIELD=V1,V2",
        help="what-if: a numeric ModelSpec/HardwareSpec field or <field>_scale (repeatable)",
    )
    p.add_argument("--convention", choices=["roofline", "seed"])
    p.add_argument(
        "--efficiency",
        metavar="FILE.toml",
        help="TOML table of Efficiency field -> value overriding every hardware's defaults",
    )


SCHEDULER_HELP = (
    "a dask.distributed scheduler, e.g. tcp://host:8786: the chunks are evaluated on its workers "
    "(pip install 'tensorperf[distributed]'); the result is the same"
)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="tensorperf",
        description="Vectorized performance model of LLM inference serving. "
        "Without a command: the default sweep of the seed's 1.8T MoE scenario.",
    )
    sub = p.add_subparsers(dest="command", parser_class=_Parser)
    s = sub.add_parser("sweep", help="evaluate a grid given by a sweep file and/or comma-separated flag values")
    _add_sweep_flags(s)
    s.add_argument("-o", "--output", help="write the Dataset (.nc, .zarr, .csv or .json)")
    s.add_argument("--limit", type=int, default=40, help="grids up to this many points print every point")
    s.add_argument("--scheduler", metavar="ADDRESS", help=SCHEDULER_HELP)
    b = sub.add_parser("best", help="the best point per group under constraints")
    _add_sweep_flags(b, results=True)
    b.add_argument("--objective", help=f"variable to optimize (default {OBJECTIVE})")
    b.add_argument("--minimize", action="store_true", help="minimize the objective instead")
    b.add_argument(
        "--where",
        type=_where,
        action="append",
        metavar="EXPR",
        help="constraint like 'tokens_per_s_per_user>=20' (SI units; repeatable)",
    )
    b.add_argument(
        "--keep",
        type=_names,
        metavar="DIMS",
        help="dims to keep (one winner each); default: every dim but the layout and batch dims",
    )
    b.add_argument("-o", "--output", help="write the winners (.nc, .zarr, .csv or .json)")
    b.add_argument(
        "--memory",
        default="2GB",
        help="working memory of a streamed sweep (default 2GB): the grid is "
        "evaluated in chunks of that size, so it may be far larger than memory",
    )
    b.add_argument("--scheduler", metavar="ADDRESS", help=SCHEDULER_HELP)
    q = sub.add_parser("pareto", help="the Pareto frontier of tokens/s/GPU versus tokens/s/user")
    _add_sweep_flags(q, results=True)
    q.add_argument("--x", default="tokens_per_s_per_user")
    q.add_argument("--y", default="tokens_per_s_per_gpu")
    q.add_argument(
        "--over",
        type=_names,
        metavar="DIMS",
        help="dims to take the frontier over (default: the layout and batch dims)",
    )
    q.add_argument("--where", type=_where, action="append", metavar="EXPR")
    q.add_argument("-o", "--output", help="write the frontier (.csv: the table; .nc/.zarr/.json: the Dataset)")
    q.add_argument("--memory", default="2GB", help="working memory of a streamed sweep (default 2GB)")
    q.add_argument("--scheduler", metavar="ADDRESS", help=SCHEDULER_HELP)
    e = sub.add_parser("explain", help="one point: per-op FLOPs, bytes, time and bound, prefill and decode")
    _add_sweep_flags(e)
    n = sub.add_parser("sensitivity", help="elasticities of a metric to efficiencies and spec fields")
    _add_sweep_flags(n)
    n.add_argument("--of", default="tpot", help="metric (default tpot)")
    n.add_argument(
        "--wrt",
        type=_names,
        default=list(DEFAULT_WRT),
        help=f"parameters, comma-separated (default {','.join(DEFAULT_WRT)})",
    )
    n.add_argument("-o", "--output", help="write the sensitivity Dataset (.nc, .zarr, .csv or .json)")
    n.add_argument("--limit", type=int, default=40, help="rows to print")
    sub.add_parser("presets", help="list model and hardware presets with key numbers")
    v = sub.add_parser(
        "validate", help="predict published measurements (measurements.csv schema) and summarize the relative error"
    )
    v.add_argument("file", metavar="FILE.csv")
    v.add_argument("-o", "--output", help="write the per-row report (.csv)")
    v.add_argument(
        "--efficiency",
        metavar="FILE.toml",
        help="TOML table of Efficiency field -> value overriding every hardware's defaults",
    )
    c = sub.add_parser("calibrate", help="fit efficiency factors to published measurements (train/test split)")
    c.add_argument("file", metavar="FILE.csv")
    c.add_argument("-o", "--output", metavar="eff.toml", help="write the fitted factors for --efficiency")
    c.add_argument("--factors", type=_csv(str), help="comma-separated factors to fit (default: a robust set)")
    c.add_argument("--train-fraction", dest="train_fraction", type=float, default=0.7)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--steps", type=int, default=150)
    c.add_argument(
        "--kernels",
        metavar="KERNELS.csv",
        help="also fit the size-dependent curves to kernel measurements and show the fit",
    )
    g = sub.add_parser("plot", help="draw results: pareto, breakdown, memory or sensitivity")
    g.add_argument("kind", metavar="KIND", choices=PLOT_KINDS, help=f"one of {', '.join(PLOT_KINDS)}")
    g.add_argument("results", metavar="RESULTS", help="a results file (-o of sweep/sensitivity) or a sweep file")
    g.add_argument("-o", "--output", required=True, metavar="FILE", help="the figure (.png, .svg or .pdf)")
    g.add_argument(
        "--sel",
        type=_assignment,
        action="append",
        metavar="DIM=VALUE",
        help="select one label of a dimension first (repeatable)",
    )
    return p


COMMANDS = {
    "sweep": _sweep,
    "best": _best,
    "pareto": _pareto,
    "explain": _explain,
    "sensitivity": _sensitivity,
    "validate": _validate,
    "calibrate": _calibrate,
    "plot": _plot,
}


def main(argv: Sequence[str] | None = None, out=None) -> int:
    out = out or sys.stdout
    try:
        args = build_parser().parse_args(argv)
        keep_freed_memory()  # opt-in malloc tuning: this process runs one job, then exits
        if args.command is None:
            return _default_run(out)
        if args.command == "presets":
            return _presets(out)
        _check_output(args)
        return COMMANDS[args.command](args, out)
    except (UsageError, SpecError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head`: stop quietly
        if out is sys.stdout:
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as e:  # a file the command reads or writes
        where = f"{e.filename}: " if e.filename else ""
        print(f"error: {where}{e.strerror or e}", file=sys.stderr)
        return 2
