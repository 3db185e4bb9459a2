"""DeepSeek-V3 on one GB200 NVL72: aggregated or disaggregated serving, with or without MTP.

Question: on one 72-GPU NVLink domain of GB200, how many output tokens/s per GPU does DeepSeek-V3
serve at each interactivity (tokens/s per user), and how much of that comes from disaggregating
prefill and decode and from MTP speculative decoding? Four curves, each the Pareto frontier of
``serving_tokens_per_s_per_gpu`` (every GPU of the deployment, both pools for disaggregation)
against ``serving_tokens_per_s_per_user`` (1 / TPOT) over every layout, batch and pool ratio.

Setup:

- model ``deepseek-v3`` (DeepSeek-R1 has the same architecture), hardware ``gb200``, stack
  ``trtllm-1`` (TensorRT-LLM 1.x's fitted per-step and per-request host times: NVIDIA's published
  GB200 NVL72 DeepSeek-R1 results run TensorRT-LLM, behind Dynamo for disaggregation);
- weights ``recipe="deepseek-nvfp4"`` (dense MLPs, shared and routed experts in NVFP4, the MLA
  attention projections in block-scaled fp8, embeddings and LM head bf16): GB200 deployments run
  NVIDIA's ModelOpt NVFP4 checkpoints of DeepSeek-R1 (nvidia/DeepSeek-R1-FP4), whose DeepSeek PTQ
  leaves every ``*attn*`` layer unquantized, so the attention keeps the FP8 release's 128x128
  block scales (nvidia/DeepSeek-R1-FP4-v2 also quantizes the attention output projection ``wo``,
  which no recipe models); the generic ``modelopt-nvfp4`` (every attention projection in NVFP4)
  is not how these checkpoints run. The presets' fp4 GEMM efficiencies were fitted to nvfp4
  kernels (docs/model.md §3.13); KV cache fp8;
- workload InferenceX's 8k/1k: 8192 prompt and 1024 output tokens per request, a prefill-heavy mix
  where prompt chunks slow every aggregated decode step;
- layouts ``tp`` 1-8 x ``dp`` (attention data parallelism) x ``ep`` (every power of two up to
  tp·dp: ep = tp·dp is wide EP, smaller ep shards each expert over tp·dp/ep GPUs), at most 64
  GPUs per instance (EP must divide the 256 experts); 1 to 1024 requests in flight per DP replica
  (``batch`` = dp x that, geometric);
- MTP: ``speculative="mtp"``, ``spec_tokens=3`` draft tokens per step through the one MTP module
  (as TensorRT-LLM runs it), ``acceptance`` the preset's sourced default 0.875 (docs/model.md
  §3.14): E = (1 - 0.875^4) / (1 - 0.875) = 3.31 tokens per target step;
- disaggregated (``tp.disagg``, docs/model.md §3.15): prefill instances of 1-8 GPUs (tp x dp, ep =
  1 or tp·dp, 1/2/4 prompts per replica) and decode instances from the same layouts as above (MTP
  on the decode pool), x:y instances in lowest terms with x + y <= 36 (every instance needs at
  least 2 of the 192-GB GPUs for the ~385 GB of weights), and at most 72 GPUs in all, so the KV
  cache moves over NVLink. 1 / TPOT depends only on the decode configuration, so each decode
  configuration's best (prefill configuration, ratio) is streamed (``objective=``; some 25 million
  pairs per curve, never held at once) and the frontier is taken over those.

Run: ``python examples/deepseek_gb200_disagg_mtp.py`` (prints the table, writes
``deepseek_gb200_disagg_mtp.png`` next to this file; about 8 s on 2 CPU cores, 1.3 GB of memory).
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

import tensorperf as tp

HERE = Path(__file__).resolve().parent
PNG = HERE / "deepseek_gb200_disagg_mtp.png"

MODEL, HARDWARE, STACK, RECIPE = "deepseek-v3", "gb200", "trtllm-1", "deepseek-nvfp4"
WORKLOAD = dict(recipe=RECIPE, kv_dtype="fp8", prompt_len=8192, output_len=1024, stack=STACK)
DOMAIN = 72  # GPUs of one GB200 NVL72 NVLink domain
MIN_GPUS = 2  # GPUs an instance needs at least (the weights alone fill more than one)
SPEC_TOKENS = 3
X, Y = "serving_tokens_per_s_per_user", "serving_tokens_per_s_per_gpu"
FLOORS = (20.0, 50.0, 100.0)  # tokens/s per user
SCENARIOS = ("aggregated", "aggregated + MTP", "disaggregated", "disaggregated + MTP")
LAYOUT = ("tp", "dp", "ep", "batch")
PREFILL = ["best_prefill_tp", "best_prefill_dp", "best_prefill_ep", "best_prefill_batch"]  # its layout
POOL_VARS = [*PREFILL, "prefill_instances", "decode_instances"]


def layouts(max_gpus: int, every_ep: bool = True) -> list[tuple[int, int, int]]:
    """(tp, dp, ep) with tp in 1-8 and tp·dp <= ``max_gpus``, powers of two; ep every power of two
    up to tp·dp (``every_ep``) or only 1 and tp·dp."""
    powers = [2**i for i in range(int(math.log2(max_gpus)) + 1)]
    out = []
    for t, d in ((t, d) for t in (1, 2, 4, 8) for d in powers if t * d <= max_gpus):
        out += [(t, d, e) for e in powers if e <= t * d and (every_ep or e in (1, t * d))]
    return out


def _zipped(points: list[tuple[int, ...]]) -> dict:
    """Layout points as zipped sweep inputs (one ``point`` dim)."""
    return {**{k: [p[i] for p in points] for i, k in enumerate(LAYOUT)}, "zipped": list(LAYOUT)}


def axes(small: bool = False) -> dict:
    """The sweep inputs (``small``: a reduced grid for the smoke test): those ``shared`` by every
    scenario, the ``layouts`` of an aggregated deployment or decode instance and the ``prefill``
    instances' (zipped tp, dp, ep, batch), the ``ratio`` candidates and the ``mtp`` inputs."""
    per_replica = [1, 4, 16, 64, 256] if small else [2**k for k in range(11)]
    decode = [(t, d, e, d * b) for t, d, e in layouts(16 if small else 64, every_ep=not small) for b in per_replica]
    prefill = [(t, d, e, d * b) for t, d, e in layouts(4 if small else 8, every_ep=False) for b in (1, 2, 4)]
    most = 8 if small else DOMAIN // MIN_GPUS  # x + y instances of >= MIN_GPUS GPUs fit the domain
    ratio = [f"{x}:{y}" for x in range(1, most) for y in range(1, most) if x + y <= most and math.gcd(x, y) == 1]
    return dict(
        shared=dict(model=MODEL, hardware=HARDWARE, **WORKLOAD),
        layouts=_zipped(decode),
        prefill=_zipped(prefill),
        ratio=ratio,
        mtp=dict(speculative="mtp", spec_tokens=SPEC_TOKENS),  # acceptance: the preset's default
    )


def sweeps(small: bool = False) -> dict[str, xr.Dataset]:
    """Per scenario, the Dataset its frontier is taken from: the aggregated sweep (every layout and
    batch; both speculative settings in one pass) and, disaggregated, each decode configuration's
    best (prefill configuration, ratio) within one NVLink domain, streamed."""
    a = axes(small)
    agg = tp.sweep(**a["shared"], **a["layouts"], speculative=["none", "mtp"], spec_tokens=SPEC_TOKENS, breakdown=False)
    out = {"aggregated": agg.sel(speculative="none"), "aggregated + MTP": agg.sel(speculative="mtp")}
    for name, decode in (("disaggregated", a["layouts"]), ("disaggregated + MTP", {**a["layouts"], **a["mtp"]})):
        out[name] = tp.disagg(
            prefill=a["prefill"],
            decode=decode,
            ratio=a["ratio"],
            where={"num_gpus": ("<=", DOMAIN)},
            objective=Y,
            keep=["decode_point"],
            **a["shared"],
        )
    return out


def frontiers(datasets: dict[str, xr.Dataset]) -> dict[str, pd.DataFrame]:
    """Per scenario, its frontier (``ds.tperf.pareto_table``): one row per point, tokens/s/user
    ascending, with the layout, TTFT and GPUs (and the prefill pool and ratio where disaggregated)."""
    out = {}
    for name, ds in datasets.items():
        disagg = name.startswith("disagg")
        extra = ["serving_ttft", "num_gpus", *(POOL_VARS if disagg else [])]
        front = ds.tperf.pareto_table(X, Y, extra=extra)
        out[name] = front.rename(
            columns={**{f"decode_{k}": k for k in LAYOUT}, **{v: v.removeprefix("best_") for v in PREFILL}}
        )
    return out


def best_at(front: pd.DataFrame, floor: float) -> pd.Series | None:
    """The frontier point with the most tokens/s/GPU at >= ``floor`` tokens/s/user (None: none)."""
    ok = front[front[X] >= floor]
    return None if ok.empty else ok.loc[ok[Y].idxmax()]


def _layout(row: pd.Series, pool: str = "") -> str:
    """``tp dp ep x requests per DP replica`` of a frontier row (``pool``: the columns' prefix)."""
    t, d, e, b = (round(float(row[pool + k])) for k in LAYOUT)
    return f"tp{t} dp{d} ep{e} x{b // d}"


def layout(row: pd.Series) -> str:
    """A frontier row's deployment: its layout, or its prefill and decode instances."""
    if "prefill_instances" not in row:
        return f"{_layout(row)} ({round(row.num_gpus)} GPUs)"
    x, y = round(row.prefill_instances), round(row.decode_instances)
    return f"{x} x P[{_layout(row, 'prefill_')}] + {y} x D[{_layout(row)}] ({round(row.num_gpus)} GPUs)"


def weights() -> str:
    """The recipe's weight formats per tensor group, e.g. ``nvfp4 experts + MLPs, fp8_block attention``."""
    r = tp.presets.recipe(RECIPE)
    return f"{r.experts} experts + MLPs, {r.attention} attention ({RECIPE})" if r.experts == r.mlp else RECIPE


def report(fronts: dict[str, pd.DataFrame]) -> str:
    """The printed tables: the best tokens/s/GPU per scenario and floor, then each one's point and
    layout."""
    best = {(name, f): best_at(front, f) for name, front in fronts.items() for f in FLOORS}
    lines = [
        f"DeepSeek-V3 on GB200 NVL72 ({HARDWARE}, <= {DOMAIN} GPUs), {WORKLOAD['prompt_len']} in / "
        f"{WORKLOAD['output_len']} out, {weights()}, {WORKLOAD['kv_dtype']} KV, stack {STACK}; "
        f"MTP: {SPEC_TOKENS} draft tokens, acceptance {tp.presets.model(MODEL).mtp_acceptance}",
        "",
        "Best output tokens/s per GPU at >= N tokens/s per user ('-': no point that interactive)",
        f"{'scenario':<20}" + "".join(f"{f'N = {f:.0f}':>9}" for f in FLOORS),
    ]
    for name in fronts:
        cells = (best[name, f] for f in FLOORS)
        lines.append(f"{name:<20}" + "".join(f"{'-' if r is None else f'{r[Y]:.1f}':>9}" for r in cells))
    lines += [
        "",
        "The points (layout: tp dp ep x requests per DP replica; P prefill, D decode instances)",
        f"{'scenario':<20} {'N':>3} {'tok/s/GPU':>9} {'tok/s/user':>10} {'TTFT s':>6}  layout",
    ]
    for (name, floor), row in best.items():
        if row is None:
            most = f"none: at most {fronts[name][X].max():.1f} tok/s/user"
            lines.append(f"{name:<20} {floor:>3.0f} {'-':>9} {'-':>10} {'-':>6}  {most}")
            continue
        lines.append(f"{name:<20} {floor:>3.0f} {row[Y]:>9.1f} {row[X]:>10.1f} {row.serving_ttft:>6.2f}  {layout(row)}")
    return "\n".join(lines)


def plot(fronts: dict[str, pd.DataFrame], path: Path) -> None:
    """The four frontiers, tokens/s/GPU (log) against tokens/s/user, as steps: at an interactivity
    u a curve gives the most tokens/s/GPU of a point at >= u."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    style = {
        "aggregated": dict(color="tab:blue", ls="--", marker="o"),
        "aggregated + MTP": dict(color="tab:blue", ls="-", marker="s"),
        "disaggregated": dict(color="tab:orange", ls="--", marker="o"),
        "disaggregated + MTP": dict(color="tab:orange", ls="-", marker="s"),
    }
    fig, ax = plt.subplots(figsize=(9, 5.6))
    for name, front in fronts.items():
        x = np.concatenate([[0.0], front[X].to_numpy()])
        y = np.concatenate([front[Y].to_numpy()[:1], front[Y].to_numpy()])
        ax.plot(x, y, drawstyle="steps-pre", lw=1.6, label=name, **{**style[name], "marker": None})
        ax.plot(front[X], front[Y], ls="none", ms=4, **{k: v for k, v in style[name].items() if k != "ls"})
    for floor in FLOORS:
        ax.axvline(floor, color="grey", ls=":", lw=1)
        ax.text(floor, 0.01, f" >= {floor:.0f}", color="grey", fontsize=8, transform=ax.get_xaxis_transform())
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1, 2, 5)))
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlim(left=0)
    ax.set_xlabel("interactivity: output tokens/s per user (1 / TPOT)")
    ax.set_ylabel("throughput: output tokens/s per GPU (all GPUs of the deployment)")
    ax.grid(alpha=0.3)
    ax.legend(
        title="Pareto frontier over layouts and batches\n(disaggregated: and prefill pools, ratios)",
        loc="lower left",
        bbox_to_anchor=(0.4, 0.06),  # below the MTP curves, right of the no-MTP ones
        fontsize=9,
        title_fontsize=9,
    )
    ax.set_title(
        f"DeepSeek-V3 on GB200 NVL72 (<= {DOMAIN} GPUs), {WORKLOAD['prompt_len'] // 1024}k in / "
        f"{WORKLOAD['output_len'] // 1024}k out, TensorRT-LLM ({STACK})\n{weights()}, "
        f"{WORKLOAD['kv_dtype']} KV cache; MTP: {SPEC_TOKENS} draft tokens, acceptance "
        f"{tp.presets.model(MODEL).mtp_acceptance}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(small: bool = False, png: Path | None = PNG) -> dict[str, pd.DataFrame]:
    """Run the study, print the table, write the plot to ``png`` (None: no plot)."""
    t0 = time.perf_counter()
    fronts = frontiers(sweeps(small))
    print(report(fronts))
    if png is not None:
        plot(fronts, Path(png))
        print(f"\nwrote {png}")
    print(f"({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    return fronts


if __name__ == "__main__":
    main()
