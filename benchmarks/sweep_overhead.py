"""What ``tensorperf.sweep()`` costs on top of the engine: the public call versus the engine's
evaluate on the same grid, side by side.

Run:  python benchmarks/sweep_overhead.py                  # 1e5 and 1e6 points, best of 9, + peak RSS
      python benchmarks/sweep_overhead.py --repeat 15 --no-rss
      python benchmarks/sweep_overhead.py --sizes 1e6 --rss-only
      python benchmarks/sweep_overhead.py --sizes 1e6 --keep-freed-memory

For each grid (the 1e5 and 1e6 grids of scale.py), dtype (float64, float32) and breakdown (off, on):

  engine      ``roofline.evaluate(grid, {}, breakdown=...)`` under ``torch.no_grad()`` on a grid built
              beforehand (what sweep() calls);
  sweep       the whole public call ``tensorperf.sweep(**axes, dtype=..., breakdown=...)``: input
              checks, build_grid, the same evaluate, and the xarray Dataset (to_dataset);
  to_dataset  the Dataset assembly alone, on an evaluation made beforehand.

The three alternate, round after round (engine, sweep, to_dataset, engine, ...), so the machine's
load hits them alike; each is the best of --repeat rounds (the median is printed too). ratio =
sweep / engine (best over best). Every result is freed before the next call.

Peak RSS (unless --no-rss): each row runs in a fresh subprocess (``--rss-row``) that builds the grid,
reads its peak RSS (``VmHWM``), runs one sweep() (or one evaluate) and reads it again; the growth per
point is what ``tensorperf.interface.api.SWEEP_BYTES_PER_POINT`` must cover.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

import torch

import tensorperf as tp
from tensorperf.engine import roofline
from tensorperf.interface.api import SWEEP_BYTES_PER_POINT
from tensorperf.interface.dataset import to_dataset
from tensorperf.run.allocator import keep_freed_memory
from tensorperf.run.inputs import build_grid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from scale import GRIDS  # noqa: E402  (the same realistic grids: 102,900 and 1,111,320 points)

DTYPES = {"float64": torch.float64, "float32": torch.float32}


def _engine(grid, breakdown):
    with torch.no_grad():
        return roofline.evaluate(grid, {}, breakdown=breakdown)


def _timed(fn) -> float:
    gc.collect()
    t0 = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - t0
    del out
    return seconds


def measure(size: float, dtype: str, breakdown: bool, repeat: int) -> dict:
    axes = GRIDS[size]
    grid = build_grid(**axes, dtype=DTYPES[dtype])
    ev = _engine(grid, breakdown)  # for to_dataset alone (and a warm-up)
    attrs = {"convention": "roofline"}
    calls = {
        "engine": lambda: _engine(grid, breakdown),
        "sweep": lambda: tp.sweep(**axes, dtype=DTYPES[dtype], breakdown=breakdown),
        "to_dataset": lambda: to_dataset(ev, grid, attrs),
    }
    for fn in calls.values():  # warm-up
        _timed(fn)
    times = {k: [] for k in calls}
    for _ in range(repeat):
        for k, fn in calls.items():
            times[k].append(_timed(fn))
    return {
        "points": grid.size,
        **{f"{k}_best": min(v) for k, v in times.items()},
        **{f"{k}_median": statistics.median(v) for k, v in times.items()},
    }


def _peak_rss() -> int:
    """This process's peak RSS in bytes: VmHWM (Linux: of this process image only; ru_maxrss would
    carry the parent's peak across fork and exec), else ru_maxrss."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def rss_row(spec: dict) -> dict:
    """One sweep() (or one evaluate) in this fresh process: peak RSS growth over the grid's build."""
    if spec["keep"]:
        keep_freed_memory()
    axes, dtype = GRIDS[spec["size"]], DTYPES[spec["dtype"]]
    grid = build_grid(**axes, dtype=dtype)
    tp.sweep(**GRIDS[1e4], dtype=dtype, breakdown=spec["breakdown"])  # imports and caches warm
    before = _peak_rss()
    if spec["what"] == "sweep":
        out = tp.sweep(**axes, dtype=dtype, breakdown=spec["breakdown"])
    else:
        out = _engine(grid, spec["breakdown"])
    after = _peak_rss()
    del out
    return {"points": grid.size, "growth": after - before, "peak": after}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1e5,1e6", help="grid sizes of scale.py's GRIDS (comma-separated)")
    ap.add_argument("--repeat", type=int, default=9, help="rounds; each call's best is kept")
    ap.add_argument("--no-rss", action="store_true", help="skip the peak-RSS rows (subprocesses)")
    ap.add_argument("--rss-only", action="store_true", help="only the peak-RSS rows")
    ap.add_argument(
        "--keep-freed-memory",
        action="store_true",
        help="call tensorperf.run.allocator.keep_freed_memory() first (as the CLI does)",
    )
    ap.add_argument("--rss-row", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rss_row:
        print(json.dumps(rss_row(json.loads(args.rss_row))))
        return
    if args.keep_freed_memory:
        keep_freed_memory()
    sizes = [float(s) for s in args.sizes.split(",")]
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} logical cores, torch {torch.__version__} with "
        f"{torch.get_num_threads()} threads, keep_freed_memory: {args.keep_freed_memory}, "
        f"best of {args.repeat} (alternating)"
    )
    if not args.rss_only:
        timings(sizes, args.repeat)
    if not args.no_rss:
        peak_rss(sizes, args.keep_freed_memory)


def timings(sizes: list[float], repeat: int) -> None:
    print()
    print(
        "| points | dtype | breakdown | engine ms | sweep ms | ratio | to_dataset ms | sweep points/s "
        "| medians: engine / sweep ms (ratio) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for size in sizes:
        for dtype in DTYPES:
            for breakdown in (False, True):
                r = measure(size, dtype, breakdown, repeat)
                print(
                    f"| {r['points']:,} | {dtype} | {'on' if breakdown else 'off'} | {r['engine_best'] * 1e3:.1f} "
                    f"| {r['sweep_best'] * 1e3:.1f} | **{r['sweep_best'] / r['engine_best']:.2f}** "
                    f"| {r['to_dataset_best'] * 1e3:.1f} | {r['points'] / r['sweep_best']:.2e} "
                    f"| {r['engine_median'] * 1e3:.1f} / {r['sweep_median'] * 1e3:.1f} "
                    f"({r['sweep_median'] / r['engine_median']:.2f}) |",
                    flush=True,
                )
    print()
    print(
        "ratio = best sweep / best engine (target: <= 1.3 without the breakdown, <= 2 with it); "
        "to_dataset: the Dataset assembly alone"
    )


def peak_rss(sizes: list[float], keep: bool) -> None:
    print()
    print("Peak RSS growth of one call in a fresh process (bytes per point):")
    print()
    print("| points | dtype | breakdown | engine B/pt | sweep B/pt | SWEEP_BYTES_PER_POINT | sweep peak RSS GB |")
    print("|---|---|---|---|---|---|---|")
    for size in sizes:
        for dtype in DTYPES:
            for breakdown in (False, True):
                rows = {}
                for what in ("engine", "sweep"):
                    spec = {
                        "size": size,
                        "dtype": dtype,
                        "breakdown": breakdown,
                        "what": what,
                        "keep": keep,
                    }
                    run = subprocess.run(
                        [sys.executable, __file__, "--rss-row", json.dumps(spec)], capture_output=True, text=True
                    )
                    if run.returncode:  # e.g. sweep() refusing a grid too large for this machine
                        rows[what] = (run.stderr.strip().splitlines() or ["failed"])[-1]
                    else:
                        rows[what] = json.loads(run.stdout.strip().splitlines()[-1])
                failed = [r for r in rows.values() if isinstance(r, str)]
                if failed:
                    print(f"| {size:.0e} | {dtype} | {'on' if breakdown else 'off'} | {failed[0][:150]} |||")
                    continue
                points = rows["sweep"]["points"]
                scale = 1 if dtype == "float64" else 0.5
                print(
                    f"| {points:,} | {dtype} | {'on' if breakdown else 'off'} "
                    f"| {rows['engine']['growth'] / points:.0f} | {rows['sweep']['growth'] / points:.0f} "
                    f"| {SWEEP_BYTES_PER_POINT[breakdown] * scale:.0f} | {rows['sweep']['peak'] / 1e9:.2f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
