"""The HTML report page (``tensorperf report`` / ``tp.report``): one self-contained file, checked as
text, then opened in a real browser (headless Chromium through Playwright)."""

import io
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import pytest

import tensorperf as tp
from tensorperf.interface.cli import main
from tensorperf.interface.io import save

pytest.importorskip("plotly", reason="the report needs plotly: pip install -e '.[test]'")

WHERE = {"tokens_per_s_per_user": (">=", 10)}
SECTIONS = ("sweep", "best", "frontier", "cost", "breakdown", "infeasible")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ds():
    # the seed's MoE on a small grid: a frontier of a few points per hardware, infeasible points too
    return tp.sweep(
        model="gpt-moe-1.8t",
        hardware=["h100-sxm", "b200", "mi300x"],
        weight_dtype="fp8",
        prompt_len=8192,
        output_len=1024,
        batch=[1, 8, 32, 128],
        tp=[1, 2, 4, 8],
        dp=[1, 8],
        ep=[1, 8],
    )


@pytest.fixture(scope="module")
def page(ds, tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "report.html"
    assert tp.report(ds, path, where=WHERE) == path
    return path


@pytest.fixture(scope="module")
def front(ds):
    return ds.tperf.pareto_table("tokens_per_s_per_user", "tokens_per_s_per_gpu", where=WHERE)


def figure(text, div_id):
    """The data and layout of one Plotly figure of the page (as plotly.py writes it)."""
    match = re.search(r'Plotly\.newPlot\(\s*"' + re.escape(div_id) + r'",\s*', text)
    assert match, f"no figure {div_id!r} on the page"
    decoder = json.JSONDecoder()
    data, end = decoder.raw_decode(text, match.end())
    rest = re.match(r"\s*,\s*", text[end:])
    layout, _ = decoder.raw_decode(text, end + rest.end())
    return data, layout


# --------------------------------------------------------------------------- the file


def test_the_page_is_one_self_contained_html_file(page):
    from plotly.offline import get_plotlyjs

    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert get_plotlyjs() in text  # plotly.js inline, once
    assert text.count(get_plotlyjs()[:200]) == 1
    tags = re.findall(r"<(?:script|link|img|iframe)\b[^>]*>", text, flags=re.I)
    assert not [t for t in tags if re.search(r"\b(?:src|href)\s*=", t, flags=re.I)], tags
    page_only = text.replace(get_plotlyjs(), "")  # the page's own markup and scripts
    scripts = "".join(re.findall(r"<script\b[^>]*>(.*?)</script>", page_only, flags=re.S | re.I))
    assert "Plotly.newPlot" in scripts
    assert not re.search(r"https?://", scripts), re.findall(r".{40}https?://.{40}", scripts)
    assert "fetch(" not in scripts and "XMLHttpRequest" not in scripts
    # URLs appear only as text (the presets' sources), never as something a browser loads
    assert not re.search(r"""\b(?:src|href|action|data|poster)\s*=\s*["']?\s*(?:https?:)?//""", page_only, flags=re.I)


def test_the_page_has_its_sections(page, ds):
    text = page.read_text(encoding="utf-8")
    for key in SECTIONS:
        assert f'id="sec-{key}"' in text
    for heading in ("The sweep", "Best configurations", "Frontier", "Cost and energy", "Per-op breakdown"):
        assert f">{heading}</h2>" in text
    assert "<title>tensorperf report: gpt-moe-1.8t on h100-sxm, b200, mi300x" in text
    assert "prompt 8192, output 1024 tokens" in text
    for name in ("h100-sxm", "b200", "mi300x", "gpt-moe-1.8t", "fp8"):
        assert name in text
    # the infeasible reasons, by count
    codes = ds["infeasible_reason"].values
    memory = int(((codes & int(tp.Reason.MEMORY)) != 0).sum())
    assert f'<td class="s">memory</td><td class="">{memory}</td>' in text


def test_the_frontier_has_one_point_per_frontier_configuration(page, front):
    data, layout = figure(page.read_text(encoding="utf-8"), "frontier")
    assert [t["name"] for t in data] == list(dict.fromkeys(front["hardware"]))
    for trace in data:
        rows = front[front["hardware"] == trace["name"]]
        assert len(trace["x"]) == len(rows) > 0
        assert trace["x"] == pytest.approx(rows["tokens_per_s_per_user"].tolist())
        assert trace["y"] == pytest.approx(rows["tokens_per_s_per_gpu"].tolist())
        for text, (_, row) in zip(trace["text"], rows.iterrows()):
            assert f"tp={row.tp} pp=1 dp={row.dp} ep={row.ep}" in text and f"batch {row.batch}" in text
            assert "fp8 weights" in text and "TTFT" in text
    assert layout["xaxis"]["title"]["text"].startswith("output tokens per second seen by one user")


def test_the_breakdown_menu_has_a_button_per_frontier_point(page, front, ds):
    data, layout = figure(page.read_text(encoding="utf-8"), "breakdown")
    buttons = layout["updatemenus"][0]["buttons"]
    assert len(buttons) == len(front)
    row = front.iloc[0]
    point = ds.sel(hardware=row.hardware, batch=row.batch, tp=row.tp, dp=row.dp, ep=row.ep)
    assert data[0]["y"] == [str(o) for o in ds["op"].values]
    assert data[0]["x"] == pytest.approx(point["prefill_op_time"].values.tolist(), rel=1e-5)
    assert data[1]["x"] == pytest.approx((point["decode_op_time"].values * 1e3).tolist(), rel=1e-5)
    assert f"tp={row.tp} pp=1 dp={row.dp} ep={row.ep}" in buttons[0]["label"]


def test_cost_and_energy_show_when_present_and_say_so_when_absent(ds, tmp_path):
    costs = [v for v in ds.data_vars if "cost_per_million" in v or "energy_per" in v or "power_per" in v]
    bare = ds.drop_vars([*costs, "tokens_per_s_per_mw", "serving_tokens_per_s_per_mw"], errors="ignore")
    text = tp.report(bare, tmp_path / "bare.html").read_text(encoding="utf-8")
    assert "Not in this sweep: cost_per_million_output_tokens" in text
    assert 'id="cost-energy"' not in text

    rich = bare.assign(
        cost_per_million_output_tokens=(2.0 / 3600 / bare.tokens_per_s_per_gpu * 1e6).assign_attrs(units="$"),
        energy_per_output_token=(700.0 / bare.tokens_per_s_per_gpu).assign_attrs(units="J"),
    )
    text = tp.report(rich, tmp_path / "rich.html").read_text(encoding="utf-8")
    data, _ = figure(text, "cost-energy")
    front = rich.tperf.pareto_table()
    assert sum(len(t["x"]) for t in data) == 2 * len(front)  # the frontier points, in two panels
    assert "Not in this sweep: cost_per_million_input_tokens" in text
    assert "cost per M output tokens ($)" in text
    assert "Cheapest per output token" in text


def test_cli_writes_the_page(ds, tmp_path):
    results = tmp_path / "sweep.nc"
    save(ds, results)
    out = io.StringIO()
    html = tmp_path / "page.html"
    code = main(["report", str(results), "-o", str(html), "--where", "tokens_per_s_per_user>=10"], out=out)
    assert code == 0 and f"wrote {html}" in out.getvalue()
    data, _ = figure(html.read_text(encoding="utf-8"), "frontier")
    assert sum(len(t["x"]) for t in data) == len(ds.tperf.pareto_table(where=WHERE))


def test_cli_runs_a_sweep_from_flags(tmp_path):
    html = tmp_path / "page.html"
    argv = ["report", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--tp", "1,2", "--batch", "1,8"]
    assert main([*argv, "-o", str(html), "--title", "My page"], out=io.StringIO()) == 0
    assert "<title>My page</title>" in html.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["report", "RESULTS", "-o", "page.txt"], "ending in .html"),
        (["report", "RESULTS"], "-o/--output"),
        (["report", "RESULTS", "-o", "page.html", "--where", "nope>=1"], "nope"),
        (["report", "RESULTS", "-o", "page.html", "--y", "nope"], "nope"),
        (["report", "RESULTS", "-o", "/nonexistent-dir/page.html"], "nonexistent-dir"),
    ],
)
def test_bad_report_input_is_one_line_exit_2(ds, tmp_path, argv, needle, capsys):
    results = tmp_path / "sweep.nc"
    save(ds, results)
    argv = [str(results) if a == "RESULTS" else str(tmp_path / a) if a.startswith("page") else a for a in argv]
    assert main(argv, out=io.StringIO()) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and needle in err and err.count("\n") == 1


# --------------------------------------------------------------------------- in a browser

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium():
    """The system Chromium (Debian's package, installed by .ci/run), or None."""
    for name in (os.environ.get("TENSORPERF_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        found = name and shutil.which(name)
        if found:
            return found
    return None


def open_browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    executable = chromium()
    if sync_playwright is None or executable is None:
        pytest.skip(
            "no browser: the page test needs the playwright package (pip install -e '.[test]') and a Chromium "
            "executable (apt-get install chromium, as .ci/run does); "
            f"playwright {'found' if sync_playwright else 'missing'}, chromium {executable or 'missing'}"
        )
    return sync_playwright, executable


def test_the_page_renders_in_chromium(page, front, tmp_path):
    sync_playwright, executable = open_browser()
    started = time.perf_counter()
    errors, requests = [], []
    with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        browser = p.chromium.launch_persistent_context(
            profile,
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 900},
        )
        try:
            view = browser.new_page()
            view.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
            view.on("pageerror", lambda e: errors.append(f"page error: {e}"))
            view.on("request", lambda r: requests.append(r.url))
            view.goto(page.as_uri())
            view.wait_for_function(
                "['frontier', 'breakdown'].every(id => document.getElementById(id)?._fullLayout)", timeout=15_000
            )

            # the frontier as rendered: one trace per hardware, one point per frontier configuration
            rendered = view.evaluate(
                """() => {
                    const gd = document.getElementById('frontier');
                    return {
                        data: gd.data.map(t => [t.name, t.x.length]),
                        svg: [...gd.querySelectorAll('.scatterlayer .trace')].map(
                            t => t.querySelectorAll('.points path.point').length),
                        buttons: document.getElementById('breakdown').layout.updatemenus[0].buttons.length,
                    };
                }"""
            )
            expected = [[h, int((front["hardware"] == h).sum())] for h in dict.fromkeys(front["hardware"])]
            assert rendered["data"] == expected
            assert rendered["svg"] == [n for _, n in expected]
            assert sum(rendered["svg"]) == len(front)
            assert rendered["buttons"] == len(front)

            # hovering a point shows its layout: a tp=8 point of the first hardware if there is one
            first = front[front["hardware"] == expected[0][0]]
            k = int(list(first["tp"]).index(8)) if (first["tp"] == 8).any() else 0
            row = first.iloc[k]
            point = view.locator("#frontier .scatterlayer .trace").nth(0).locator("path.point").nth(k)
            view.locator("#frontier").scroll_into_view_if_needed()
            box = point.bounding_box()
            view.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            label = view.locator("#frontier .hoverlayer .hovertext")
            label.wait_for(timeout=5_000)
            hover = label.text_content()
            assert f"tp={row.tp} pp=1 dp={row.dp} ep={row.ep}" in hover, hover
            assert f"batch {row.batch}" in hover and "TTFT" in hover, hover

            # clicking it selects it in the per-op breakdown (the menu's button of that point)
            view.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            selected = "document.getElementById('breakdown').layout.updatemenus[0].active === " + str(first.index[k])
            view.wait_for_function(selected, timeout=5_000)
            title = view.evaluate("document.getElementById('breakdown').layout.title.text")
            assert f"tp={row.tp} pp=1 dp={row.dp} ep={row.ep}" in title and f"batch {row.batch}" in title

            shot = tmp_path / "report.png"
            view.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            if os.environ.get("TENSORPERF_REPORT_SCREENSHOT"):  # e.g. docs/report-example.png
                shutil.copy(shot, os.environ["TENSORPERF_REPORT_SCREENSHOT"])
        finally:
            browser.close()
    assert not errors, errors
    outside = [u for u in requests if not u.startswith(("file:", "data:", "blob:", "about:"))]
    assert not outside, outside  # no network at view time
    assert time.perf_counter() - started < 60
