"""Every tensor the engine makes lives on the grid's device: the CPU-side check of ``device="cuda"``.

On a GPU, a tensor made without ``device=`` (``torch.zeros(3)``, ``torch.tensor(...)``) lands on the
CPU and either fails when it meets the grid's tensors or copies to the GPU every time. Here the grid
stays on the CPU while torch's default device is ``meta`` (tensors without data): any tensor made
without the grid's device becomes a meta tensor, and meeting a CPU tensor, or being read, raises. So
every entry point below running to the end shows the device discipline that tests/test_gpu.py checks
numerically where CUDA is present.
"""

from __future__ import annotations

import pytest
import torch

import tensorperf as tp
from tensorperf.run import reductions
from tensorperf.run.inputs import build_grid

GRID = dict(
    model=["deepseek-v3", "llama-3.1-70b", "gpt-moe-1.8t", "llama-4-scout"],
    hardware=["h100-sxm", "mi300x"],
    weight_dtype=["bf16", "fp8"],
    prompt_len=[1024, 32768],
    output_len=[1, 256],
    batch=[1, 8],
    tp=[1, 8],
    pp=[1, 4],
    ep=[1, 8],
    cp=[1, 2],
    chunk_size=[4096, 65536],
    allreduce=["ring", "hierarchical"],
)
WHERE = {"tokens_per_s_per_user": (">=", 20)}


@pytest.fixture
def meta_default():
    torch.set_default_device("meta")
    try:
        yield
    finally:
        torch.set_default_device(None)


def test_the_check_catches_a_tensor_made_without_the_grid_device(meta_default):
    grid_tensor = torch.ones(3, device="cpu")
    with pytest.raises((RuntimeError, NotImplementedError)):
        grid_tensor + torch.ones(3)  # made without device=: meta
    with pytest.raises((RuntimeError, NotImplementedError)):
        float(torch.ones(()))  # reading a meta tensor


CALLS = {
    "sweep": lambda: tp.sweep(**GRID),
    "sweep float32, batch max": lambda: tp.sweep(**{**GRID, "batch": "max"}, max_num_seqs=[64, 512], dtype="float32"),
    "sweep what-if and microbatches": lambda: tp.sweep(
        **{**GRID, "cp": 1},
        microbatches=[1, 2],
        world_size=[8, 64],
        hbm_bandwidth_scale=[1.0, 1.3],
        num_kv_heads=[8, 16],
        efficiency={"overlap": 0.5, "comm_overlap": 0.3, "step_overhead": 1e-3},
    ),
    "sweep zipped": lambda: tp.sweep(
        model="llama-3.1-70b",
        hardware="h100-sxm",
        prompt_len=[512, 2048, 8192],
        batch=[1, 4, 16],
        zipped=["prompt_len", "batch"],
    ),
    "seed convention": lambda: tp.sweep(
        model="gpt-moe-1.8t",
        hardware="mi300-seed",
        prompt_len=[1024, 8192],
        batch=[1, 8],
        tp=[1, 8],
        pp=[1, 4],
        ep=[1, 8],
        convention="seed",
    ),
    "best (streamed)": lambda: tp.best(
        "tokens_per_s_per_gpu", where=WHERE, keep=["hardware"], chunk_points=700, progress=False, **GRID
    ),
    "pareto (streamed)": lambda: tp.pareto(chunk_points=700, progress=False, **GRID),
    "reduce Count (streamed)": lambda: tp.reduce(
        reductions.Count(WHERE, ("model",), reductions.kept_shape(build_grid(**GRID), ("model",))),
        chunk_points=700,
        progress=False,
        **GRID,
    ),
    "sensitivity": lambda: tp.sensitivity(
        of="tpot", wrt=["compute", "memory", "hbm_bandwidth", "num_kv_heads"], **{**GRID, "chunk_size": 4096}
    ),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_every_tensor_follows_the_grid_device(name, meta_default):
    out = CALLS[name]()
    assert out is not None
