"""Points per second and peak memory of one sweep over a >= 1e6-point grid.

Run: python benchmarks/grid_throughput.py [--repeat 3]
Prints a table (engine only = the broadcast pass; full = + the xarray Dataset) and the ratios,
all measured side by side in one run.
"""

from __future__ import annotations

import argparse
import platform
import resource
import time

import torch

import tensorperf as tp
from tensorperf.engine.conventions import CONVENTIONS
from tensorperf.run.inputs import build_grid

POW2 = [1, 2, 4, 8, 16, 32, 64]
BATCH = [1, 2, 4, 8, 16, 32, 64, 128, 256]
GRID = dict(
    model="gpt-moe-1.8t",
    hardware=["h100-sxm", "h200-sxm", "b200", "gb200", "b300", "gb300", "mi300x", "mi355x"],
    weight_dtype=["bf16", "fp8", "fp4"],
    prompt_len=[2048, 8192, 16384],
    output_len=1024,
    batch=BATCH,
    tp=POW2,
    pp=POW2,
    dp=POW2,
    ep=[1, 2, 4, 8, 16],
)  # 1,111,320 points
SEED_GRID = {**GRID, "hardware": "mi300-seed", "output_len": [128, 1024, 4096]}  # 416,745 points


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # Linux reports KiB


def best_of(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _engine(convention, grid):
    def run():
        with torch.no_grad():
            CONVENTIONS[convention](grid, {})

    return run


def _full(convention, axes, dtype):
    return lambda: tp.sweep(**axes, convention=convention, dtype=dtype)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    rows = []
    for convention, axes in (("roofline", GRID), ("seed", SEED_GRID)):
        for dtype in (torch.float64, torch.float32):
            grid = build_grid(**axes, dtype=dtype)
            engine = best_of(_engine(convention, grid), args.repeat)
            full = best_of(_full(convention, axes, dtype), args.repeat)
            rows.append((convention, str(dtype).removeprefix("torch."), grid.size, engine, full))
    print(
        f"machine: {platform.machine()} {platform.processor() or ''}, torch {torch.__version__}, "
        f"threads {torch.get_num_threads()}"
    )
    print(
        f"{'convention':10} {'dtype':8} {'points':>10} {'engine s':>9} {'engine pts/s':>13} "
        f"{'full s':>8} {'full pts/s':>11}"
    )
    for conv, dt, n, e, f in rows:
        print(f"{conv:10} {dt:8} {n:>10,} {e:9.3f} {n / e:13.3e} {f:8.3f} {n / f:11.3e}")
    r64, r32 = rows[0], rows[1]
    print(
        f"ratio float32/float64 engine speed (roofline): {r64[3] / r32[3]:.2f}x; "
        f"engine share of a full sweep: {r64[3] / r64[4]:.0%}"
    )
    print(f"peak RSS: {peak_rss_gb():.2f} GB")


if __name__ == "__main__":
    main()
