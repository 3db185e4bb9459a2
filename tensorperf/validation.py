"""Declarative input constraints and the errors they raise.

Every spec class lists its rules in a class-level ``CONSTRAINTS`` mapping (field -> rule), in the
spirit of ``torch.distributions.Distribution.arg_constraints``. A broken rule raises
:class:`SpecError` naming the class, the field, the bad value and the rule in words.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


class SpecError(ValueError):
    """Malformed input: names the field, the value and what is allowed."""


@dataclass(frozen=True)
class Rule:
    """One constraint on a field. ``check(value, spec)`` returns True when the value is allowed."""

    words: str

    def check(self, value: Any, spec: Any) -> bool:  # pragma: no cover - overridden
        raise NotImplementedError


def is_number(value: Any) -> bool:
    """A finite real number (int, float or numpy scalar), not a bool; huge ints that overflow a float fail."""
    import numpy as np

    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


_is_number = is_number


MAX_INTEGER = 2**53  # integers above this are not exact in float64 (the engine's default dtype)


def _is_integer(value: Any) -> bool:
    return _is_number(value) and float(value).is_integer() and abs(value) <= MAX_INTEGER


@dataclass(frozen=True)
class _Positive(Rule):
    def check(self, value: Any, spec: Any) -> bool:
        return _is_number(value) and value > 0


@dataclass(frozen=True)
class _NonNegative(Rule):
    def check(self, value: Any, spec: Any) -> bool:
        return _is_number(value) and value >= 0


@dataclass(frozen=True)
class _PositiveInteger(Rule):
    def check(self, value: Any, spec: Any) -> bool:
        return _is_integer(value) and value >= 1


@dataclass(frozen=True)
class _NonNegativeInteger(Rule):
    def check(self, value: Any, spec: Any) -> bool:
        return _is_integer(value) and value >= 0


@dataclass(frozen=True)
class _UnitInterval(Rule):
    def check(self, value: Any, spec: Any) -> bool:
        return _is_number(value) and 0 < value <= 1


@dataclass(frozen=True)
class _Fraction(Rule):
    def check(self, value: Any, spec: Any) -> bool:
        return _is_number(value) and 0 <= value <= 1


@dataclass(frozen=True)
class _Probability(Rule):
    def check(self, value: Any, spec: Any) -> bool:
        return _is_number(value) and 0 <= value < 1


@dataclass(frozen=True)
class _Boolean(Rule):
    def check(self, value: Any, spec: Any) -> bool:
        return isinstance(value, bool)


@dataclass(frozen=True)
class _Divides(Rule):
    """value divides getattr(spec, other) (0 means 'not used' and always passes)."""

    other: str = ""

    def check(self, value: Any, spec: Any) -> bool:
        total = getattr(spec, self.other)
        return _is_integer(value) and (value == 0 or (value > 0 and total % value == 0))


@dataclass(frozen=True)
class _AtLeast(Rule):
    """value >= bound (a finite number)."""

    bound: float = 0.0

    def check(self, value: Any, spec: Any) -> bool:
        return _is_number(value) and value >= self.bound


positive = _Positive("a finite number > 0")
non_negative = _NonNegative("a finite number >= 0")
positive_integer = _PositiveInteger("an integer >= 1 (at most 2^53)")
non_negative_integer = _NonNegativeInteger("an integer >= 0 (at most 2^53)")
unit_interval = _UnitInterval("a number in (0, 1]")
fraction = _Fraction("a number in [0, 1]")
probability = _Probability("a number in [0, 1)")  # an acceptance probability (1 would never reject)
boolean = _Boolean("true or false")
at_least_one = _AtLeast("a finite number >= 1", 1.0)


def divides(other: str) -> Rule:
    return _Divides(f"an integer >= 0 (at most 2^53) that divides {other}", other)


def validate(spec: Any) -> None:
    """Check every rule in ``type(spec).CONSTRAINTS``; raise SpecError on the first broken one."""
    cls = type(spec)
    name = getattr(spec, "name", None)
    where = f" (spec {name!r})" if name is not None else ""
    for field, rules in cls.CONSTRAINTS.items():
        value = getattr(spec, field)
        for rule in rules if isinstance(rules, tuple) else (rules,):
            if not rule.check(value, spec):
                raise SpecError(f"{cls.__name__}.{field} = {value!r} is not allowed: must be {rule.words}{where}")


# Close matches: a name shares a prefix with the unknown one (at least 3 characters, '-' and '_' alike),
# or difflib's ratio is at least CLOSE_RATIO and within CLOSE_SPREAD of the best ratio; at most
# CLOSE_AT_MOST of them. A list of at most LIST_AT_MOST names is spelled out; a longer one is pointed to.
CLOSE_RATIO = 0.6
CLOSE_SPREAD = 0.15
CLOSE_AT_MOST = 3
LIST_AT_MOST = 20


def close_matches(name: str, available: Iterable[str]) -> list[str]:
    """The names of ``available`` that ``name`` is likely a misspelling of, best first (at most 3)."""
    names = list(dict.fromkeys(str(a) for a in available))
    key = str(name).lower().replace("-", "_")

    def norm(a: str) -> str:
        return a.lower().replace("-", "_")

    prefixed = [a for a in names if min(len(key), len(a)) >= 3 and (norm(a).startswith(key) or key.startswith(norm(a)))]
    prefixed.sort(key=lambda a: abs(len(a) - len(key)))
    ratios = sorted(((difflib.SequenceMatcher(None, key, norm(a)).ratio(), a) for a in names), key=lambda r: -r[0])
    top = ratios[0][0] if ratios else 0.0
    similar = [a for r, a in ratios if r >= CLOSE_RATIO and r >= top - CLOSE_SPREAD]
    return list(dict.fromkeys(prefixed + similar))[:CLOSE_AT_MOST]


def unknown_name_error(kind: str, name: Any, available: Iterable[str], *, see: str | None = None) -> SpecError:
    """Error for an unknown preset/option: the closest names (at most 3, only close ones), and every
    available name when there are few; of many, their count and where to find them (``see``; for
    presets, ``tensorperf presets``; with neither, the full list)."""
    available = sorted(str(a) for a in available)
    close = close_matches(str(name), available)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    if see is None and kind.endswith("preset"):
        see = "`tensorperf presets` lists them (tensorperf.presets in Python)"
    if len(available) <= LIST_AT_MOST or see is None:
        return SpecError(f"unknown {kind} {name!r}.{hint} Available: {', '.join(available)}")
    return SpecError(f"unknown {kind} {name!r}.{hint} {len(available)} names in all; {see}")


def read_toml(path: Any, kind: str = "file") -> dict[str, Any]:
    """Parse a TOML file; a missing file or bad syntax raises SpecError naming the file."""
    import os
    import tomllib

    if not isinstance(path, (str, os.PathLike)) or not str(path).strip():
        raise SpecError(f"{kind} path = {path!r} is not allowed: must be the path of a TOML file (str or Path)")
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except OSError as e:
        raise SpecError(f"{path}: cannot read {kind} ({e.strerror or e})") from None
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{path}: not valid TOML ({e})") from None
    except UnicodeDecodeError as e:
        raise SpecError(f"{path}: not valid TOML (not UTF-8 text: {e.reason} at byte {e.start})") from None
