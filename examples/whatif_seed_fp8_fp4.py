"""What-if: for the seed's 1.8T-parameter MoE, on which HBM (bandwidth x capacity) is fp4 worth
it over fp8?

Question: on a B200-class GPU whose HBM bandwidth and capacity we are free to choose, how much more
output throughput do fp4 weights buy over fp8 weights at the seed's interactivity target, and is
that gain driven by bandwidth (fewer bytes streamed per token) or by capacity (room for a larger
batch)?

Setup (one sweep, one vectorized reduction):

- model ``gpt-moe-1.8t`` (the seed notebook's model), hardware ``b200`` (its peaks, links and
  per-format kernel efficiencies) with the what-if axes ``hbm_bandwidth`` (3-16 TB/s) and
  ``hbm_capacity`` (80-384 GB per GPU); ``weight_dtype`` fp8 vs fp4, KV cache and activations in
  bf16 as in the seed scenario (``tensorperf`` with no arguments);
- the seed workload: prompts of 8K and 16K tokens, 1024 output tokens;
- every power-of-two layout of exactly 64 GPUs, tp x pp x dp = 64 and ep in 1..16 dividing tp x dp,
  enumerated once and passed zipped (one ``point`` dimension) rather than as a Cartesian product
  masked by ``world_size=64`` (which would compute seven times as many layouts);
- deployment batches 1, 2, 4-60 in steps of 4 and 64-768 in steps of 16;
- objective: ``tokens_per_s_per_gpu`` (a static batch's output tokens over its whole life, prefill
  included; the metric ``tensorperf sweep examples/seed-scenario.toml`` ranks by) at ``tokens_per_s_per_user``
  >= 20, best over layouts and batches for each (dtype, prompt, bandwidth, capacity).

A capacity axis value of 10 TB (not plotted) gives the same optimum with memory never binding: a
cell whose fp8 optimum is > 2% below it is marked "capacity-bound" (more HBM would raise it).

Run: ``python examples/whatif_seed_fp8_fp4.py`` (prints the tables, writes
``whatif_seed_fp8_fp4.png`` next to this file; about 3.5 s and 2.3 GB peak RSS on 2 CPU cores).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr

import tensorperf as tp

HERE = Path(__file__).resolve().parent
PNG = HERE / "whatif_seed_fp8_fp4.png"

MODEL, HARDWARE = "gpt-moe-1.8t", "b200"
GPUS = 64
MIN_USER = 20.0
OBJECTIVE, USER = "tokens_per_s_per_gpu", "tokens_per_s_per_user"
UNLIMITED = 10e12  # bytes: an HBM capacity that never binds (reference column, not plotted)
CAPACITY_BOUND = 0.98  # fp8 optimum below this fraction of its unlimited-capacity value


def layouts(gpus: int = GPUS) -> list[tuple[int, int, int, int]]:
    """Every power-of-two (tp, pp, dp, ep) with tp·pp·dp = gpus and ep (1..16) dividing tp·dp."""
    p2 = [2**i for i in range(int(np.log2(gpus)) + 1)]
    return [
        (t, p, d, e)
        for t in p2
        for p in p2
        for d in p2
        for e in (1, 2, 4, 8, 16)
        if t * p * d == gpus and (t * d) % e == 0
    ]


def axes(small: bool = False) -> dict:
    """The sweep inputs (``small``: a reduced grid for the smoke test)."""
    tps, pps, dps, eps = (list(v) for v in zip(*layouts()))
    tbps = (4, 8, 16) if small else (3, 4, 5, 6, 8, 10, 12, 16)
    gbs = (96, 192) if small else (80, 96, 128, 144, 192, 256, 288, 384)
    return dict(
        model=MODEL,
        hardware=HARDWARE,
        weight_dtype=["fp8", "fp4"],
        prompt_len=[8192] if small else [8192, 16384],
        output_len=1024,
        tp=tps,
        pp=pps,
        dp=dps,
        ep=eps,
        zipped=["tp", "pp", "dp", "ep"],
        batch=[2**i for i in range(9)] if small else [1, 2, *range(4, 64, 4), *range(64, 769, 16)],
        hbm_bandwidth=[t * 1e12 for t in tbps],
        hbm_capacity=[g * 1e9 for g in gbs] + [UNLIMITED],
    )


def study(small: bool = False) -> xr.Dataset:
    """Best tokens/s/GPU at >= MIN_USER tokens/s/user for each (dtype, prompt, bandwidth, capacity),
    its layout, the fp4/fp8 ratio and the capacity-bound flags."""
    ds = tp.sweep(**axes(small))
    keep = ["weight_dtype", "prompt_len", "hbm_bandwidth", "hbm_capacity"]
    win = ds.tperf.best(OBJECTIVE, where={USER: (">=", MIN_USER)}, keep=keep)
    del ds
    tok = win[OBJECTIVE]
    finite = win.sel(hbm_capacity=win.hbm_capacity < UNLIMITED)
    unlimited = tok.sel(hbm_capacity=UNLIMITED, drop=True)
    fp8, fp4 = (finite[OBJECTIVE].sel(weight_dtype=d, drop=True) for d in ("fp8", "fp4"))
    layout = xr.apply_ufunc(
        lambda t, p, d, e, b: f"{t:.0f}/{p:.0f}/{d:.0f}/{e:.0f} b{b:.0f}" if np.isfinite(b) else "-",
        finite.best_tp,
        finite.best_pp,
        finite.best_dp,
        finite.best_ep,
        finite.best_batch,
        vectorize=True,
    )
    return xr.Dataset(
        {
            "tokens_per_s_per_gpu": finite[OBJECTIVE],
            "tokens_per_s_per_user": finite[USER],
            "unlimited_capacity": unlimited,
            "layout": layout,  # tp/pp/dp/ep and batch of the winner
            "memory_fill": finite.memory_per_gpu / finite.memory_capacity_per_gpu,
            "capacity_bound": finite[OBJECTIVE] < CAPACITY_BOUND * unlimited,
            "ratio": fp4 / fp8,  # NaN where fp8 never reaches MIN_USER (inf-free)
            "fp4_only": fp4.notnull() & fp8.isnull(),
            "found": finite.found,
        }
    )


def _tb(x: float) -> str:
    return f"{x / 1e12:g}"


def _gb(x: float) -> str:
    return f"{x / 1e9:g}"


def report(res: xr.Dataset) -> str:
    """The printed tables: per prompt, each dtype's best tokens/s/GPU and the fp4/fp8 ratio map."""
    caps = res.hbm_capacity.values
    lines = [
        f"{MODEL} on {GPUS} {HARDWARE}-like GPUs, seed workload (1024 output tokens), best output "
        f"tokens/s/GPU at >= {MIN_USER:g} tokens/s/user over every {GPUS}-GPU layout and batch",
        "",
    ]
    header = "HBM TB/s \\ GB" + "".join(f"{_gb(c):>8}" for c in caps)
    for prompt in res.prompt_len.values:
        r = res.sel(prompt_len=prompt)
        for dtype in ("fp8", "fp4"):
            d = r.sel(weight_dtype=dtype)
            lines.append(
                f"prompt {prompt}, {dtype} weights: tokens/s/GPU ('c': capacity-bound, more HBM "
                "would raise it; '-': no layout reaches the floor)"
            )
            lines.append(header + f"{'unlimited':>11}")
            for bw in r.hbm_bandwidth.values:
                row = d.sel(hbm_bandwidth=bw)
                cells = "".join(
                    f"{'-':>8}" if np.isnan(v) else f"{v:>7.1f}{'c' if cb else ' '}"
                    for v, cb in zip(row.tokens_per_s_per_gpu.values, row.capacity_bound.values)
                )
                free = row.unlimited_capacity.item()
                lines.append(f"{_tb(bw):>12} {cells}{'-' if np.isnan(free) else f'{free:.1f}':>11}")
            lines.append("")
        lines.append(f"prompt {prompt}: fp4 / fp8 best tokens/s/GPU ('fp4': only fp4 reaches the floor)")
        lines.append(header)
        for bw in r.hbm_bandwidth.values:
            row = r.sel(hbm_bandwidth=bw)
            cells = "".join(
                f"{'fp4':>8}" if only else f"{'-':>8}" if np.isnan(v) else f"{v:>8.2f}"
                for v, only in zip(row.ratio.values, row.fp4_only.values)
            )
            lines.append(f"{_tb(bw):>12} {cells}")
        lines.append("")
        w = r.sel(hbm_bandwidth=8e12, hbm_capacity=192e9, method="nearest")
        lines.append(
            f"prompt {prompt}, winners at {_tb(w.hbm_bandwidth.item())} TB/s, {_gb(w.hbm_capacity.item())} GB "
            f"(tp/pp/dp/ep batch): fp8 {w.layout.sel(weight_dtype='fp8').item()}, "
            f"fp4 {w.layout.sel(weight_dtype='fp4').item()}"
        )
        lines.append("")
    return "\n".join(lines).rstrip()


def plot(res: xr.Dataset, path: Path) -> None:
    """Heatmaps of the fp4/fp8 ratio (one panel per prompt length) over (capacity, bandwidth)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    prompts = res.prompt_len.values
    ratio = res.ratio
    hi = float(np.nanmax(ratio.values)) if np.isfinite(ratio.values).any() else 2.0
    norm = LogNorm(vmin=1.0, vmax=max(2.0, hi))
    fig, axes_ = plt.subplots(1, len(prompts), figsize=(5.6 * len(prompts) + 1.2, 5.0), squeeze=False)
    caps, bws = res.hbm_capacity.values, res.hbm_bandwidth.values
    for ax, prompt in zip(axes_[0], prompts):
        r = res.sel(prompt_len=prompt)
        grid = r.ratio.transpose("hbm_bandwidth", "hbm_capacity").values
        image = ax.imshow(np.ma.masked_invalid(grid), origin="lower", aspect="auto", cmap="viridis", norm=norm)
        ax.set_facecolor("0.85")
        cap8 = r.capacity_bound.sel(weight_dtype="fp8").transpose("hbm_bandwidth", "hbm_capacity").values
        only = r.fp4_only.transpose("hbm_bandwidth", "hbm_capacity").values
        presets_at = {(8e12, 192e9): "B200", (8e12, 288e9): "B300"}  # preset-like cells, framed
        for i, bw in enumerate(bws):
            for j, cap in enumerate(caps):
                v = grid[i, j]
                if only[i, j]:
                    text, color = "fp4\nonly", "black"
                elif np.isnan(v):
                    text, color = "-", "black"
                else:
                    text = f"{v:.2f}" + ("\ncap" if cap8[i, j] else "")
                    color = "black" if norm(v) > 0.6 else "white"
                name = presets_at.get((float(bw), float(cap)))
                if name:
                    text += f"\n{name}"
                    ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="red", lw=1.5))
                ax.text(j, i, text, ha="center", va="center", fontsize=7.5, color=color)
        ax.set_xticks(range(len(caps)), [_gb(c) for c in caps])
        ax.set_yticks(range(len(bws)), [_tb(b) for b in bws])
        ax.set_xlabel("HBM capacity per GPU (GB)")
        ax.set_ylabel("HBM bandwidth per GPU (TB/s)")
        ax.set_title(f"prompt {prompt} / 1024 output tokens", fontsize=10)
    bar = fig.colorbar(image, ax=axes_[0].tolist(), fraction=0.05, pad=0.02)
    ticks = [t for t in (1.0, 1.1, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0) if t <= norm.vmax]
    bar.set_ticks(ticks, labels=[f"{t:g}x" for t in ticks])
    bar.set_label(f"fp4 / fp8 best tokens/s/GPU at >= {MIN_USER:g} tokens/s/user")
    fig.suptitle(
        f"{MODEL} on {GPUS} {HARDWARE}-like GPUs: what fp4 weights buy over fp8 "
        "('cap': fp8 is capacity-bound there; framed: B200's and B300's HBM)",
        fontsize=11,
    )
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def main(small: bool = False, png: Path | None = PNG) -> xr.Dataset:
    """Run the study, print the tables, write the heatmap to ``png`` (None: no plot)."""
    t0 = time.perf_counter()
    res = study(small)
    print(report(res))
    if png is not None:
        plot(res, Path(png))
        print(f"\nwrote {png}")
    print(f"({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    return res


if __name__ == "__main__":
    main()
