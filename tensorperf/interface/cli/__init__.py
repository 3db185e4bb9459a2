"""Command line: ``tensorperf`` (the default sweep) and one module per subcommand (``sweep``, ``best``,
``pareto``, ``explain``, ``sensitivity``, ``presets``, ``validate``, ``calibrate``, ``plot``, ``report``), each
with ``add_parser(sub)`` and ``run(args, out)``.

Parses arguments, builds the inputs (flags over a TOML sweep file, :mod:`.inputs`), calls the library
and formats the output; no physics here. A bad flag, value or file is one line on stderr and exit
code 2.

Only the module of the command given is imported (``tensorperf --help`` lists the commands from
:data:`COMMANDS` and imports neither torch nor xarray); the others get a stub parser carrying their
one-line help, which tests/test_cli_forms.py checks against each module's own.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Collection, Sequence
from types import MappingProxyType, ModuleType
from typing import TextIO

from tensorperf.interface.cli.inputs import Parser, UsageError
from tensorperf.validation import SpecError

__all__ = ["COMMANDS", "DEFAULT_SWEEP", "build_parser", "main"]

# command -> its one-line help (as its module's add_parser gives it); the module is cli/<command>.py
COMMANDS: MappingProxyType[str, str] = MappingProxyType(
    {
        "sweep": "evaluate a grid given by a sweep file and/or comma-separated flag values",
        "best": "the best point per group under constraints",
        "pareto": "the Pareto frontier of tokens/s/GPU versus tokens/s/user",
        "explain": "one point: why it is infeasible, with the numbers; else per-op FLOPs, bytes, time and bound",
        "sensitivity": "elasticities of a metric to efficiencies and spec fields",
        "presets": "list model, hardware and serving-stack presets with key numbers",
        "validate": "predict published measurements (measurements.csv schema) and summarize the relative error",
        "calibrate": "fit efficiency factors to published measurements (train/test split)",
        "plot": "draw results: pareto, breakdown, memory or sensitivity",
        "report": "one self-contained HTML page of a sweep (open it in a browser)",
        "disagg": "disaggregated prefill/decode pools: the best xPyD deployment under TTFT/TPOT limits",
    }
)

EPILOG = (
    "Without a command: the seed question's answer in one table (--full: the detailed tables). "
    "Sweep values: comma-separated (--tp 1,2,4,8) or ranges (--batch 1:512, --batch 1:512:x2); "
    "--model all / --hardware all; --isl/--osl for --prompt-len/--output-len; --where 'serving_ttft<=2' "
    "(repeatable) or '20<=serving_tokens_per_s_per_user<=50'; --no-breakdown (sweep). "
    "'tensorperf COMMAND --help' for a command's flags."
)


def __getattr__(name: str) -> object:
    if name == "DEFAULT_SWEEP":  # the default run's grid, without importing its module up front
        from tensorperf.interface.cli.default import DEFAULT_SWEEP

        return DEFAULT_SWEEP
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def command_module(name: str) -> ModuleType:
    return importlib.import_module(f"tensorperf.interface.cli.{name}")


def build_parser(commands: Collection[str] | None = None) -> Parser:
    """The parser: ``commands`` (default: all) with their full flags, the others as stubs that only
    list themselves (each command's module is imported only when it is built)."""
    p = Parser(
        prog="tensorperf",
        description="Vectorized performance model of LLM inference serving. "
        "Without a command: which hardware serves the seed's 1.8T MoE on 64 GPUs best (one table).",
        epilog=EPILOG,
    )
    p.add_argument(
        "--full",
        action="store_true",
        help="without a command: the detailed tables of the default sweep (every dtype and prompt length)",
    )
    sub = p.add_subparsers(dest="command", parser_class=Parser, metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        if commands is None or name in commands:
            command_module(name).add_parser(sub)
        else:
            sub.add_parser(name, help=help_text, add_help=False)
    return p


def _command(argv: Sequence[str]) -> str | None:
    """The command word of ``argv``: its first word not an option (the top level's options take no value)."""
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        command = _command(argv)
        args = build_parser([command] if command in COMMANDS else ()).parse_args(argv)
        from tensorperf.run.allocator import keep_freed_memory

        keep_freed_memory()  # opt-in malloc tuning: this process runs one job, then exits
        if args.command is None:
            from tensorperf.interface.cli import default

            return default.run(out, full=args.full)
        if args.full:
            raise UsageError(f"tensorperf {args.command}: --full applies to the default run (no command) only")
        module = command_module(args.command)
        if args.command == "presets":
            return module.run(out)
        from tensorperf.interface.cli.inputs import check_output

        check_output(args)
        return module.run(args, out)
    except (UsageError, SpecError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head`: stop quietly
        if out is sys.stdout:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as e:  # a file the command reads or writes
        where = f"{e.filename}: " if e.filename else ""
        print(f"error: {where}{e.strerror or e}", file=sys.stderr)
        return 2
