"""The documentation site (mkdocs.yml, built by .ci/run with ``mkdocs build --strict``): every metric
of the registry is explained in the glossary, every page of docs/ is in the nav, the concepts page
names every infeasibility reason, no page cites a file the repository does not have, and the build
hooks (docs/hooks.py) generate the CLI reference from the live parser and rewrite links to files
outside docs/ correctly. The hooks module imports without mkdocs, so these run with the test extra."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from tensorperf.axes import AXES
from tensorperf.engine.masks import Reason
from tensorperf.engine.metrics import METRICS

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
GLOSSARY = (DOCS / "glossary.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def glossary_entries() -> dict[str, str]:
    """Glossary heading ``### `name` `` -> the text of its entry (up to the next heading)."""
    parts = re.split(r"^#{2,3} ", GLOSSARY, flags=re.MULTILINE)
    return {m.group(1): part for part in parts if (m := re.match(r"`(\w+)`\s*\n", part))}


def test_every_metric_has_a_glossary_entry_with_its_unit():
    entries = glossary_entries()
    missing = [name for name in METRICS if name not in entries]
    assert not missing, f"metrics with no '### `name`' entry in docs/glossary.md: {missing}"
    for name, metric in METRICS.items():
        assert "**Definition:**" in entries[name], name
        unit = re.search(r"\*\*Unit:\*\* (.+)", entries[name])
        assert unit, f"{name}: no **Unit:** line"
        # the stated unit is the registry's (e.g. "bytes", "tokens/s", "1 (requests)", "$ (per million tokens)")
        assert unit.group(1).split(" (")[0].rstrip(".") == metric.units, (name, unit.group(1), metric.units)


def test_the_glossary_entries_are_metrics():  # no entry for a variable the registry does not have
    assert set(glossary_entries()) <= set(METRICS)


def test_the_glossary_names_the_benchmarks_of_the_serving_metrics():
    entries = glossary_entries()
    assert "vllm bench serve" in entries["serving_ttft"] and "Mean TTFT" in entries["serving_ttft"]
    assert "Per GPU Output Throughput (tps/gpu)" in entries["serving_tokens_per_s_per_gpu"]
    assert "excluding the first" in entries["serving_tpot"]


def nav_pages() -> list[str]:
    text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    nav = text[text.index("\nnav:") :]
    return re.findall(r":\s*([\w./-]+\.md)\s*$", nav, flags=re.MULTILINE)


def test_the_nav_lists_every_page_of_docs_and_only_pages_that_exist(hooks):
    pages = nav_pages()
    on_disk = sorted(p.name for p in DOCS.glob("*.md"))
    assert len(pages) == len(set(pages)), pages
    assert sorted(set(on_disk) - set(pages)) == [], "pages of docs/ missing from mkdocs.yml's nav"
    assert sorted(set(pages) - set(on_disk) - {hooks.README_PAGE}) == [], "nav entries with no page"
    assert hooks.README_PAGE in pages  # the README, added to the site by the hooks


def test_the_concepts_page_names_every_reason():
    concepts = (DOCS / "concepts.md").read_text(encoding="utf-8")
    for reason in Reason:
        assert f"| {reason.value} | `{reason.name.lower()}` |" in concepts, reason


REPO_PATH = re.compile(r"(?<![\w/.-])((?:tensorperf|tests|data|examples|benchmarks|docs|\.ci)/[\w./*-]*[\w*])")


OTHER_REPO = re.compile(r"\b[\w.-]+/[\w.-]+ [0-9a-f]{7,40}\b")  # "SemiAnalysisAI/InferenceX 843c625"


def cited_paths(text: str) -> set[str]:
    """Repository paths a page mentions (tensorperf/axes.py, examples/*.toml, data/measurements.csv),
    leaving out the files of another repository: a path named after "owner/name <commit>" in the same
    paragraph (within 200 characters)."""
    found = set()
    for m in REPO_PATH.finditer(text):
        before = text[max(0, m.start() - 200) : m.start()].split("\n\n")[-1]
        if ("." in Path(m.group(1)).name or m.group(1).endswith("/")) and not OTHER_REPO.search(before):
            found.add(m.group(1))
    return found


def test_no_page_cites_a_file_outside_the_repository():
    pages = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
    missing, shared = {}, {}
    for page in pages:
        text = page.read_text(encoding="utf-8")
        bad = sorted(p for p in cited_paths(text) if not any(ROOT.glob(p)))
        if bad:
            missing[page.name] = bad
        if re.search(r"(?<![\w.-])shared/(data|seed)/", text):
            shared[page.name] = True
    assert not missing, f"paths cited in the docs that the repository does not have: {missing}"
    assert not shared, f"pages citing the steering repository's shared/ files: {sorted(shared)}"


def test_cited_paths_finds_real_and_bogus_paths():
    text = "see `tensorperf/axes.py`, examples/*.toml, data/nothere.csv and docs/model.md §3.9; tp/dp"
    assert cited_paths(text) == {"tensorperf/axes.py", "examples/*.toml", "data/nothere.csv", "docs/model.md"}
    assert not any(ROOT.glob("data/nothere.csv"))
    other = "the launch script (SemiAnalysisAI/InferenceX 843c625,\n`benchmarks/single_node/x.sh`)"
    assert cited_paths(other) == set()  # another repository's file
    assert cited_paths("(SemiAnalysisAI/InferenceX 843c625)\n\nsee benchmarks/scale.py") == {"benchmarks/scale.py"}


def test_the_cli_reference_has_every_command_and_every_sweep_flag(hooks):
    from tensorperf.interface.cli import COMMANDS

    text = hooks.cli_reference()
    for command in COMMANDS:
        assert f"\n## tensorperf {command}\n" in text, command
    sweep = text[text.index("\n## tensorperf sweep\n") : text.index("\n## tensorperf best\n")]
    for axis in AXES.values():  # the flags derive from tensorperf/axes.py; the page from the parser
        assert f"| `{axis.flag}`" in sweep, axis.flag


def test_the_registry_tables_list_every_metric_and_input(hooks):
    metrics, axes = hooks.metric_table(), hooks.axes_table()
    assert len(metrics.splitlines()) == 2 + len(METRICS)
    assert "| [`serving_ttft`](#serving_ttft) | s |" in metrics
    assert len(axes.splitlines()) == 2 + len(AXES)
    assert "| `prompt_len` | `--prompt-len` | `1024` | tokens |" in axes


def test_links_to_repository_files_point_at_their_copies_in_the_site(hooks):
    page = (
        "[fig](../examples/whatif_seed_fp8_fp4.png) [g](guide.md#python-api) [x](../nothere.py) [w](https://x.org/a.md)"
    )
    assert hooks.rewrite_links("guide.md", page) == (
        "[fig](repo/examples/whatif_seed_fp8_fp4.png) [g](guide.md#python-api) [x](../nothere.py) [w](https://x.org/a.md)"
    )
    readme = "[c](docs/concepts.md#the-grid) [s](examples/seed-scenario.toml)\n```\n[k](docs/x.md)\n```\n"
    assert hooks.rewrite_links("readme.md", readme) == (
        "[c](concepts.md#the-grid) [s](repo/examples/seed-scenario.toml)\n```\n[k](docs/x.md)\n```\n"
    )
    assert hooks.rewrite_links("repo/benchmarks/README.md", "[r](../README.md)") == "[r](../../readme.md)"
    assert hooks.linked_files("guide.md", page) == {"examples/whatif_seed_fp8_fp4.png"}


def test_the_api_reference_documents_every_public_name():
    import tensorperf

    api = (DOCS / "api.md").read_text(encoding="utf-8")
    documented = {line.split()[1].rsplit(".", 1)[-1] for line in api.splitlines() if line.startswith("::: ")}
    missing = sorted(set(tensorperf.__all__) - {"__version__"} - documented)
    assert not missing, f"public names of tensorperf with no '::: module.name' entry in docs/api.md: {missing}"


def test_the_glossary_formulas_hold_at_a_point():
    """The relations the glossary states between variables, at one feasible point (8 GPUs, B = 64,
    S = 2048, T_out = 512)."""
    import numpy as np

    import tensorperf as tp

    ds = tp.sweep(model="llama-3.1-70b", hardware="h200-sxm", weight_dtype="fp8", tp=4, dp=2, batch=64,
                  prompt_len=2048, output_len=512, breakdown=False)  # fmt: skip
    v = {name: float(ds[name]) for name in ds.data_vars}
    hw = tp.presets.hardware_spec("h200-sxm")
    B, S, T, N = 64, 2048, 512, 8
    assert v["feasible"] == 1 and v["num_gpus"] == N and v["concurrency"] == B
    per_million = hw.price_per_gpu_hour / 3600 * 1e6
    stated = {  # glossary formula -> the variable
        "e2e_latency": v["ttft"] + (T - 1) * v["tpot"],
        "tokens_per_s_per_gpu": B * T / (N * (v["ttft_max"] + (T - 1) * v["tpot"])),
        "tokens_per_s_per_user": 1 / v["tpot"],
        "decode_tokens_per_s_per_gpu": B / (N * v["tpot"]),
        "prefill_tokens_per_s_per_gpu": B * S / (N * v["ttft_max"]),
        "serving_e2e_latency": v["serving_ttft"] + (T - 1) * v["serving_tpot"],
        "serving_requests_per_s": B / v["serving_e2e_latency"],  # closed loop: Little's law
        "serving_tokens_per_s_per_gpu": v["serving_requests_per_s"] * T / N,
        "serving_tokens_per_s_per_user": 1 / v["serving_tpot"],
        "memory_per_gpu": v["weight_memory_per_gpu"] + v["kv_cache_memory_per_gpu"] + v["activation_memory_per_gpu"],
        "memory_capacity_per_gpu": 0.9 * hw.hbm_capacity,
        "energy_per_output_token": v["power_per_gpu"] / v["tokens_per_s_per_gpu"],
        "serving_energy_per_output_token": v["serving_power_per_gpu"] / v["serving_tokens_per_s_per_gpu"],
        "tokens_per_s_per_mw": v["tokens_per_s_per_gpu"]
        * 1e6
        / ((v["power_per_gpu"] + hw.host_power_per_gpu) * hw.pue),
        "serving_tokens_per_s_per_mw": v["serving_tokens_per_s_per_gpu"]
        * 1e6
        / ((v["serving_power_per_gpu"] + hw.host_power_per_gpu) * hw.pue),
        "cost_per_million_output_tokens": per_million / v["tokens_per_s_per_gpu"],
        "cost_per_million_input_tokens": per_million / v["prefill_tokens_per_s_per_gpu"],
        "serving_cost_per_million_output_tokens": per_million / v["serving_tokens_per_s_per_gpu"],
    }
    for name, value in stated.items():
        np.testing.assert_allclose(v[name], value, rtol=1e-12, err_msg=name)
