"""MkDocs hooks for the documentation site (mkdocs.yml: ``hooks: [docs/hooks.py]``).

Two jobs, both done at build time so that nothing written by hand can drift:

- **Pages generated from the code.** A marker in a page is replaced by a table read from the live
  code, so a flag, a metric or an input added to the code is in the next build:
  ``<!-- cli-reference -->`` (docs/cli.md) by the usage and the arguments of every command of the
  argparse parser (``tensorperf.interface.cli.build_parser``), ``<!-- metric-registry -->``
  (docs/glossary.md) by the metric registry (``tensorperf.engine.metrics.METRICS``),
  ``<!-- sweep-inputs -->`` (docs/concepts.md) by the sweep inputs (``tensorperf.axes.AXES``) and
  ``<!-- disagg-variables -->`` (docs/glossary.md) by the variables of ``tp.disagg``'s Dataset.
- **Links to files of the repository outside docs/.** The pages link to ``../README.md``,
  ``../examples/*.png``, ``../benchmarks/README.md`` the way a repository browser shows them. A
  link whose target exists in the repository is pointed at a copy of that file in the site (under
  ``repo/``; Markdown files there are rendered as pages, and the README as ``readme.md``, with their
  own links rewritten the same way); a link whose target does not exist is left alone, so MkDocs
  reports it and ``mkdocs build --strict`` fails. Code blocks are left untouched.
"""

from __future__ import annotations

import argparse
import posixpath
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # mkdocs is needed to build the site, not to import this module (tests/test_docs_site.py)
    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.structure.files import Files
    from mkdocs.structure.pages import Page

ROOT = Path(__file__).resolve().parents[1]  # the repository
DOCS = "docs"
README = "README.md"
README_PAGE = "readme.md"  # the README's page in the site
COPIES = "repo"  # site folder of the other repository files the pages link to
CLI_MARKER = "<!-- cli-reference -->"
METRICS_MARKER = "<!-- metric-registry -->"
AXES_MARKER = "<!-- sweep-inputs -->"
DISAGG_MARKER = "<!-- disagg-variables -->"

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"(!?\[(?:[^\]\\]|\\.)*\])\(([^)\s]+)((?:\s+\"[^\"]*\")?)\)")
ROLE = re.compile(r":(?:func|class|mod|data|meth|attr|obj|exc):(<code>)")  # Sphinx roles in docstrings


# --------------------------------------------------------------------------- links outside docs/


def repo_path(src_uri: str) -> str:
    """The repository path of a page of the site."""
    if src_uri == README_PAGE:
        return README
    if src_uri.startswith(COPIES + "/"):
        return src_uri[len(COPIES) + 1 :]
    return f"{DOCS}/{src_uri}"


def site_path(path: str) -> str:
    """Where a repository file is in the site (``path`` is relative to the repository root)."""
    if path == README:
        return README_PAGE
    if path.startswith(DOCS + "/"):
        return path[len(DOCS) + 1 :]
    return f"{COPIES}/{path}"


def _outside_code(markdown: str) -> Iterator[tuple[bool, str]]:
    """``markdown`` in pieces, each marked True where it is prose (not a fenced code block)."""
    at = 0
    for m in FENCE.finditer(markdown):
        yield True, markdown[at : m.start()]
        yield False, m.group(0)
        at = m.end()
    yield True, markdown[at:]


def _target(src_uri: str, url: str) -> str | None:
    """The repository file a relative link of page ``src_uri`` points to (None: not a file link)."""
    if re.match(r"^[a-z][a-z0-9+.-]*:", url) or url.startswith(("#", "/")):
        return None
    path = url.split("#", 1)[0]
    if not path:
        return None
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(repo_path(src_uri)), path))
    return None if resolved.startswith("../") else resolved


def linked_files(src_uri: str, markdown: str) -> set[str]:
    """Repository files outside docs/ (and the README) that page ``src_uri`` links to and that exist."""
    found = set()
    for prose, text in _outside_code(markdown):
        for m in LINK.finditer(text) if prose else ():
            target = _target(src_uri, m.group(2))
            if target and not target.startswith(DOCS + "/") and (ROOT / target).is_file():
                found.add(target)
    return found


def rewrite_links(src_uri: str, markdown: str) -> str:
    """Point each link of page ``src_uri`` to a repository file at that file's place in the site."""

    def one(m: re.Match) -> str:
        url = m.group(2)
        target = _target(src_uri, url)
        if target is None or not (target.startswith(DOCS + "/") or (ROOT / target).is_file()):
            return m.group(0)  # a URL, an anchor, or a missing file (MkDocs reports the last)
        fragment = "#" + url.split("#", 1)[1] if "#" in url else ""
        here = posixpath.dirname(src_uri) or "."
        return f"{m.group(1)}({posixpath.relpath(site_path(target), here)}{fragment}{m.group(3)})"

    return "".join(LINK.sub(one, text) if prose else text for prose, text in _outside_code(markdown))


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add the README as a page and every repository file a page links to (transitively)."""
    from mkdocs.structure.files import File

    files.append(File.generated(config, README_PAGE, abs_src_path=str(ROOT / README)))
    todo = [(f.src_uri, Path(f.abs_src_path).read_text(encoding="utf-8")) for f in files.documentation_pages()]
    added = {README}
    while todo:
        src_uri, markdown = todo.pop()
        for path in sorted(linked_files(src_uri, markdown) - added):
            added.add(path)
            files.append(File.generated(config, site_path(path), abs_src_path=str(ROOT / path)))
            if path.endswith(".md"):
                todo.append((site_path(path), (ROOT / path).read_text(encoding="utf-8")))
    return files


# --------------------------------------------------------------------------- the CLI reference


def _cell(text: object) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _usage(parser: argparse.ArgumentParser) -> str:
    fmt = argparse.HelpFormatter(parser.prog, width=80)
    fmt.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups)
    return fmt.format_help().strip()


def _help(action: argparse.Action, prog: str) -> str:
    if not action.help or action.help == argparse.SUPPRESS:
        return ""
    params = dict(vars(action), prog=prog)
    params = {k: getattr(v, "__name__", v) for k, v in params.items()}
    return action.help % params if "%(" in action.help else action.help


def _arguments(parser: argparse.ArgumentParser) -> list[str]:
    rows = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
            continue
        if action.option_strings:
            name = ", ".join(f"`{o}`" for o in action.option_strings)
            value = "" if action.nargs == 0 else f"`{action.metavar or action.dest.upper()}`"
        else:
            name, value = f"`{action.metavar or action.dest}`", "(positional)"
            if action.choices:
                value = " \\| ".join(f"`{c}`" for c in action.choices)
        default = action.default
        shown = "" if default in (None, False, argparse.SUPPRESS) or action.nargs == 0 else f"`{default}`"
        rows.append(f"| {name} | {_cell(value)} | {_cell(shown)} | {_cell(_help(action, parser.prog))} |")
    if not rows:
        return []
    return ["| argument | value | default | what it does |", "| --- | --- | --- | --- |", *rows]


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _section(title: str, parser: argparse.ArgumentParser, summary: str | None) -> list[str]:
    lines = [f"## {title}", ""]
    lines += [summary, ""] if summary else []
    lines += [parser.description, ""] if parser.description and parser.description != summary else []
    lines += ["```", _usage(parser), "```", ""]
    args = _arguments(parser)
    lines += [*args, ""] if args else []
    if parser.epilog:
        lines += [parser.epilog, ""]
    return lines


def cli_reference() -> str:
    """Every command of the live parser as Markdown: its usage and a table of its arguments."""
    from tensorperf.interface.cli import build_parser

    parser = build_parser()
    lines = _section("tensorperf", parser, None)
    helps = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
    for name, sub in _commands(parser).items():
        lines += _section(f"tensorperf {name}", sub, helps.get(name))
    return "\n".join(lines)


# --------------------------------------------------------------------------- registry tables


def metric_table() -> str:
    """The metric registry (``tensorperf.engine.metrics.METRICS``) as a Markdown table; each name links
    to its entry on the glossary page."""
    from tensorperf.engine.metrics import METRICS

    rows = ["| variable | unit | what it is | NaN where infeasible | best is |", "| --- | --- | --- | --- | --- |"]
    for name, m in METRICS.items():
        better = "higher" if m.higher_is_better else "lower"
        masked = "yes" if m.masked else "no"
        rows.append(f"| [`{name}`](#{name}) | {_cell(m.units)} | {_cell(m.long_name)} | {masked} | {better} |")
    return "\n".join(rows)


def axes_table() -> str:
    """The sweep inputs (``tensorperf.axes.AXES``) as a Markdown table."""
    from tensorperf.axes import AXES

    rows = ["| input | CLI flag | default | unit | layout | what it is |", "| --- | --- | --- | --- | --- | --- |"]
    for name, a in AXES.items():
        default = "required" if a.required else "derived" if a.default is None else f"`{a.default}`"
        layout = "yes" if a.layout else ""
        rows.append(f"| `{name}` | `{a.flag}` | {default} | {_cell(a.unit)} | {layout} | {_cell(a.help)} |")
    return "\n".join(rows)


def disagg_table() -> str:
    """The variables of ``tp.disagg``'s Dataset (``PAIR_VARIABLES`` on every pair, ``POOL_VARIABLES`` on
    each pool's dims) as a Markdown table."""
    from tensorperf.interface.disaggregated import PAIR_VARIABLES, POOL_VARIABLES

    rows = ["| variable | unit | what it is | on |", "| --- | --- | --- | --- |"]
    rows += [f"| `{n}` | {_cell(u)} | {_cell(what)} | every pair |" for n, (u, what) in PAIR_VARIABLES.items()]
    rows += [f"| `{n}` | {_cell(u)} | {_cell(what)} | its pool's dims |" for n, (_, u, what) in POOL_VARIABLES.items()]
    return "\n".join(rows)


# --------------------------------------------------------------------------- the hooks on pages

GENERATED = (
    (CLI_MARKER, cli_reference),
    (METRICS_MARKER, metric_table),
    (AXES_MARKER, axes_table),
    (DISAGG_MARKER, disagg_table),
)


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    for marker, generate in GENERATED:
        if marker in markdown:
            markdown = markdown.replace(marker, generate())
    return rewrite_links(page.file.src_uri, markdown)


def on_page_content(html: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Docstrings use Sphinx roles (:func:`x`); mkdocstrings renders them as text before the code."""
    return ROLE.sub(r"\1", html)
