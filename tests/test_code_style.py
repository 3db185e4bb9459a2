"""The tree is `ruff format` clean and passes `ruff check` (the rules in pyproject.toml, type
annotations on the package included); ruff is pinned in the test extra, so the result is stable."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TREES = ["tensorperf", "tests", "benchmarks", "examples"]


def _ruff(*args: str) -> subprocess.CompletedProcess:
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.fail("ruff is not installed: pip install -e '.[test]'")
    return subprocess.run([ruff, *args, *TREES], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_ruff_format_is_clean():
    run = _ruff("format", "--check")
    assert run.returncode == 0, run.stdout + run.stderr


def test_ruff_check_is_clean():
    run = _ruff("check", "--output-format", "concise")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr
