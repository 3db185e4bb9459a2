"""Smoke tests of the what-if examples (examples/whatif_*.py) on their reduced grids.

Each example exposes ``study(small)``, ``report(res)``, ``plot(res, path)`` and ``main(small, png)``;
the checks are shapes and properties that hold whatever the calibration (more scale-up or HBM
bandwidth, a larger domain or more HBM never lowers the best throughput under a fixed floor).
"""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _grid_points(inputs: dict) -> int:
    """Points of a sweep's grid: the product of the list lengths, zipped inputs counted once."""
    zipped = inputs.get("zipped", ())
    sizes = [len(v) for k, v in inputs.items() if isinstance(v, list) and k not in zipped and k != "zipped"]
    sizes += [len(inputs[zipped[0]])] if zipped else []
    return int(np.prod(sizes))


def _non_decreasing(values: np.ndarray, axis: int) -> bool:
    """Along ``axis``: never lower, and never lost once found (NaN = no point meets the floor)."""
    lo = np.take(values, range(values.shape[axis] - 1), axis=axis)
    hi = np.take(values, range(1, values.shape[axis]), axis=axis)
    found_lo = ~np.isnan(lo)
    return bool(np.all(~found_lo | (hi >= lo * (1 - 1e-12))))


# --------------------------------------------------------------------------- DeepSeek-V3 wide EP


@pytest.fixture(scope="module")
def wide_ep():
    module = _load("whatif_deepseek_wide_ep")
    return module, module.study(small=True)


def test_wide_ep_shapes_and_floor(wide_ep):
    module, res = wide_ep
    small = module.axes(small=True)
    tok = res.tokens_per_s_per_gpu.transpose("scaleup_bandwidth", "scaleup_size")
    assert tok.shape == (len(small["scaleup_bandwidth"]), len(small["scaleup_size"]))
    assert bool(res.found.all())
    assert float(res.tokens_per_s_per_user.min()) >= module.MIN_USER
    assert set(np.unique(res.winner_ep.values)) <= set(small["ep"])
    # the best over EP widths is the best of the per-width optima
    np.testing.assert_allclose(res.tokens_by_ep.max("ep_width").transpose(*tok.dims).values, tok.values)


def test_wide_ep_monotone_in_bandwidth_and_domain(wide_ep):
    _, res = wide_ep
    tok = res.tokens_per_s_per_gpu.transpose("scaleup_bandwidth", "scaleup_size").values
    assert _non_decreasing(tok, axis=0)  # more scale-up bandwidth never hurts
    # a larger domain never hurts while the scale-up link beats the scale-out NIC (100 GB/s and up)
    assert _non_decreasing(tok, axis=1)
    by_ep = res.tokens_by_ep.transpose("scaleup_bandwidth", "scaleup_size", "ep_width").values
    assert _non_decreasing(by_ep, axis=0)
    by_lat = res.tokens_by_latency.transpose("scaleup_latency", "ep_width").values
    assert _non_decreasing(by_lat[::-1], axis=0)  # a lower per-peer latency never hurts


def test_wide_ep_elasticities(wide_ep):
    module, res = wide_ep
    e = res.elasticity_bandwidth.values
    assert np.all((e >= 0) & (e < 1))
    assert np.all(res.elasticity_latency.values <= 0)
    assert np.all(res.envelope_elasticity.values >= -1e-12)
    flat = module.flat_from(res)
    assert flat.dims == ("scaleup_size",)
    text = module.report(res)
    assert "domain 72" in text and "elasticity" in text


def test_wide_ep_full_grid_stays_moderate():
    module = _load("whatif_deepseek_wide_ep")
    assert _grid_points(module.axes(small=False)) < 200_000


# --------------------------------------------------------------------------- seed 1.8T fp8 vs fp4


@pytest.fixture(scope="module")
def seed():
    module = _load("whatif_seed_fp8_fp4")
    return module, module.study(small=True)


def test_seed_layouts_are_all_64_gpu():
    module = _load("whatif_seed_fp8_fp4")
    lay = module.layouts()
    assert len(lay) == len(set(lay)) > 100
    assert all(t * p * d == 64 and (t * d) % e == 0 for t, p, d, e in lay)


def test_seed_shapes_and_monotone(seed):
    module, res = seed
    small = module.axes(small=True)
    dims = ("weight_dtype", "prompt_len", "hbm_bandwidth", "hbm_capacity")
    tok = res.tokens_per_s_per_gpu.transpose(*dims)
    assert tok.shape == (2, len(small["prompt_len"]), len(small["hbm_bandwidth"]), len(small["hbm_capacity"]) - 1)
    assert module.UNLIMITED not in res.hbm_capacity.values
    assert _non_decreasing(tok.values, axis=2)  # more HBM bandwidth never hurts
    assert _non_decreasing(tok.values, axis=3)  # more HBM capacity never hurts
    # the unlimited-capacity reference bounds every finite capacity; capacity_bound agrees with it
    free = res.unlimited_capacity.broadcast_like(tok).transpose(*dims).values
    ok = ~np.isnan(tok.values)
    assert np.all(tok.values[ok] <= free[ok] * (1 + 1e-12))
    bound = res.capacity_bound.transpose(*dims).values
    np.testing.assert_array_equal(bound[ok], tok.values[ok] < module.CAPACITY_BOUND * free[ok])
    assert float(res.tokens_per_s_per_user.min()) >= module.MIN_USER


def test_seed_ratio_and_report(seed):
    module, res = seed
    fp8 = res.tokens_per_s_per_gpu.sel(weight_dtype="fp8")
    fp4 = res.tokens_per_s_per_gpu.sel(weight_dtype="fp4")
    both = fp8.notnull() & fp4.notnull()
    np.testing.assert_allclose(res.ratio.where(both).values, (fp4 / fp8).where(both).values)
    assert bool(((res.ratio > 0) | ~both).all())
    np.testing.assert_array_equal(res.fp4_only.values, (fp4.notnull() & fp8.isnull()).values)
    text = module.report(res)
    assert "fp4 / fp8" in text and "unlimited" in text


def test_seed_full_grid_stays_moderate():
    module = _load("whatif_seed_fp8_fp4")
    assert _grid_points(module.axes(small=False)) < 2_500_000


# --------------------------------------------------------------------------- plots and main


def test_main_writes_the_plots(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    for name in ("whatif_deepseek_wide_ep", "whatif_seed_fp8_fp4"):
        module = _load(name)
        png = tmp_path / f"{name}.png"
        module.main(small=True, png=png)
        assert png.stat().st_size > 10_000
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = capsys.readouterr().out
    assert "Best decode tokens/s/GPU" in out and "fp4 / fp8" in out
