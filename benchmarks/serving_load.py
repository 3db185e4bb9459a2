"""Cost of the serving-under-load pass (docs/model.md §10) on a >= 1e6-point grid, side by side.

Run: python benchmarks/serving_load.py [--device cuda] [--repeat 3]
Rows: the static passes only (prefill + decode metrics), the closed loop (serving metrics), the open
loop (request rate: closed loops at 1, 8, 64, ... requests up to the cap), and the open loop with lengths
drawn from a range (Simpson's three prompt nodes). Prints best-of-N seconds, points/s and each
row's time over the static row's, all measured in one run.
"""

from __future__ import annotations

import argparse
import time

import torch
from grid_throughput import GRID  # the 1.1e6-point grid of the other benchmarks

from tensorperf.engine.conventions import CONVENTIONS
from tensorperf.run.inputs import build_grid

BASE = GRID  # 1,111,320 points; the open-loop rows 3x that
STATIC = ["ttft", "tpot", "tokens_per_s_per_gpu", "tokens_per_s_per_user"]
SERVING = ["serving_ttft", "serving_tpot", "serving_e2e_latency", "serving_tokens_per_s_per_gpu"]
ROWS = {
    "static passes": ({}, STATIC),
    "closed loop": ({}, SERVING),
    "open loop (3 rates)": ({"request_rate": [0.5, 2.0, 8.0]}, SERVING),
    "open loop, ranged lengths": ({"request_rate": [0.5, 2.0, 8.0], "isl_range_ratio": 0.8}, SERVING),
}


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    results = []
    for name, (extra, metrics) in ROWS.items():
        grid = build_grid(**BASE, **extra, device=args.device)

        def run(grid=grid, metrics=metrics) -> None:
            with torch.no_grad():
                CONVENTIONS["roofline"](grid, {}, breakdown=False, metrics=metrics)

        run()  # warm-up
        results.append((name, grid.size, best_of(run, args.repeat)))
    print(f"device: {args.device}  (best of {args.repeat}, float64, engine only)")
    print(f"{'row':28s} {'points':>10s} {'seconds':>9s} {'points/s':>12s} {'x static':>9s}")
    base = results[0][2] / results[0][1]
    for name, n, t in results:
        print(f"{name:28s} {n:>10,d} {t:>9.3f} {n / t:>12.3g} {t / n / base:>9.2f}")


if __name__ == "__main__":
    main()
