"""Points per second and peak memory versus grid size (1e4 .. 1e8 points), float64/float32, CPU (and
CUDA when present), plus side-by-side ratios against a scalar per-configuration loop of the seed
notebook's own model (benchmarks/seed_scalar.py) and against llm-analysis when it is importable.

Run:  python benchmarks/scale.py                      # full default run (1e4 .. 1e8)
      python benchmarks/scale.py --quick              # 1e4 .. 1e6, one repetition
      python benchmarks/scale.py --sizes 1e6,1e7 --repeat 2
      python benchmarks/scale.py --llm-analysis-path /tmp/llma_pkgs   # llm-analysis outside site-packages

Each table row runs in a fresh subprocess (``scale.py --row <json>``) so its peak RSS
(``getrusage(RUSAGE_SELF).ru_maxrss``, read inside the child) is that row's alone.

Modes:
  engine  build_grid + ``roofline.evaluate(grid, {}, breakdown=False)`` in memory (every scalar
          metric, no per-op breakdown); time = best of --repeat evaluate calls (grid build excluded,
          shown separately). ``growth B/pt`` = (peak RSS after the first evaluate - peak RSS before
          it) / points: the engine's working bytes per point.
  engine+breakdown  the same with ``breakdown=True`` (7 vars x 13 ops per point more).
  stream  ``tensorperf.best("tokens_per_s_per_gpu", where={"tokens_per_s_per_user": (">=", 20)},
          memory="2GB", progress=False, **axes)``: one run, wall time of the whole call (grid build,
          probe, every chunk, the reduction). ``growth B/pt`` = peak RSS growth / points per chunk.
          Chunks compute the metrics the search names (and memory, counts, feasibility); the winner's
          others are computed at the end for it alone.
  stream-all  ``tensorperf.reduce(FullMetricCount(), memory="2GB", ...)``: the same streaming with
          a reduction that names no metrics, so every chunk computes the full metric set (the speed
          target's measure at 1e7 and 1e8).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

POW2 = [1, 2, 4, 8, 16, 32, 64]
EP = [1, 2, 4, 8, 16]
HW8 = ["h100-sxm", "h200-sxm", "b200", "gb200", "b300", "gb300", "mi300x", "mi355x"]
WD3 = ["bf16", "fp8", "fp4"]
BATCH9 = [1, 2, 4, 8, 16, 32, 64, 128, 256]
MODELS3 = ["gpt-moe-1.8t", "deepseek-v3", "qwen3-235b-a22b"]
MODELS9 = MODELS3 + [
    "llama-4-maverick",
    "mixtral-8x7b",
    "llama-3.1-405b",
    "llama-3.1-70b",
    "gpt-oss-120b",
    "llama-4-scout",
]
PROMPT3 = [2048, 8192, 16384]
PROMPT10 = [256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072]
OUTPUT3 = [128, 1024, 4096]
LAYOUT = dict(tp=POW2, pp=POW2, dp=POW2, ep=EP)  # 1,715 layouts

# Realistic grids, growing the axes to reach each size (points in the comments).
GRIDS = {
    1e4: dict(
        model="gpt-moe-1.8t",
        hardware=["h100-sxm", "b200"],
        weight_dtype="fp8",
        prompt_len=8192,
        output_len=1024,
        batch=[1, 16, 128],
        **LAYOUT,
    ),  # 10,290
    1e5: dict(
        model="gpt-moe-1.8t",
        hardware=HW8[:4],
        weight_dtype=WD3,
        prompt_len=8192,
        output_len=1024,
        batch=[1, 4, 16, 64, 256],
        **LAYOUT,
    ),  # 102,900
    1e6: dict(
        model="gpt-moe-1.8t",
        hardware=HW8,
        weight_dtype=WD3,
        prompt_len=PROMPT3,
        output_len=1024,
        batch=BATCH9,
        **LAYOUT,
    ),  # 1,111,320 (the grid of grid_throughput.py)
    1e7: dict(
        model=MODELS3, hardware=HW8, weight_dtype=WD3, prompt_len=PROMPT3, output_len=OUTPUT3, batch=BATCH9, **LAYOUT
    ),  # 10,001,880
    1e8: dict(
        model=MODELS9, hardware=HW8, weight_dtype=WD3, prompt_len=PROMPT10, output_len=OUTPUT3, batch=BATCH9, **LAYOUT
    ),  # 100,018,800
}
STREAM_ABOVE = 2e6  # sizes above this are streamed (tensorperf.best), at or below evaluated in memory
OBJECTIVE = "tokens_per_s_per_gpu"
WHERE = {"tokens_per_s_per_user": (">=", 20)}
MEMORY = "2GB"


def _rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


# --------------------------------------------------------------------------- one row (child process)


class FullMetricCount:
    """A streamed reduction that names no metrics (no ``metrics`` attribute), so every chunk computes
    every scalar metric; it keeps the feasible count and the metrics it saw (cheap next to them)."""

    def partial(self, result):
        return int(result.feasible.sum()), frozenset(result.values)

    def merge(self, state, part):
        return part if state is None else (state[0] + part[0], state[1] & part[1])

    def finish(self, state, grid):
        return state


def run_row(spec: dict) -> dict:
    import torch

    import tensorperf as tp
    from tensorperf.engine import roofline
    from tensorperf.run import chunks
    from tensorperf.run.allocator import keep_freed_memory
    from tensorperf.run.inputs import build_grid

    torch.set_grad_enabled(False)
    dtype = getattr(torch, spec["dtype"])
    device = spec["device"]
    axes = GRIDS[spec["size"]]
    out = {"threads": torch.get_num_threads()}
    if spec["mode"] in ("engine", "engine+breakdown"):
        breakdown = spec["mode"] == "engine+breakdown"
        keep_freed_memory()  # as tensorperf.sweep and the streamed reductions do
        t0 = time.perf_counter()
        grid = build_grid(**axes, dtype=dtype, device=device)
        out["build_s"] = time.perf_counter() - t0
        base = _rss_bytes()
        times = []
        for i in range(spec["repeat"]):
            t0 = time.perf_counter()
            ev = roofline.evaluate(grid, {}, breakdown=breakdown)
            _sync(device)
            times.append(time.perf_counter() - t0)
            if i == 0:
                out["growth_bytes"] = _rss_bytes() - base
            del ev
        out.update(points=grid.size, seconds=min(times), times=times, chunks=1, chunk_points=grid.size)
    elif spec["mode"] in ("stream", "stream-all"):
        grid = build_grid(**axes, dtype=dtype, device=device)
        chunk_points = chunks.points_for_memory(MEMORY, dtype)
        out["chunks"], _ = chunks.plan(grid, chunk_points)
        out["chunk_points"] = min(chunk_points, grid.size)
        points = grid.size
        del grid
        kw = dict(memory=MEMORY, progress=False, dtype=dtype, device=device, **axes)
        if spec["mode"] == "stream":
            call = lambda: tp.best(OBJECTIVE, where=WHERE, **kw)  # noqa: E731
        else:  # a reduction naming no metrics: every chunk computes all of them
            call = lambda: tp.reduce(FullMetricCount(), **kw)  # noqa: E731
        base = _rss_bytes()
        times = []
        for i in range(spec["repeat"]):
            t0 = time.perf_counter()
            res = call()
            _sync(device)
            times.append(time.perf_counter() - t0)
            if i == 0:
                out["growth_bytes"] = _rss_bytes() - base
        out.update(seconds=min(times), times=times, points=points)
        if spec["mode"] == "stream-all":
            out.update(feasible=res[0], metrics=len(res[1]))
        else:
            out["winner"] = {k: res[k].item() for k in res.data_vars if k.startswith("best_")}
            out["winner"].update({OBJECTIVE: float(res[OBJECTIVE]), "found": bool(res["found"])})
            for c in ("model", "hardware", "weight_dtype"):
                if f"best_{c}" in res:
                    out["winner"][f"best_{c}"] = str(res[f"best_{c}"].item())
    else:
        raise SystemExit(f"unknown mode {spec['mode']!r}")
    out["peak_rss_bytes"] = _rss_bytes()
    if device.startswith("cuda"):
        out["peak_cuda_bytes"] = torch.cuda.max_memory_allocated()
    return out


def spawn_row(spec: dict, timeout: float) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--row", json.dumps(spec)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if p.returncode != 0:
        return {"error": (p.stderr.strip().splitlines() or ["?"])[-1][:200]}
    return json.loads(p.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- machine


def machine() -> list[str]:
    import torch

    cpu = "?"
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    mem = "?"
    with contextlib.suppress(OSError):
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    mem = f"{int(line.split()[1]) / 2**20:.0f} GiB"
                    break
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    import tensorperf

    src = os.path.dirname(os.path.dirname(os.path.abspath(tensorperf.__file__)))
    git = subprocess.run(["git", "-C", src, "log", "-1", "--format=%h %cs"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", src, "status", "--porcelain", "tensorperf"], capture_output=True, text=True)
    rev = (
        f"git {git.stdout.strip()}{' + uncommitted changes' if dirty.stdout.strip() else ''}"
        if git.returncode == 0
        else "not a git checkout"
    )
    return [
        f"platform: {platform.platform()}, python {platform.python_version()}",
        f"cpu: {cpu}; {os.cpu_count()} logical cores, {usable} usable; memory {mem}; GPU: {gpu}",
        f"tensorperf from {src} ({rev})",
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; load average at start "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}",
    ]


# --------------------------------------------------------------------------- side by side

SEED_P = [256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072]
SEED_B = [1, 2, 4, 8, 16, 32, 64, 128, 256]
SEED_DP = [1, 2, 4, 8]  # dp <= 8: the notebook divides by 200 // (GPUs per node in the layout) > 0


def _best(fn, repeat):
    from grid_throughput import best_of  # (benchmarks/ is on sys.path when a script here runs)

    return best_of(fn, repeat)


def side_by_side(repeat: int, quick: bool, llm_path: str | None) -> list[str]:
    import seed_scalar
    import torch

    from tensorperf.engine import roofline, seed
    from tensorperf.run.inputs import build_grid

    torch.set_grad_enabled(False)
    P = SEED_P[2:7] if quick else SEED_P
    B = SEED_B[::2] if quick else SEED_B
    axes = dict(model="gpt-moe-1.8t", hardware="mi300-seed", prompt_len=P, batch=B, tp=POW2, pp=POW2, dp=SEED_DP, ep=EP)
    configs = list(itertools.product(P, B, POW2, POW2, SEED_DP, EP))
    n = len(configs)
    lines = [
        f"Side by side on the same {n:,} configurations (gpt-moe-1.8t on the seed's mi300, prompt_len x "
        f"batch x tp x pp x dp x ep = {len(P)}x{len(B)}x7x7x{len(SEED_DP)}x5), best of {repeat}:"
    ]

    def scalar_loop():
        return [seed_scalar.ttft_one(b, s, dp, pp, tp_, ep) for s, b, tp_, pp, dp, ep in configs]

    t_scalar = _best(scalar_loop, repeat)
    ref = scalar_loop()
    # apples to apples: the scalar loop reproduces tensorperf's seed-convention ttft
    g64 = build_grid(**axes, dtype=torch.float64)
    got = seed.evaluate(g64, {}, breakdown=False).values["ttft"].expand(g64.shape).reshape(-1).tolist()
    assert g64.dims == ("prompt_len", "batch", "tp", "pp", "dp", "ep"), g64.dims
    worst = max(abs(r * 1e-3 - v) / abs(v) if v else abs(r) for r, v in zip(ref, got))
    assert worst <= 1e-9, f"scalar seed loop and convention='seed' differ: max rel {worst:.3e}"
    exact = sum(r * 1e-3 == v for r, v in zip(ref, got))
    rows = [("scalar seed loop (notebook code, per config)", "float64", t_scalar, None)]
    for dt in (torch.float64, torch.float32):
        name = str(dt).removeprefix("torch.")
        for conv, fn in (("seed", seed.evaluate), ("roofline", roofline.evaluate)):
            grid = build_grid(**axes, dtype=dt)
            t_eval = _best(lambda fn=fn, grid=grid: fn(grid, {}, breakdown=False), repeat)
            t_all = _best(lambda fn=fn, dt=dt: fn(build_grid(**axes, dtype=dt), {}, breakdown=False), repeat)
            rows.append((f"vectorized {conv} (evaluate, breakdown=False)", name, t_eval, t_all))
    lines.append(
        f"  scalar loop == convention='seed' ttft: max rel diff {worst:.1e} (bit-identical on {exact:,}/{n:,})"
    )
    lines.append(f"  {'what':50} {'dtype':8} {'s':>9} {'configs/s':>10} {'s incl. build':>14} {'configs/s incl.':>16}")
    for what, name, t, t_all in rows:
        extra = f"{t_all:14.4f} {n / t_all:16.3e}" if t_all else f"{'':14} {'':16}"
        lines.append(f"  {what:50} {name:8} {t:9.4f} {n / t:10.3e} {extra}")
    rate = {(w.split()[1] if w.startswith("vectorized") else "scalar", d): n / t for w, d, t, _ in rows}
    rate_all = {(w.split()[1], d): n / ta for w, d, t, ta in rows if ta}
    s = rate[("scalar", "float64")]
    lines.append("  ratios (evaluate only; incl. grid build in brackets):")
    for conv in ("roofline", "seed"):
        for d in ("float64", "float32"):
            lines.append(
                f"    vectorized {conv} {d} / scalar seed loop: {rate[(conv, d)] / s:,.1f}x "
                f"[{rate_all[(conv, d)] / s:,.1f}x]"
            )
    for conv in ("roofline", "seed"):
        lines.append(f"    {conv} float32 / float64: {rate[(conv, 'float32')] / rate[(conv, 'float64')]:.2f}x")
    lines += llm_analysis_lines(repeat, quick, llm_path, rate)
    return lines


def llm_analysis_lines(repeat: int, quick: bool, llm_path: str | None, rate: dict) -> list[str]:
    if llm_path:
        sys.path.insert(0, llm_path)
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # its import warns that transformers is absent
            import logging

            from llm_analysis.analysis import LLMAnalysis
            from llm_analysis.config import (
                ModelConfig,
                ParallelismConfig,
                get_dtype_config_by_name,
                get_gpu_config_by_name,
            )
            from llm_analysis.logger import logger
        logger.setLevel(logging.ERROR)
    except Exception:  # noqa: BLE001 - any import failure means "not available"
        return ["llm-analysis: not installed"]
    try:
        from importlib.metadata import version

        try:
            ver = version("llm-analysis")
        except Exception:  # noqa: BLE001 - installed with --target: no metadata on the path
            ver = "?"
        model = ModelConfig(
            name="gpt-moe-1.8t",
            num_layers=120,
            n_head=96,
            hidden_dim=10752,
            vocab_size=100256,
            max_seq_len=16384,
            ffn_embed_dim=43008,
            moe_num_experts=16,
            moe_top_k=4,
        )
        gpu = get_gpu_config_by_name("h100-sxm-80gb")
        dtype = get_dtype_config_by_name("w16a16e16")
        configs = list(itertools.product(POW2, [1, 2, 4, 8], EP, [1, 4, 16, 64], [1024, 8192]))
        if quick:
            configs = configs[::4]

        def one(tp_, pp, ep, b, s):
            a = LLMAnalysis(
                model,
                gpu,
                dtype,
                ParallelismConfig(tp_size=tp_, pp_size=pp, ep_size=ep),
                flops_efficiency=0.5,
                hbm_memory_efficiency=0.9,
            )
            return a.inference(batch_size_per_gpu=b, seq_len=s, num_tokens_to_generate=1024)

        fits = []
        for c in configs:  # it asserts when the model does not fit: time only the configurations it evaluates
            try:
                one(*c)
                fits.append(c)
            except AssertionError:
                pass
        if not fits:
            return ["llm-analysis: installed, but no configuration fit"]
        t = _best(lambda: [one(*c) for c in fits], repeat)
        n = len(fits)
        r = n / t
        return [
            f"llm-analysis {ver}: LLMAnalysis(...).inference(...) per configuration, gpt-moe-1.8t-like MoE "
            f"(120 x 10752, 16 experts top-4) on h100-sxm-80gb, the {n} of {len(configs)} configs "
            f"(tp x pp x ep x batch x seq_len) that fit its memory check: {t:.4f} s, {r:,.0f} configs/s",
            f"    vectorized roofline float64 / llm-analysis: {rate[('roofline', 'float64')] / r:,.1f}x; "
            f"vectorized seed float64 / llm-analysis: {rate[('seed', 'float64')] / r:,.1f}x; "
            f"scalar seed loop / llm-analysis: {rate[('scalar', 'float64')] / r:,.1f}x",
        ]
    except Exception as e:  # noqa: BLE001 - never fail the benchmark because of a peer
        return [f"llm-analysis: installed but could not run ({type(e).__name__}: {e})"]


# --------------------------------------------------------------------------- main


def plan_rows(sizes, devices, repeat, big_repeat):
    rows = []
    for size in sizes:
        for device in devices:
            for dtype in ("float64", "float32"):
                mode = "stream" if size > STREAM_ABOVE else "engine"
                rows.append(
                    dict(size=size, dtype=dtype, device=device, mode=mode, repeat=big_repeat if size >= 1e8 else repeat)
                )
                if size > STREAM_ABOVE:  # the full metric set, streamed
                    rows.append(
                        dict(
                            size=size,
                            dtype=dtype,
                            device=device,
                            mode="stream-all",
                            repeat=big_repeat if size >= 1e8 else repeat,
                        )
                    )
                if math.isclose(size, 1e6):  # the 1e6 grid also streamed, and with the per-op breakdown
                    rows.append(dict(size=size, dtype=dtype, device=device, mode="stream", repeat=repeat))
                    if dtype == "float64":
                        rows.append(dict(size=size, dtype=dtype, device=device, mode="engine+breakdown", repeat=repeat))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--sizes", default="1e4,1e5,1e6,1e7,1e8", help="grid sizes, from " + ", ".join(f"{s:g}" for s in GRIDS)
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=5,
        help="repetitions per row and of the side-by-side timings (the best is kept: the machine is shared and noisy)",
    )
    ap.add_argument("--big-repeat", type=int, default=2, help="repetitions of the 1e8 rows")
    ap.add_argument("--quick", action="store_true", help="sizes 1e4..1e6, one repetition, fewer side-by-side configs")
    ap.add_argument("--row-timeout", type=float, default=1800, help="seconds allowed per row subprocess")
    ap.add_argument(
        "--llm-analysis-path",
        default=None,
        help="directory to put on sys.path for llm_analysis (e.g. installed with pip install --target DIR)",
    )
    ap.add_argument("--no-side-by-side", action="store_true")
    ap.add_argument("--row", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.row is not None:
        print(json.dumps(run_row(json.loads(args.row))))
        return
    import torch

    if args.quick:
        args.sizes, args.repeat, args.big_repeat = "1e4,1e5,1e6", 1, 1
    sizes = [float(s) for s in args.sizes.split(",")]
    for s in sizes:
        if s not in GRIDS:
            ap.error(f"size {s:g} not in {', '.join(f'{k:g}' for k in GRIDS)}")
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    t_start = time.perf_counter()
    print("\n".join(machine()), flush=True)
    print(
        f"stream rows: tensorperf.best({OBJECTIVE!r}, where={WHERE}, memory={MEMORY!r}); stream-all rows: "
        f"tensorperf.reduce(FullMetricCount(), memory={MEMORY!r}) (every metric); engine rows: "
        f"roofline.evaluate(breakdown=False); best of {args.repeat} ({args.big_repeat} at 1e8), median shown too",
        flush=True,
    )
    hdr = (
        f"{'size':>5} {'points':>12} {'dtype':8} {'dev':4} {'mode':16} {'chunks':>6} {'build s':>8} "
        f"{'best s':>8} {'median s':>8} {'points/s':>9} {'peak RSS GB':>11} {'growth B/pt':>11}"
    )
    print(hdr)
    print("-" * len(hdr), flush=True)
    results = []
    for spec in plan_rows(sizes, devices, args.repeat, args.big_repeat):
        r = spawn_row(spec, args.row_timeout)
        results.append((spec, r))
        if "error" in r:
            print(
                f"{spec['size']:5.0e} {'':12} {spec['dtype']:8} {spec['device']:4} {spec['mode']:16} "
                f"ERROR {r['error']}",
                flush=True,
            )
            continue
        per = r["growth_bytes"] / r["chunk_points"]
        build = f"{r['build_s']:8.3f}" if "build_s" in r else f"{'':8}"
        cuda = f"  (peak CUDA {r['peak_cuda_bytes'] / 1e9:.2f} GB)" if "peak_cuda_bytes" in r else ""
        print(
            f"{spec['size']:5.0e} {r['points']:12,} {spec['dtype']:8} {spec['device']:4} {spec['mode']:16} "
            f"{r['chunks']:6,} {build} {r['seconds']:8.3f} {statistics.median(r['times']):8.3f} "
            f"{r['points'] / r['seconds']:9.2e} "
            f"{r['peak_rss_bytes'] / 1e9:11.2f} {per:11.0f}{cuda}",
            flush=True,
        )
    print()
    for spec, r in results:
        if "winner" in r:
            print(f"best at {spec['size']:.0e} {spec['dtype']}: {r['winner']}")
        if "error" not in r and spec["mode"] == "engine" and math.isclose(spec["size"], 1e6):
            from tensorperf.run.chunks import BYTES_PER_POINT

            bpp = BYTES_PER_POINT[getattr(torch, spec["dtype"])]
            per = r["growth_bytes"] / r["points"]
            verdict = "conservative" if bpp >= per else "NOT conservative"
            print(
                f"engine working memory, {spec['dtype']}, {r['points']:,} points in memory: {per:.0f} B/point "
                f"(tensorperf.run.chunks.BYTES_PER_POINT = {bpp}: {verdict})"
            )
    by = {(s["size"], s["dtype"], s["device"], s["mode"]): r for s, r in results if "error" not in r}
    for (size, dt, dev, mode), r in by.items():
        if mode == "engine+breakdown" and (size, dt, dev, "engine") in by:
            e = by[(size, dt, dev, "engine")]
            print(
                f"per-op breakdown cost at {size:.0e} {dt} {dev}: {r['seconds'] / e['seconds']:.2f}x the time, "
                f"{r['growth_bytes'] / max(e['growth_bytes'], 1):.1f}x the working memory of breakdown=False"
            )
        if mode == "stream" and size >= 1e8:
            gb = r["peak_rss_bytes"] / 1e9
            rate = r["points"] / r["seconds"]
            print(
                f"1e8 best-layout search {dt} {dev}: best {r['seconds']:.1f} s of {len(r['times'])}, {rate:.2e} "
                f"points/s, peak RSS {gb:.2f} GB ({'<=' if gb <= 4 else '>'} 4 GB target)"
            )
        if mode in ("stream-all", "engine") and size >= 1e6:
            rate = r["points"] / r["seconds"]
            what = f"{r['metrics']} metrics streamed" if mode == "stream-all" else "every metric in memory"
            print(
                f"full metric set at {size:.0e} {dt} {dev} ({what}): {rate:.2e} points/s; speed target 2e7 "
                f"points/s{' (float64)' if dt == 'float64' else ''} {'met' if rate >= 2e7 else 'NOT met'}"
            )
    print(flush=True)
    if not args.no_side_by_side:
        sys.path.insert(0, HERE)
        print(
            "\n".join(
                side_by_side(args.repeat if args.quick else max(args.repeat, 5), args.quick, args.llm_analysis_path)
            )
        )
    print(f"\ntotal wall time {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
