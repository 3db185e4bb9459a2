"""The inputs of one sweep from the command line: the flags (one per registered axis, :mod:`tensorperf.axes`),
a TOML sweep file, what-if and where expressions, and the checks of an output path.

Imports only the standard library and the axis registry at module level (``tensorperf --help`` stays
free of torch and xarray); what a command needs is imported when it runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NoReturn

from tensorperf.axes import AXES, Kind
from tensorperf.validation import SpecError, read_toml

if TYPE_CHECKING:
    import xarray as xr

    from tensorperf.engine.grid import Grid


class UsageError(Exception):
    """A bad flag or value: one line, exit code 2."""


def csv(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        items = [t.strip() for t in text.split(",") if t.strip()]
        try:
            values = [kind(t) for t in items]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated {kind.__name__} values, got {text!r}") from None
        if not values:
            raise argparse.ArgumentTypeError(f"expected comma-separated {kind.__name__} values, got {text!r}")
        return values[0] if len(values) == 1 else values

    return parse


# What each numeric kind of axis allows, for a flag's error message (the axis check says it again)
_ALLOWED = {
    Kind.COUNT: "integers >= 1",
    Kind.DRAFT_TOKENS: "integers >= 0",
    Kind.RATE: "numbers > 0",
    Kind.FRACTION: "numbers in (0, 1]",
    Kind.FACTOR: "numbers >= 1",
    Kind.PROBABILITY: "numbers in [0, 1)",
}


def numbers(integer: bool | None, allowed: str | None = None) -> Callable[[str], Any]:
    """A flag's numbers: comma-separated values and ranges (``1:512``, ``1:512:x2``, ``0.5:1:0.1``);
    ``integer`` True: integers only, None: integers where written as integers; ``allowed``: what the
    flag's axis allows, in words (default: integers or numbers)."""

    def parse(text: str) -> Any:
        from tensorperf.interface.sweepfile import RANGE_FORMS, parse_values

        try:
            values = parse_values(text, integer)
        except ValueError as e:
            kind = allowed or ("integers" if integer else "numbers")
            raise argparse.ArgumentTypeError(f"{e}; allowed: {kind}, as {RANGE_FORMS}") from None
        return values[0] if len(values) == 1 else values

    return parse


def specs(name: str) -> Callable[[str], Any]:
    """A spec input's values: comma-separated ids or files, or ``all`` (every preset of that kind)."""

    def parse(text: str) -> Any:
        from tensorperf.interface.sweepfile import ALL_PRESETS, all_presets

        if text.strip() == "all" and name in ALL_PRESETS:
            return all_presets(name)
        return csv(str)(text)

    return parse


# sweep() inputs given by flags: input name -> flag (every registered axis)
INPUT_FLAGS = {name: axis.flag for name, axis in AXES.items()}
# short spellings of some flags (the names serving benchmarks use): input name -> extra flags
FLAG_ALIASES = MappingProxyType({"prompt_len": ("--isl",), "output_len": ("--osl",)})


OBJECTIVE = "tokens_per_s_per_gpu"


def batch(text: str) -> Any:
    if text.strip() == "max":
        return "max"
    return numbers(True)(text)


def names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def what_if(text: str) -> tuple[str, Any]:
    """``--set FIELD=V1,V2``: a what-if input (numbers; integers stay integers)."""
    from tensorperf.run.inputs import OVERRIDABLE

    name, sep, values = text.partition("=")
    name = name.strip()
    if not sep or name not in OVERRIDABLE:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not FIELD=V1,V2,... with FIELD a numeric ModelSpec/HardwareSpec field or <field>_scale "
            "(e.g. hbm_bandwidth_scale=1,1.3 or num_kv_heads=1,8)"
        )
    from tensorperf.interface.sweepfile import RANGE_FORMS, parse_values

    if not names(values):
        raise argparse.ArgumentTypeError(f"{text!r}: give at least one value for {name}")
    try:
        given = parse_values(values, None)
    except ValueError as e:
        raise argparse.ArgumentTypeError(
            f"{text!r}: the values of {name} must be numbers ({e}); allowed: {RANGE_FORMS}"
        ) from None
    return name, given[0] if len(given) == 1 else given


def where(text: str) -> tuple[str, Any]:
    """``--where EXPR``: ``(variable, (comparison, value))``; a range ``20<=x<=50`` gives
    ``(variable, ((">=", 20.0), ("<=", 50.0)))``. :func:`where_dict` merges them."""
    from tensorperf.interface.sweepfile import parse_where

    try:
        return parse_where(text)
    except SpecError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("--where ")) from None


def is_results(path: str | None) -> bool:
    from tensorperf.interface.io import FORMATS

    return path is not None and any(path.endswith(f) for f in FORMATS)


def sweep_inputs(args: argparse.Namespace, command: str) -> tuple[dict[str, Any], Any]:
    """sweep() keyword arguments from the sweep file (if any) overridden by the flags, and the file."""
    from tensorperf.interface import sweepfile

    path = file_arg(args)
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
        efficiency = efficiency_file(args.efficiency)
    inputs["efficiency"] = efficiency
    inputs["convention"] = args.convention or (spec.convention if spec else None) or "roofline"
    return inputs, spec


def file_arg(args: argparse.Namespace) -> str | None:
    if args.file and args.file_flag and args.file != args.file_flag:
        raise UsageError(f"give the sweep file once: {args.file} or --file {args.file_flag}")
    return args.file or args.file_flag


def given_sweep_flags(args: argparse.Namespace) -> list[str]:
    flags = [INPUT_FLAGS[n] for n in INPUT_FLAGS if getattr(args, n, None) is not None]
    flags += ["--zip"] * (args.zipped is not None) + ["--set"] * bool(args.what_if)
    flags += ["--efficiency"] * bool(args.efficiency) + ["--convention"] * bool(args.convention)
    return flags


def results(args: argparse.Namespace, command: str) -> tuple[xr.Dataset, Any]:
    """The Dataset a command works on: a saved results file, or a sweep from a file and flags (without
    the per-op breakdown where the command has ``--no-breakdown`` and it is given)."""
    path = file_arg(args)
    if is_results(path):
        flags = given_sweep_flags(args)
        if flags:
            raise UsageError(
                f"tensorperf {command}: {flags[0]} does not apply to a results file ({path}); "
                "give a sweep file (.toml) or flags to run a sweep"
            )
        from tensorperf.interface.io import load

        return load(path), None
    from tensorperf.interface.api import sweep

    inputs, spec = sweep_inputs(args, command)
    return sweep(**inputs, breakdown=not getattr(args, "no_breakdown", False)), spec


def where_dict(pairs: Sequence[tuple[str, Any]] | None) -> dict | None:
    """--where conditions as best()/pareto() take them: ``{variable: (comparison, value)}``, with
    several conditions on one variable (a range, or the flag given twice) as a tuple of such pairs."""
    from tensorperf.interface.sweepfile import merge_where

    return merge_where(pairs) if pairs else None


def grid_of(inputs: dict) -> Grid:
    """The Grid of a streamed command's inputs (no evaluation): its dims and shape."""
    from tensorperf.run.inputs import build_grid

    return build_grid(**{k: v for k, v in inputs.items() if k not in ("efficiency", "convention")})


def check_output(args: argparse.Namespace) -> None:
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


def efficiency_file(path: str) -> dict[str, float]:
    """A TOML table of Efficiency field -> value (top level, or under [efficiency])."""
    from tensorperf.run.inputs import check_efficiency

    doc = read_toml(path, "efficiency file")
    table = doc["efficiency"] if set(doc) == {"efficiency"} and isinstance(doc["efficiency"], dict) else doc
    for key, value in table.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SpecError(f"{path}: efficiency {key} = {value!r} is not a number")
    try:
        return check_efficiency(table)
    except SpecError as e:
        raise SpecError(f"{path}: {e}") from None


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit code 2, no traceback
        raise UsageError(f"{self.prog}: {message}{self._flag_hint(message)}")

    def _flag_hint(self, message: str) -> str:
        """For an unknown flag: the close ones among this parser's and its commands' flags."""
        from tensorperf.validation import close_matches

        words = message.split()
        if words[:2] != ["unrecognized", "arguments:"]:
            return ""
        flag = next((w.partition("=")[0] for w in words[2:] if w.startswith("--")), None)
        if flag is None:
            return ""
        options = set(self._option_string_actions)
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                for command in action.choices.values():
                    options.update(command._option_string_actions)
        close = close_matches(flag, sorted(o for o in options if o.startswith("--") and o != "--help"))
        return f" (did you mean {', '.join(close)}?)" if close else ""


def assignment(text: str) -> tuple[str, str]:
    dim, sep, value = text.partition("=")
    if not sep or not dim.strip() or not value.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not DIM=VALUE (e.g. hardware=b200 or tp=8)")
    return dim.strip(), value.strip()


VALUES_EPILOG = (
    "Values: comma-separated (--tp 1,2,4,8), or ranges: --batch 1:512 (every integer), --batch 1:512:x2 "
    "(1,2,4,...,512), --prompt-len 1024:8192:1024 (a step); --model all / --hardware all: every preset "
    "(tensorperf presets lists them). --isl/--osl are --prompt-len/--output-len. A list is a dimension."
)


def _flag_values(name: str, kind: Kind, integer: bool) -> tuple[Callable[[str], Any], str, str]:
    """The parser of one axis flag's value, its metavar and its forms in words."""
    if kind is Kind.BATCH:
        return batch, "N", "comma-separated or a range such as 1:512:x2, or 'max'"
    if kind is Kind.SPEC:
        return specs(name), "IDS", "comma-separated, or 'all': every preset"
    if kind is Kind.LABEL:
        return csv(str), "NAMES", "comma-separated"
    if integer:
        return numbers(True, _ALLOWED.get(kind)), "N", "comma-separated or a range such as 1:64:x2"
    return numbers(False, _ALLOWED.get(kind)), "X", "comma-separated or a range such as 0.5:4:x2"


def add_sweep_flags(p: argparse.ArgumentParser, results: bool = False) -> None:
    """The inputs of one sweep: a TOML sweep file and/or flags (flags win)."""
    p.epilog = p.epilog or VALUES_EPILOG
    what = "a sweep file (.toml) or a results file (.nc, .zarr, .json, .csv)" if results else "a sweep file (.toml)"
    p.add_argument("file", nargs="?", metavar="FILE", help=what)
    p.add_argument("--file", dest="file_flag", metavar="FILE", help=what)
    for name, axis in AXES.items():  # one flag per registered sweep input
        parse, metavar, many = _flag_values(name, axis.kind, axis.integer)
        flags = (axis.flag, *FLAG_ALIASES.get(name, ()))
        p.add_argument(*flags, dest=name, type=parse, metavar=metavar, help=f"{axis.help} ({many})")
    p.add_argument(
        "--zip",
        dest="zipped",
        type=names,
        metavar="NAMES",
        help="inputs (lists of one length) that share one 'point' dimension, e.g. tp,dp",
    )
    p.add_argument(
        "--set",
        dest="what_if",
        type=what_if,
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
