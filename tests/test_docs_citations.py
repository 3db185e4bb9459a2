"""Every citation of the modelling reference resolves: "docs/model.md §X", "docs/model.md Appendix X",
"docs/model.md §4 G1" and "docs/model.md B33" name a heading (or a bug label) of docs/model.md.

A file that cites docs/model.md may go on citing it by bare section ("§8.15", "§3.3-§3.6",
"§8.7-8.8"); those numbers are checked too. Scanned: the package, tests, benchmarks, examples,
docs and README.md (.py, .md, .toml, .json).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "model.md"
SCANNED_DIRS = ("tensorperf", "tests", "benchmarks", "examples", "docs")
SUFFIXES = frozenset({".py", ".md", ".toml", ".json"})
SKIPPED_PARTS = frozenset({"__pycache__", ".hypothesis", ".pytest_cache"})

CITE = "docs/model.md"
NUMBER = r"\d+(?:\.\d+)*"
SECTION = re.compile(rf"§\s?({NUMBER})(?:\s?[-–]\s?§?\s?({NUMBER}))?")  # §8.7, §8.7-8.8, §3.3-§3.6
APPENDIX = re.compile(r"\bAppendix\s+([A-Z])\b")
GOLDEN = re.compile(r"(?:§\s?4|docs/model\.md`?)\s+(G\d+)(?:\s?[-–]\s?(G\d+))?")  # §4 G1, §4 G3-G9
BUG = re.compile(r"docs/model\.md`?\s+(B\d+)\b")  # docs/model.md B33

HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*$", re.MULTILINE)
HEADING_LABEL = re.compile(rf"^(?:(Appendix\s+[A-Z])|(G\d+)|({NUMBER}))\.?(?:\s|$)")
BUG_LABEL = re.compile(r"\*\*(B\d+)\*\*")


def labels(doc: str) -> set[str]:
    """Labels a citation may name: '§3.9', 'Appendix A', 'G1' (headings) and 'B33' (bold bug labels)."""
    out = set()
    for title in HEADING.findall(doc):
        m = HEADING_LABEL.match(title)
        if m:
            appendix, golden, number = m.groups()
            out.add(" ".join(appendix.split()) if appendix else golden or f"§{number}")
    return out | set(BUG_LABEL.findall(doc))


def citations(text: str) -> list[str]:
    """Labels cited by a text that cites docs/model.md (none if it does not)."""
    if CITE not in text:
        return []
    found = []
    for a, b in SECTION.findall(text):
        found += [f"§{a}"] + ([f"§{b}"] if b else [])
    found += [f"Appendix {x}" for x in APPENDIX.findall(text)]
    for a, b in GOLDEN.findall(text):
        found += [a] + ([b] if b else [])
    found += BUG.findall(text)
    return found


def unresolved(text: str, known: set[str]) -> list[str]:
    return sorted({c for c in citations(text) if c not in known})


def scanned_files() -> list[Path]:
    files = [ROOT / "README.md"]
    for d in SCANNED_DIRS:
        files += [
            p
            for p in (ROOT / d).rglob("*")
            if p.suffix in SUFFIXES and p.is_file() and not SKIPPED_PARTS.intersection(p.parts)
        ]
    here = Path(__file__).resolve()
    return sorted(p for p in files if p.exists() and p.resolve() != here)


@pytest.fixture(scope="module")
def known() -> set[str]:
    return labels(DOC.read_text(encoding="utf-8"))


def test_reference_has_the_cited_chapters(known):
    for label in ("§0", "§1.6", "§2", "§3.9", "§4", "G1", "§5.3", "§6", "§7", "§8.7", "§8.22", "Appendix A", "B33"):
        assert label in known, label


def test_every_citation_resolves(known):
    cited, missing = 0, {}
    for path in scanned_files():
        text = path.read_text(encoding="utf-8")
        cited += len(citations(text)) if path != DOC else 0
        bad = unresolved(text, known)
        if bad:
            missing[str(path.relative_to(ROOT))] = bad
    assert not missing, f"citations of {CITE} with no heading there: {missing}"
    assert cited > 40  # the code does cite the reference (a broken pattern would find nothing)


def test_no_citation_of_the_old_reference():
    old = "model" + "-spec"  # (spelled apart so that this file does not cite it)
    hits = [str(p.relative_to(ROOT)) for p in scanned_files() if p != DOC and old in p.read_text(encoding="utf-8")]
    assert not hits, f"{old} is not shipped; cite {CITE} instead: {hits}"


def test_a_bogus_citation_is_reported(known):
    cite = CITE
    text = f"see {cite} §3.9 and §8.7-8.99; {cite} §4 G1-G42, {cite} Appendix Z and {cite} B99"
    assert unresolved(text, known) == ["Appendix Z", "B99", "G42", "§8.99"]
    assert unresolved(f"{cite} §3.3-§3.6, §8.15 (Appendix A)", known) == []
    assert unresolved("§99 of some other document", known) == []  # only files citing docs/model.md
