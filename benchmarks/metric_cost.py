"""The engine's full metric set at one tree against another (e.g. a checkout of an earlier commit):
best of 7 evaluations of scale.py's 1e6 grid (breakdown off, float64), each tree in its own process.

    git worktree add /tmp/before <commit>
    python benchmarks/metric_cost.py /tmp/before; python benchmarks/metric_cost.py .
"""

import sys
import time

import torch

sys.path.insert(0, sys.argv[1])
sys.path.insert(0, sys.argv[1] + "/benchmarks")
from scale import GRIDS

import tensorperf as tp
from tensorperf.engine import roofline
from tensorperf.run.inputs import build_grid

tp.keep_freed_memory()
grid = build_grid(**GRIDS[1e6])
best = 1e9
for _ in range(7):
    t0 = time.perf_counter()
    with torch.no_grad():
        roofline.evaluate(grid, {}, breakdown=False)
    best = min(best, time.perf_counter() - t0)
print(f"{sys.argv[1]}: {best * 1e3:.1f} ms, {len(roofline.evaluate(grid, {}, breakdown=False).values)} metrics")
