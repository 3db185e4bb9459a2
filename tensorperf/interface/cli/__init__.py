"""Command line: ``tensorperf`` (the default sweep) and one module per subcommand (``sweep``, ``best``,
``pareto``, ``explain``, ``sensitivity``, ``presets``, ``validate``, ``calibrate``, ``plot``, ``report``), each
with ``add_parser(sub)`` and ``run(args, out)``.

Parses arguments, builds the inputs (flags over a TOML sweep file, :mod:`.inputs`), calls the library
and formats the output; no physics here. A bad flag, value or file is one line on stderr and exit
code 2.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from types import MappingProxyType, ModuleType
from typing import TextIO

from tensorperf.interface.cli import (
    best,
    calibrate,
    default,
    explain,
    pareto,
    plot,
    presets,
    report,
    sensitivity,
    sweep,
    validate,
)
from tensorperf.interface.cli.default import DEFAULT_SWEEP
from tensorperf.interface.cli.inputs import Parser, UsageError, check_output
from tensorperf.run.allocator import keep_freed_memory
from tensorperf.validation import SpecError

__all__ = ["DEFAULT_SWEEP", "build_parser", "main"]

COMMANDS: MappingProxyType[str, ModuleType] = MappingProxyType(
    {
        m.__name__.rsplit(".", 1)[-1]: m
        for m in (sweep, best, pareto, explain, sensitivity, presets, validate, calibrate, plot, report)
    }
)


def build_parser() -> Parser:
    p = Parser(
        prog="tensorperf",
        description="Vectorized performance model of LLM inference serving. "
        "Without a command: the default sweep of the seed's 1.8T MoE scenario.",
    )
    sub = p.add_subparsers(dest="command", parser_class=Parser)
    for command in COMMANDS.values():
        command.add_parser(sub)
    return p


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        args = build_parser().parse_args(argv)
        keep_freed_memory()  # opt-in malloc tuning: this process runs one job, then exits
        if args.command is None:
            return default.run(out)
        if args.command == "presets":
            return presets.run(out)
        check_output(args)
        run: Callable = COMMANDS[args.command].run
        return run(args, out)
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
