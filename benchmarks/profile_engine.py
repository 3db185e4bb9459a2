"""Where the engine's time goes: grid-sized operations by source line, and torch ops by time.

Run: python benchmarks/profile_engine.py [--breakdown] [--top 25]

The engine is elementwise torch over broadcast tensors; an operation whose result has (about) the
grid's size costs memory traffic proportional to the grid, one on a few axes almost nothing. So the
first table counts the operations whose result has at least half the grid's points, by the line of
tensorperf that issued them (the deterministic measure of "redundant work in the broadcast"); the
second is torch's profiler by self CPU time (noisy on a shared machine).
"""

from __future__ import annotations

import argparse
import collections
import traceback

import torch
from torch.overrides import TorchFunctionMode

from tensorperf.engine import roofline
from tensorperf.run.inputs import build_grid

POW2 = [1, 2, 4, 8, 16, 32, 64]
GRID = dict(
    model="gpt-moe-1.8t",
    hardware=["h100-sxm", "h200-sxm", "b200", "gb200", "b300", "gb300", "mi300x", "mi355x"],
    weight_dtype=["bf16", "fp8", "fp4"],
    prompt_len=[2048, 8192, 16384],
    output_len=1024,
    batch=[1, 2, 4, 8, 16, 32, 64, 128, 256],
    tp=POW2,
    pp=POW2,
    dp=POW2,
    ep=[1, 2, 4, 8, 16],
)


class _GridSized(TorchFunctionMode):
    """Counts torch calls whose tensor result has >= half the grid's points, by calling line."""

    def __init__(self, points: int):
        super().__init__()
        self.points = points
        self.sites: collections.Counter = collections.Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if isinstance(out, torch.Tensor) and out.numel() >= self.points / 2 and not out._is_view():  # (views: free)
            frames = [f for f in traceback.extract_stack() if "tensorperf" in f.filename]
            if frames:
                f = frames[-1]
                self.sites[f"{f.filename.split('tensorperf/')[-1]}:{f.lineno}  {(f.line or '').strip()[:70]}"] += 1
        return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--breakdown", action="store_true", help="include the per-op breakdown variables")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    grid = build_grid(**GRID)
    with torch.no_grad():
        roofline.evaluate(grid, {}, breakdown=args.breakdown)  # warm up
        counter = _GridSized(grid.size)
        with counter:
            roofline.evaluate(grid, {}, breakdown=args.breakdown)
        print(f"grid: {grid.size:,} points; grid-sized operations per evaluation: {sum(counter.sites.values())}")
        print(f"{'count':>5}  site")
        for site, n in counter.sites.most_common(args.top):
            print(f"{n:>5}  {site}")
        from torch.profiler import profile

        with profile() as prof:
            roofline.evaluate(grid, {}, breakdown=args.breakdown)
    events = prof.key_averages()
    print(f"\ntorch calls per evaluation: {sum(e.count for e in events):,}")
    print(events.table(sort_by="self_cpu_time_total", row_limit=12))


if __name__ == "__main__":
    main()
