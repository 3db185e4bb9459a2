"""What-if: how much scale-up bandwidth and how big a scale-up domain does wide-EP decode of
DeepSeek-V3 need?

Question: for DeepSeek-V3 decode with wide expert parallelism on GB200-class GPUs, what output
tokens/s per GPU are reachable at >= 20 tokens/s per user, as a function of the scale-up (NVLink)
bandwidth per GPU and of the scale-up domain size (8 to 72 GPUs)? And beyond which bandwidth does
more of it stop mattering?

Setup (one sweep, one vectorized reduction, one sensitivity call):

- model ``deepseek-v3``, hardware ``gb200`` (its peaks, HBM and efficiencies; the scale-up link
  is replaced by the what-if axes), NVFP4 weights (``weight_dtype="fp4"``, as GB200 wide-EP
  deployments run them) and an fp8 KV cache (the MLA latent); activations and the all-to-all
  payloads in bf16;
- a decode-heavy workload: 1024 prompt tokens, 1024 output tokens;
- attention data parallelism with wide EP: tp=1, dp = ep = 8, 16, 32 or 64 GPUs (each GPU runs
  attention for its own requests and holds 256/ep whole experts: ep x etp = tp x dp with etp=1).
  EP must divide the 256 routed experts, so 72 GPUs cannot run EP72; the widest group is EP64,
  which fits in a 72-GPU domain;
- deployment batches of 64·k requests, k = 1..512 (divisible by every dp; per GPU that is 1 to
  512 requests at EP64 and 8 to 4096 at EP8), so the 20 tokens/s/user floor is met closely;
- what-if axes ``scaleup_bandwidth`` (100 GB/s to 7.2 TB/s per GPU per direction; GB200's NVLink5
  is 900 GB/s) and ``scaleup_size`` (8, 16, 32, 72 GPUs). Traffic that leaves the domain uses the
  preset's scale-out NIC (400 Gb/s per GPU).

Objective: ``decode_tokens_per_s_per_gpu`` under ``tokens_per_s_per_user`` (1/TPOT) >= 20. Wide-EP
DeepSeek serving is disaggregated: prefill runs on its own GPUs and the decode pool is sized by its
decode throughput at the TPOT target. ``tokens_per_s_per_gpu`` (a static batch whose prefill is
charged to the same GPUs) and ``serving_tokens_per_s_per_gpu`` (prefill interleaved on the decode
GPUs) would mix in prefill work that a disaggregated decode pool does not do; the table also
prints the aggregated-serving optimum for comparison.

Run: ``python examples/whatif_deepseek_wide_ep.py`` (prints the tables, writes
``whatif_deepseek_wide_ep.png`` next to this file; a few seconds on 2 CPU cores).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr

import tensorperf as tp

HERE = Path(__file__).resolve().parent
PNG = HERE / "whatif_deepseek_wide_ep.png"

MODEL, HARDWARE = "deepseek-v3", "gb200"
WORKLOAD = dict(weight_dtype="fp4", kv_dtype="fp8", prompt_len=1024, output_len=1024)
MIN_USER = 20.0  # tokens/s per user = 1 / TPOT
OBJECTIVE, USER = "decode_tokens_per_s_per_gpu", "tokens_per_s_per_user"
SERVING, SERVING_USER = "serving_tokens_per_s_per_gpu", "serving_tokens_per_s_per_user"
NVLINK5 = 900e9  # GB200's scale-up bandwidth per GPU per direction
FLAT = 0.05  # elasticity below which more bandwidth "stops mattering"


def axes(small: bool = False) -> dict:
    """The sweep inputs (``small``: a reduced grid for the smoke test)."""
    ep = (8, 32) if small else (8, 16, 32, 64)
    k = [2**i for i in range(10)] if small else range(1, 513)
    gbps = (100, 300, 900, 1800) if small else (100, 150, 200, 300, 450, 600, 900, 1200, 1800, 2700, 3600, 7200)
    return dict(
        model=MODEL,
        hardware=HARDWARE,
        **WORKLOAD,
        tp=1,
        dp=list(ep),
        ep=list(ep),
        zipped=["dp", "ep"],  # attention-DP + wide EP: dp = ep
        batch=[64 * i for i in k],
        scaleup_bandwidth=[g * 1e9 for g in gbps],
        scaleup_size=[8, 72] if small else [8, 16, 32, 72],
    )


def study(small: bool = False) -> xr.Dataset:
    """Best decode tokens/s/GPU at >= MIN_USER tokens/s/user per (scale-up bandwidth, domain size),
    the winner's layout, and its elasticities to scale-up bandwidth and latency."""
    inputs = axes(small)
    ds = tp.sweep(**inputs)
    ds["ep_comm_share"] = ds.decode_op_time.sel(op="ep_comm") / ds.tpot  # all-to-all share of TPOT
    keep = ["scaleup_bandwidth", "scaleup_size"]
    win = ds.tperf.best(OBJECTIVE, where={USER: (">=", MIN_USER)}, keep=keep)
    by_ep = ds.tperf.best(OBJECTIVE, where={USER: (">=", MIN_USER)}, keep=keep + ["point"])
    serving = ds.tperf.best(SERVING, where={SERVING_USER: (">=", MIN_USER)}, keep=keep)

    # d ln(throughput) / d ln(bandwidth) at each winner (its layout and batch held fixed), one
    # vectorized call over the winners: each winner is one zipped point
    flat = win.stack(case=keep)
    ints = lambda v: [int(x) for x in v.values]  # noqa: E731
    grads = tp.sensitivity(
        of=OBJECTIVE,
        wrt=["scaleup_bandwidth", "scaleup_latency"],
        **{k: v for k, v in inputs.items() if k not in ("dp", "ep", "batch", "zipped") + tuple(keep)},
        dp=ints(flat.best_dp),
        ep=ints(flat.best_ep),
        batch=ints(flat.best_batch),
        scaleup_bandwidth=[float(x) for x in flat.scaleup_bandwidth.values],
        scaleup_size=ints(flat.scaleup_size),
        zipped=["dp", "ep", "batch", "scaleup_bandwidth", "scaleup_size"],
    )
    assert np.allclose(grads.value.values, flat[OBJECTIVE].values)  # the same points
    elasticity = xr.DataArray(
        grads.elasticity.values, dims=("case", "param"), coords={"case": flat.case, "param": grads.param.values}
    ).unstack("case")

    # why the widest EP is not the best: its all-to-all pays one per-peer latency step per rank
    # ((n - 1)·alpha in the model); the same sweep at NVLink5 bandwidth in the largest domain with
    # the per-hop latency as a what-if axis
    at = {
        **inputs,
        "scaleup_bandwidth": NVLINK5,
        "scaleup_size": max(inputs["scaleup_size"]),
        "scaleup_latency": [a * 1e-6 for a in ((0.5, 2.0) if small else (0.25, 0.5, 1.0, 2.0))],
    }
    by_lat = tp.sweep(**at).tperf.best(OBJECTIVE, where={USER: (">=", MIN_USER)}, keep=["scaleup_latency", "point"])

    gbps = win.scaleup_bandwidth / 1e9
    best = win[OBJECTIVE]
    # elasticity of the envelope itself (batch re-tuned to the TPOT floor at each bandwidth):
    # log-slope between neighbouring bandwidths, placed at their geometric mean
    arc = np.log(best).diff("scaleup_bandwidth") / np.log(gbps).diff("scaleup_bandwidth")
    res = xr.Dataset(
        {
            "tokens_per_s_per_gpu": best,
            "tokens_per_s_per_user": win[USER],
            "winner_ep": win.best_ep,
            "batch_per_gpu": win.best_batch / win.best_dp,
            "ep_comm_share": win.ep_comm_share,
            "elasticity_bandwidth": elasticity.sel(param="scaleup_bandwidth", drop=True),
            "elasticity_latency": elasticity.sel(param="scaleup_latency", drop=True),
            "envelope_elasticity": arc.rename(scaleup_bandwidth="bandwidth_step"),
            "serving_tokens_per_s_per_gpu": serving[SERVING],
            "serving_ep": serving.best_ep,
            "tokens_by_ep": by_ep[OBJECTIVE]
            .drop_vars(["dp", "ep"])
            .assign_coords(point=list(inputs["ep"]))
            .rename(point="ep_width"),
            "tokens_by_latency": by_lat[OBJECTIVE]
            .drop_vars(["dp", "ep"])
            .assign_coords(point=list(inputs["ep"]))
            .rename(point="ep_width"),
            "found": win.found,
        }
    )
    return res.assign_coords(bandwidth_step=np.sqrt(gbps.values[1:] * gbps.values[:-1]) * 1e9)


def flat_from(res: xr.Dataset, name: str = "elasticity_bandwidth", below: float = FLAT) -> xr.DataArray:
    """Per domain size: the bandwidth from which ``name`` stays below ``below``, interpolated
    linearly in log(bandwidth) between grid points (NaN where it is not below at the grid's end)."""
    e = res[name]
    dim = "bandwidth_step" if "bandwidth_step" in e.dims else "scaleup_bandwidth"
    x = np.log(e[dim].values)
    out = []
    for s in e.scaleup_size.values:
        y = e.sel(scaleup_size=s).values
        above = np.flatnonzero(~(y < below))  # NaN counts as not below
        if len(above) == 0:
            out.append(np.exp(x[0]))
        elif above[-1] == len(y) - 1:
            out.append(np.nan)
        else:
            i = above[-1]
            out.append(np.exp(x[i] + (y[i] - below) / (y[i] - y[i + 1]) * (x[i + 1] - x[i])))
    return xr.DataArray(out, dims="scaleup_size", coords={"scaleup_size": e.scaleup_size.values})


def _fmt_bw(x: float) -> str:
    return f"{x / 1e9:,.0f}"


def report(res: xr.Dataset) -> str:
    """The printed tables."""
    sizes = [int(s) for s in res.scaleup_size.values]
    bws = res.scaleup_bandwidth.values
    lines = [
        f"DeepSeek-V3 decode on {HARDWARE}-like GPUs: {WORKLOAD['weight_dtype']} weights, "
        f"{WORKLOAD['kv_dtype']} KV, {WORKLOAD['prompt_len']} in / {WORKLOAD['output_len']} out, "
        "attention-DP + wide EP (tp=1, dp=ep)",
        "",
    ]

    def grid(title: str, cell) -> None:
        lines.append(title)
        lines.append("scale-up GB/s " + "".join(f"{'domain ' + str(s):>17}" for s in sizes))
        for bw in bws:
            lines.append(f"{_fmt_bw(bw):>13} " + "".join(f"{cell(bw, s):>17}" for s in sizes))
        lines.append("")

    def pick(name, bw, s):
        return res[name].sel(scaleup_bandwidth=bw, scaleup_size=s).item()

    def winner(bw, s):
        if not pick("found", bw, s):
            return "-"
        return (
            f"{pick('tokens_per_s_per_gpu', bw, s):,.0f} ep{pick('winner_ep', bw, s):.0f}"
            f" b{pick('batch_per_gpu', bw, s):.0f}"
        )

    grid(f"Best decode tokens/s/GPU at >= {MIN_USER:g} tokens/s/user (EP width, requests per GPU)", winner)
    grid(
        "Winner's elasticity to scale-up bandwidth | to scale-up latency, and all-to-all share of TPOT",
        lambda bw, s: (
            f"{pick('elasticity_bandwidth', bw, s):.3f}|{pick('elasticity_latency', bw, s):+.3f}"
            f" {100 * pick('ep_comm_share', bw, s):.0f}%"
        ),
    )
    grid(
        f"Aggregated serving (prefill interleaved): best serving tokens/s/GPU at >= {MIN_USER:g} tokens/s/user",
        lambda bw, s: f"{pick('serving_tokens_per_s_per_gpu', bw, s):,.0f} ep{pick('serving_ep', bw, s):.0f}",
    )
    top = max(sizes)
    lines.append(f"Best decode tokens/s/GPU per EP width in a {top}-GPU domain")
    lines.append("scale-up GB/s " + "".join(f"{'ep' + str(int(e)):>9}" for e in res.ep_width.values))
    for bw in bws:
        row = res.tokens_by_ep.sel(scaleup_bandwidth=bw, scaleup_size=top)
        lines.append(f"{_fmt_bw(bw):>13} " + "".join(f"{v:>9,.0f}" for v in row.values))
    lines.append("")
    lines.append(
        f"Best decode tokens/s/GPU per EP width at {_fmt_bw(NVLINK5)} GB/s in a {top}-GPU domain, "
        "by the per-peer scale-up latency"
    )
    lines.append("latency (us)  " + "".join(f"{'ep' + str(int(e)):>9}" for e in res.ep_width.values))
    for lat in res.scaleup_latency.values:
        row = res.tokens_by_latency.sel(scaleup_latency=lat)
        lines.append(f"{lat * 1e6:>12.2f}  " + "".join(f"{v:>9,.0f}" for v in row.values))
    lines.append("")
    point = flat_from(res)
    envelope = flat_from(res, "envelope_elasticity")
    bws = list(res.scaleup_bandwidth.values)
    where = lambda x: "not within the grid" if np.isnan(x) else f"~{_fmt_bw(x)} GB/s"  # noqa: E731
    lines.append(f"Where more scale-up bandwidth stops mattering (elasticity < {FLAT}):")
    for s in sizes:
        r = res.sel(scaleup_size=s)
        tok = r.tokens_per_s_per_gpu
        text = f"domain {s:>2}: "
        if NVLINK5 in bws and bws[-1] > NVLINK5:
            i = bws.index(NVLINK5)
            rel = tok / tok.sel(scaleup_bandwidth=NVLINK5) - 1
            gains = ", ".join(
                f"{100 * rel.sel(scaleup_bandwidth=b).item():+.0f}% at {_fmt_bw(b)}"
                for b in bws
                if b in (2 * NVLINK5, bws[-1])
            )
            text += (
                f"{tok.sel(scaleup_bandwidth=NVLINK5).item():,.0f} tokens/s/GPU at {_fmt_bw(NVLINK5)} GB/s, "
                f"{gains} GB/s; elasticity at {_fmt_bw(NVLINK5)} GB/s "
                f"{r.elasticity_bandwidth.sel(scaleup_bandwidth=NVLINK5).item():.3f} (winner fixed), "
                f"{r.envelope_elasticity.isel(bandwidth_step=i).item():.3f} from {_fmt_bw(NVLINK5)} to "
                f"{_fmt_bw(bws[i + 1])} (best re-chosen)\n            "
            )
        text += (
            f"below {FLAT} from {where(point.sel(scaleup_size=s).item())} (winner fixed), "
            f"{where(envelope.sel(scaleup_size=s).item())} (best re-chosen; "
            f"{r.envelope_elasticity.isel(bandwidth_step=-1).item():.3f} from {_fmt_bw(bws[-2])} to "
            f"{_fmt_bw(bws[-1])})"
        )
        lines.append(text)
    return "\n".join(lines)


def plot(res: xr.Dataset, path: Path) -> None:
    """Left: best tokens/s/GPU vs scale-up bandwidth, one line per domain size. Right: per EP width
    in the largest domain."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gbps = res.scaleup_bandwidth.values / 1e9
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4.8), sharey=True)
    sizes = res.scaleup_size.values
    for i, s in enumerate(sizes):
        last = i == len(sizes) - 1  # drawn dashed over the others: it may coincide with a smaller domain
        ax.plot(
            gbps,
            res.tokens_per_s_per_gpu.sel(scaleup_size=s),
            marker="o",
            ms=6 if last else 4,
            ls="--" if last else "-",
            mfc="none" if last else None,
            label=f"{s} GPUs",
        )
    top = int(res.scaleup_size.max())
    for e in res.ep_width.values:
        bx.plot(
            gbps,
            res.tokens_by_ep.sel(scaleup_size=top, ep_width=e),
            marker="o",
            ms=4,
            label=f"EP{int(e)} ({int(e)} GPUs)",
        )
    for a, title, legend in (
        (ax, "best EP width (8-64) per scale-up domain size", "scale-up domain"),
        (bx, f"each EP width, {top}-GPU domain", "dp = ep"),
    ):
        a.set_xscale("log")
        a.set_xticks([t for t in (100, 200, 450, 900, 1800, 3600, 7200) if gbps.min() <= t <= gbps.max()])
        a.get_xaxis().set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
        a.axvline(900, color="grey", ls=":", lw=1)
        a.text(900, 0.02, " NVLink5 (GB200)", color="grey", fontsize=8, transform=a.get_xaxis_transform())
        a.set_xlabel("scale-up bandwidth per GPU per direction (GB/s)")
        a.set_title(title, fontsize=10)
        a.grid(alpha=0.3)
        a.legend(title=legend, fontsize=8)
    ax.set_ylabel(f"decode tokens/s per GPU at >= {MIN_USER:g} tokens/s/user")
    ax.set_ylim(bottom=0)
    fig.suptitle(
        f"DeepSeek-V3 decode, attention-DP + wide EP on {HARDWARE}-like GPUs "
        f"({WORKLOAD['weight_dtype']} weights, {WORKLOAD['prompt_len']}/{WORKLOAD['output_len']} tokens)",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(small: bool = False, png: Path | None = PNG) -> xr.Dataset:
    """Run the study, print the tables, write the plot to ``png`` (None: no plot)."""
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
