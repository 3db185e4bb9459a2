"""Property tests of the roofline convention: laws every prediction must obey on random grids.

Each hypothesis example draws a random grid from the presets (dense, MoE and MLA models, several
devices, dtypes, layouts, random efficiency overrides) and evaluates it in ONE sweep, then checks
the law on every point (or pair of points) of the grid at once. Comparisons are made on feasible
points only where infeasible points carry no prediction (they are NaN).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tensorperf
from tensorperf.catalog import presets
from tensorperf.engine.masks import Reason
from tensorperf.engine.physics import comm
from tensorperf.engine.physics.roofline import op_time
from tensorperf.units import DTYPE_BYTES, MATH_COLUMN

SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
MONO_RTOL = 1e-12  # monotonicity / floor laws: equal up to rounding
EQ_RTOL = 1e-9  # two routes to the same number
GRID_LIMIT = 12_000  # points per sweep (keeps the file fast on 2 cores)

SPECS = {name: presets.model(name) for name in presets.models()}
HARDWARE = presets.hardware()
CHUNKED = tuple(n for n, m in SPECS.items() if m.attention_chunk > 0 and m.chunked_layers > 0)
MLA = tuple(n for n, m in SPECS.items() if m.kv_lora_rank > 0)
MOE = tuple(n for n, m in SPECS.items() if m.num_experts > 0 and n not in MLA)
DENSE = tuple(n for n, m in SPECS.items() if m.num_experts == 0)

TIMES = ("ttft", "ttft_max", "tpot", "e2e_latency")
POSITIVE = (
    "ttft",
    "ttft_max",
    "tpot",
    "e2e_latency",
    "tokens_per_s_per_gpu",
    "tokens_per_s_per_user",
    "memory_per_gpu",
)

# ---------------------------------------------------------------------------------------------
# strategies
# ---------------------------------------------------------------------------------------------

unit = st.floats(0.05, 1.0)
fraction = st.floats(0.0, 1.0)
efficiencies = st.none() | st.fixed_dictionaries(
    {},
    optional={
        "compute": unit,
        "attention": unit,
        "memory": unit,
        "scaleup": unit,
        "scaleout": unit,
        "overlap": fraction,
        "comm_overlap": fraction,
    },
)


def _subset(pool, min_size=1, max_size=3, sort=True):
    s = st.lists(st.sampled_from(pool), min_size=min_size, max_size=max_size, unique=True)
    return s.map(sorted) if sort else s


def _sorted_ints(lo, hi, min_size=2, max_size=6):
    return st.lists(st.integers(lo, hi), min_size=min_size, max_size=max_size, unique=True).map(sorted)


@st.composite
def model_lists(draw, exclude=()):
    """One dense, one MoE and (often) the MLA model, in random order; `exclude` removes presets."""
    pick = lambda pool: draw(st.sampled_from([n for n in pool if n not in exclude]))  # noqa: E731
    names = [pick(DENSE), pick(MOE)]
    if draw(st.booleans()):
        names.append(pick(MLA))
    return draw(st.permutations(names))


def _trim(kw: dict, keep: tuple[str, ...]) -> dict:
    """Drop list entries (never below 1, never from `keep`) until the grid has <= GRID_LIMIT points."""

    def size():
        return math.prod(len(v) for v in kw.values() if isinstance(v, list))

    while size() > GRID_LIMIT:
        name = max(
            (k for k, v in kw.items() if isinstance(v, list) and len(v) > 1 and k not in keep), key=lambda k: len(kw[k])
        )
        kw[name] = kw[name][:-1]
    return kw


@st.composite
def grids(draw, *, exclude_models=(), **fixed):
    """Keyword arguments of a random sweep; `fixed` overrides any axis with a value or a strategy."""
    kw = dict(
        model=draw(model_lists(exclude_models)),
        hardware=draw(_subset(HARDWARE, 1, 2, sort=False)),
        weight_dtype=draw(_subset(("bf16", "fp8", "fp4", "int8"), 1, 2)),
        kv_dtype=draw(st.sampled_from(("bf16", "fp8"))),
        act_dtype=draw(st.sampled_from(("bf16", "bf16", "fp8", "fp32"))),
        prompt_len=draw(_sorted_ints(1, 32768, 1, 3)),
        output_len=draw(_sorted_ints(1, 4096, 1, 2)),
        batch=draw(_subset((1, 2, 3, 4, 8, 16, 32, 64, 256), 1, 3)),
        tp=draw(_subset((1, 2, 4, 8, 16), 1, 4)),
        pp=draw(_subset((1, 2, 3, 4, 8), 1, 3)),
        # degree 1 is always on the dp and ep axes (ep > 1 is infeasible for dense models)
        dp=draw(_subset((2, 4), 0, 1).map(lambda v: [1, *v])),
        ep=draw(_subset((2, 4, 8, 16), 0, 2).map(lambda v: [1, *v])),
        efficiency=draw(efficiencies),
    )
    kw.update({k: draw(v) if isinstance(v, st.SearchStrategy) else v for k, v in fixed.items()})
    return kw


def sweep(keep=(), **kw) -> xr.Dataset:
    """tensorperf.sweep on the grid trimmed to GRID_LIMIT points (the `keep` axes are never trimmed)."""
    return tensorperf.sweep(**_trim(dict(kw), tuple(keep)))


# ---------------------------------------------------------------------------------------------
# checking helpers: report the first violating point with its coordinates
# ---------------------------------------------------------------------------------------------


def _fail_if(bad: xr.DataArray, msg: str, **show: xr.DataArray) -> None:
    if not bool(bad.any()):
        return
    idx = tuple(int(i) for i in np.argwhere(bad.values)[0])
    point = {d: bad[d].values[i].item() for d, i in zip(bad.dims, idx)}
    values = {}
    for name, arr in show.items():
        sel = {k: v for k, v in point.items() if k in arr.dims}
        values[name] = float(arr.sel(sel).values)
    pytest.fail(f"{msg}: {int(bad.sum())} violation(s); first at {point}: {values}")


def assert_le(small: xr.DataArray, big: xr.DataArray, msg: str, rtol: float = MONO_RTOL) -> None:
    """small <= big (1 + rtol) wherever both are finite (NaN pairs are skipped)."""
    bad = np.isfinite(small) & np.isfinite(big) & (small > big + rtol * abs(big))
    _fail_if(bad, msg, small=small, big=big)


def assert_close(a: xr.DataArray, b: xr.DataArray, msg: str, rtol: float = EQ_RTOL) -> None:
    """a == b to rtol, NaN where the other is NaN."""
    nan_mismatch = np.isnan(a) != np.isnan(b)
    _fail_if(nan_mismatch, msg + " (NaN pattern differs)", a=a, b=b)
    bad = np.isfinite(a) & np.isfinite(b) & (abs(a - b) > rtol * np.maximum(abs(a), abs(b)))
    _fail_if(bad, msg, a=a, b=b)


def _pairs(da: xr.DataArray, dims: tuple[str, ...]):
    """(earlier, later, is_pair): da with each dim in `dims` renamed to dim_lo / dim_hi, and the mask of
    pairs whose coordinate is <= on every dim (and differs on one)."""
    lo = da.rename({d: f"{d}_lo" for d in dims})
    hi = da.rename({d: f"{d}_hi" for d in dims})
    le = [lo[f"{d}_lo"] <= hi[f"{d}_hi"] for d in dims]
    ne = [lo[f"{d}_lo"] != hi[f"{d}_hi"] for d in dims]
    is_pair = le[0]
    for c in le[1:]:
        is_pair = is_pair & c
    differs = ne[0]
    for c in ne[1:]:
        differs = differs | c
    return lo, hi, is_pair & differs


def assert_nondecreasing(da: xr.DataArray, dim: str, msg: str, rtol: float = MONO_RTOL) -> None:
    """For every pair of coordinates a < b along `dim` (all pairs, not only neighbours, so a hole of
    infeasible points cannot hide a drop): da(b) >= da(a) (1 − rtol) where both are finite."""
    lo, hi, is_pair = _pairs(da, (dim,))
    bad = is_pair & np.isfinite(lo) & np.isfinite(hi) & (hi < lo - rtol * abs(lo))
    _fail_if(bad, msg, earlier=lo, later=hi)


# ---------------------------------------------------------------------------------------------
# 1. TTFT non-decreasing in the prompt length
# ---------------------------------------------------------------------------------------------


@SETTINGS
@given(kw=grids(prompt_len=_sorted_ints(1, 65536, 2, 6)))
def test_ttft_nondecreasing_in_prompt_len(kw):
    ds = sweep(keep=("prompt_len",), **kw)
    for name in ("ttft", "ttft_max"):
        assert_nondecreasing(ds[name], "prompt_len", f"{name} decreases with prompt_len")


# ---------------------------------------------------------------------------------------------
# 2. TPOT non-decreasing in the context (prompt_len and output_len)
# ---------------------------------------------------------------------------------------------
# Chunked-attention models (Llama-4) are excluded: there a decode query at position L sees
# ((L − 1) mod C) + 1 keys (docs/model.md §8.12), so decode work drops at every chunk boundary and TPOT
# is a sawtooth in the context by design. See test_tpot_chunked_attention_is_not_monotone.


@SETTINGS
@given(kw=grids(exclude_models=CHUNKED, prompt_len=_sorted_ints(1, 65536, 2, 6)))
def test_tpot_nondecreasing_in_prompt_len(kw):
    ds = sweep(keep=("prompt_len",), **kw)
    assert_nondecreasing(ds.tpot, "prompt_len", "tpot decreases with prompt_len")


@SETTINGS
@given(kw=grids(exclude_models=CHUNKED, output_len=_sorted_ints(1, 16384, 2, 6)))
def test_tpot_nondecreasing_in_output_len(kw):
    ds = sweep(keep=("output_len",), **kw)
    assert_nondecreasing(ds.tpot, "output_len", "tpot decreases with output_len")


def test_chunked_attention_decode_drops_at_chunk_boundaries():
    # Not monotone by design: a Llama-4 chunked layer (C = 8192) sees ((L − 1) mod C) + 1 keys per
    # decode query (docs/model.md §8.12), so the first decode step after S = 8192 cached tokens (L = 8193,
    # 1 key on those layers) is cheaper than after S = 8191 (L = 8192, 8192 keys). Chunked models are
    # therefore left out of the monotonicity properties above.
    ds = sweep(model="llama-4-scout", hardware="h200-sxm", prompt_len=[8191, 8192], output_len=2, batch=8, tp=8)
    assert float(ds.tpot.sel(prompt_len=8192)) < float(ds.tpot.sel(prompt_len=8191))
    full = sweep(model="llama-3.1-70b", hardware="h200-sxm", prompt_len=[8191, 8192], output_len=2, batch=8, tp=8)
    assert float(full.tpot.sel(prompt_len=8192)) > float(full.tpot.sel(prompt_len=8191))


# ---------------------------------------------------------------------------------------------
# 3. More HBM bandwidth or more FLOP/s is never slower
# ---------------------------------------------------------------------------------------------


def _faster(h, name, bw=1.0, flops=1.0, which="all"):
    fields = {
        "bf16": ("peak_flops_bf16",),
        "fp8": ("peak_flops_fp8",),
        "fp4": ("peak_flops_fp4",),
        "all": ("peak_flops_bf16", "peak_flops_fp8", "peak_flops_fp4"),
    }[which]
    changes = {f: getattr(h, f) * flops for f in fields}
    return h.replace(name=name, hbm_bandwidth=h.hbm_bandwidth * bw, **changes)


@SETTINGS
@given(
    kw=grids(hardware=None),
    base=st.sampled_from(HARDWARE),
    f_bw=st.sampled_from([1.0]) | st.floats(1.0, 10.0),
    f_fl=st.sampled_from([1.0]) | st.floats(1.0, 10.0),
    which=st.sampled_from(("bf16", "fp8", "fp4", "all")),
)
def test_faster_hardware_is_never_slower(kw, base, f_bw, f_fl, which):
    h0 = presets.hardware_spec(base)
    variants = {
        "bw": _faster(h0, "x-bw", bw=f_bw),
        "flops": _faster(h0, "x-flops", flops=f_fl, which=which),
        "both": _faster(h0, "x-both", bw=f_bw, flops=f_fl, which=which),
    }
    ds = sweep(keep=("hardware",), **{**kw, "hardware": [h0, *variants.values()]})
    ref = ds.sel(hardware=h0.name)
    for key, h in variants.items():
        fast = ds.sel(hardware=h.name)
        # speed never changes feasibility (capacity is unchanged), so no faster point hides as NaN
        assert (fast.infeasible_reason == ref.infeasible_reason).all(), key
        for name in TIMES:
            assert_le(fast[name], ref[name], f"{name}: {key} x(bw={f_bw}, flops={f_fl}, {which}) is slower")
    both = ds.sel(hardware="x-both")
    for key in ("bw", "flops"):
        for name in TIMES:
            assert_le(both[name], ds.sel(hardware=variants[key].name)[name], f"{name}: both faster than {key}")


# ---------------------------------------------------------------------------------------------
# 4. Weight memory per GPU non-increasing in tp x pp (and dp)
# ---------------------------------------------------------------------------------------------
# Compare every pair of layouts where one's tp, pp and dp are all >= the other's (same ep, model,
# dtype), among points that pass the divisibility and pipeline checks (the memory check is ignored:
# weight_memory_per_gpu is reported on every point).


@SETTINGS
@given(
    models=model_lists(),
    wdt=st.sampled_from(("bf16", "fp8", "fp4")),
    tps=_subset((1, 2, 3, 4, 6, 8, 16, 32), 2, 5),
    pps=_subset((1, 2, 3, 4, 5, 7, 8, 16), 2, 5),
    dps=_subset((1, 2, 4, 8), 1, 3),
    eps=_subset((1, 2, 4, 8), 1, 2),
)
def test_weight_memory_nonincreasing_in_tp_pp(models, wdt, tps, pps, dps, eps):
    ds = sweep(model=models, hardware="b200", weight_dtype=wdt, tp=tps, pp=pps, dp=dps, ep=eps, batch=8)
    structural = int(Reason.DIVISIBILITY | Reason.PIPELINE)
    w = ds.weight_memory_per_gpu.where((ds.infeasible_reason & structural) == 0)
    assert not np.isinf(w).any()
    lo, hi, is_pair = _pairs(w, ("tp", "pp", "dp"))
    bad = is_pair & np.isfinite(lo) & np.isfinite(hi) & (hi > lo + MONO_RTOL * abs(lo))
    _fail_if(bad, "weight_memory_per_gpu grows with tp/pp/dp", fewer_gpus=lo, more_gpus=hi)


# ---------------------------------------------------------------------------------------------
# 5. Every collective over a group of one GPU costs exactly 0
# ---------------------------------------------------------------------------------------------

_pos = st.floats(1e3, 1e13)
_vec = lambda s: st.lists(s, min_size=1, max_size=16)  # noqa: E731


@SETTINGS
@given(
    nbytes=_vec(st.floats(0.0, 1e12)),
    bw_in=_pos,
    bw_out=_pos,
    lat_in=st.floats(0.0, 1e-3),
    lat_out=st.floats(0.0, 1e-3),
    domain=st.integers(1, 144),
    mesh=st.sampled_from((0.0, 1.0)),
)
def test_collectives_over_one_gpu_cost_zero(nbytes, bw_in, bw_out, lat_in, lat_out, domain, mesh):
    t = lambda x: torch.tensor(x, dtype=torch.float64)  # noqa: E731
    S = t(nbytes)
    n = torch.ones_like(S)
    tiers = comm.Tiers(
        bw_in=t(bw_in), lat_in=t(lat_in), bw_out=t(bw_out), lat_out=t(lat_out), domain=t(float(domain)), mesh=t(mesh)
    )  # mesh: full-mesh scale-up (MI300-class)
    results = {
        "ring_all_reduce": comm.ring_all_reduce(S, n, t(bw_in), t(lat_in)),
        "tree_all_reduce": comm.tree_all_reduce(S, n, t(bw_in), t(lat_in)),
        "all_gather": comm.all_gather(S, n, t(bw_in), t(lat_in)),
        "reduce_scatter": comm.reduce_scatter(S, n, t(bw_out), t(lat_out)),
        "group_all_reduce": comm.group_all_reduce(S, n, tiers),
        "hierarchical_all_reduce": comm.hierarchical_all_reduce(S, n, tiers),
        "group_all_to_all": comm.group_all_to_all(S, n, tiers),
    }
    for name, value in results.items():
        assert value.shape == S.shape, name
        assert bool((value == 0).all()), f"{name} over 1 GPU = {value.tolist()}"
    # one pipeline stage has no stage boundary, so none crosses a domain
    assert bool((comm.domain_crossings(n, t(float(domain)) * n, t(float(domain))) == 0).all())


# ---------------------------------------------------------------------------------------------
# 6. A dense model equals the same model as an MoE with one expert of the same width
# ---------------------------------------------------------------------------------------------
# Only dp = 1: with dp > 1 the folded layout (physics/layout.py) shards the single expert over the
# stage's tp·dp GPUs (etp = tp·dp/ep) while the dense MLP is replicated on each of the dp replicas
# of tp-way TP; that is a different layout with different weights per GPU and collectives, not the
# same model. ep > 1 is infeasible for both (a dense model needs ep = 1, one expert cannot be split
# over ep > 1), which the test also checks.


def _densified(name):
    """A preset as a dense model (MoE presets: every layer a dense MLP of width d_ff or d_ff_expert)."""
    m = SPECS[name]
    if m.num_experts == 0:
        return m
    return m.replace(
        name=f"{name}-dense",
        num_experts=0,
        experts_per_token=0,
        num_shared_experts=0,
        d_ff_expert=0,
        first_dense_layers=0,
        moe_layer_freq=1,
        d_ff=m.d_ff or m.d_ff_expert,
    )


@SETTINGS
@given(
    kw=grids(model=None, dp=1),
    base=st.sampled_from(sorted(SPECS)),
    data=st.data(),
    launch=st.sampled_from([0.0]) | st.floats(1e-7, 1e-5),
)
def test_dense_equals_moe_with_one_expert(kw, base, data, launch):
    dense = _densified(base)
    # leading dense layers and a layer frequency leave a mix of dense and one-expert layers: still
    # the same model, since a one-expert MoE layer is a dense layer
    fd = data.draw(st.integers(0, dense.num_layers), label="first_dense_layers")
    freq = data.draw(st.integers(1, 3), label="moe_layer_freq")
    moe = dense.replace(
        name=f"{dense.name}-moe1",
        num_experts=1,
        experts_per_token=1,
        d_ff_expert=dense.d_ff,
        first_dense_layers=fd,
        moe_layer_freq=freq,
    )
    hws = [presets.hardware_spec(h).replace(launch_overhead=launch) for h in kw["hardware"]]
    ds = sweep(keep=("model",), **{**kw, "model": [dense, moe], "hardware": hws})
    a, b = ds.sel(model=dense.name), ds.sel(model=moe.name)
    assert (a.infeasible_reason == b.infeasible_reason).all()
    for name in (
        "ttft",
        "ttft_max",
        "tpot",
        "e2e_latency",
        "memory_per_gpu",
        "weight_memory_per_gpu",
        "kv_cache_memory_per_gpu",
        "activation_memory_per_gpu",
    ):
        assert_close(a[name], b[name], f"{name}: dense {dense.name} != one-expert MoE (fd={fd}, freq={freq})")


# ---------------------------------------------------------------------------------------------
# 7. Op times lie between the max (overlap = 1) and sum (overlap = 0) bounds
# ---------------------------------------------------------------------------------------------


@SETTINGS
@given(kw=grids(efficiency=None), eff=efficiencies)
def test_op_times_between_max_and_sum_bounds(kw, eff):
    eff = {k: v for k, v in (eff or {}).items() if k != "overlap"}
    runs = {x: sweep(**{**kw, "efficiency": {**eff, "overlap": x}}) for x in (0.0, 0.5, 1.0)}
    for name in ("prefill_op_time", "decode_op_time", *TIMES):
        lo, mid, hi = (runs[x][name] for x in (1.0, 0.5, 0.0))
        assert_le(lo, mid, f"{name} at overlap 0.5 below the max bound (overlap 1)")
        assert_le(mid, hi, f"{name} at overlap 0.5 above the sum bound (overlap 0)")
    for name in ("prefill_op_time", "decode_op_time"):  # each op time is affine in the overlap
        lo, mid, hi = (runs[x][name] for x in (1.0, 0.5, 0.0))
        assert_close(mid, (lo + hi) / 2, f"{name} at overlap 0.5 is not the midpoint of the bounds")


_time = st.floats(0.0, 1e6)


@SETTINGS
@given(tc=_vec(_time), tm=_vec(_time), overlap=_vec(fraction))
def test_op_time_between_max_and_sum(tc, tm, overlap):
    n = min(len(tc), len(tm), len(overlap))
    c, m, o = (torch.tensor(x[:n], dtype=torch.float64) for x in (tc, tm, overlap))
    t = op_time(c, m, o)
    assert bool((t >= torch.maximum(c, m)).all())
    assert bool((t <= c + m).all())
    assert bool((op_time(c, m, torch.ones_like(o)) == torch.maximum(c, m)).all())
    assert bool((op_time(c, m, torch.zeros_like(o)) == c + m).all())
    # overlap=None (overlap identically 1, the default) leaves the zero term out: the same bits
    assert torch.equal(op_time(c, m, None), op_time(c, m, torch.ones_like(o)))


@SETTINGS
@given(shape=st.lists(st.integers(1, 4), max_size=5), other=st.lists(st.integers(1, 4), max_size=6))
def test_inplace_covers_is_broadcast_shapes(shape, other):
    # the fast in-place check equals torch's own broadcasting rule: ``shape`` absorbs ``other``
    from tensorperf.engine.physics.inplace import _covers

    try:
        expected = torch.broadcast_shapes(tuple(shape), tuple(other)) == torch.Size(shape)
    except RuntimeError:
        expected = False
    assert _covers(torch.Size(shape), torch.Size(other)) == expected


# ---------------------------------------------------------------------------------------------
# 8. No prediction beats the physical floor
# ---------------------------------------------------------------------------------------------
# Independent of the op tables: counted from the spec's widths.
#   decode step >= (weights that must be read + KV cache the batch must read) / (N · W_hbm)
#     weights: every attention/dense-MLP matrix, the router, the shared experts, at least k routed
#     experts per MoE layer and the LM head (the input embedding is a gather, not a read);
#     KV: every sequence reads, per layer, the keys of its first decode step (L = S + 1; a sliding
#     layer min(L, w); a chunked layer conservatively 1).
#   last first token >= 2 · matmul params active per token · B · S (+ LM head at B positions)
#     / (N · peak of the weight dtype).
# Bias vectors and norm weights are left out (a floor may undercount, never overcount).


def _attention_matrices(m):
    if m.kv_lora_rank > 0:
        qk = m.qk_nope_head_dim + m.qk_rope_head_dim
        q = (
            m.d_model * m.q_lora_rank + m.q_lora_rank * m.num_heads * qk
            if m.q_lora_rank
            else (m.d_model * m.num_heads * qk)
        )
        return (
            q
            + m.d_model * (m.kv_lora_rank + m.qk_rope_head_dim)
            + m.kv_lora_rank * m.num_heads * (m.qk_nope_head_dim + m.v_head_dim)
            + m.num_heads * m.v_head_dim * m.d_model
        )
    d, dh = m.d_model, m.head_dim
    return d * m.num_heads * dh + 2 * d * m.num_kv_heads * dh + m.num_heads * dh * d


def _active_matmul_params(m):
    """Matmul parameters one token passes through, LM head excluded."""
    n_mat = 3 if m.gated_mlp else 2
    n_moe = m.num_moe_layers
    moe = 0
    if m.num_experts:
        moe = (m.experts_per_token + m.num_shared_experts) * n_mat * m.d_model * m.d_ff_expert
        moe += m.d_model * m.num_experts * (m.num_experts > 1)
    return m.num_layers * _attention_matrices(m) + (m.num_layers - n_moe) * n_mat * m.d_model * m.d_ff + n_moe * moe


def _keys_first_step(m, S):
    """Cached keys every sequence reads in one decode step, summed over layers (lower bound)."""
    n_sw = m.sliding_window_layers if m.sliding_window > 0 else 0
    n_ch = m.chunked_layers if m.attention_chunk > 0 else 0
    L = S + 1
    sw = np.minimum(L, m.sliding_window) if n_sw else 0
    return (m.num_layers - n_sw - n_ch) * L + n_sw * sw + n_ch * 1


@SETTINGS
@given(kw=grids(), micro=st.none() | _subset((1, 2, 3, 4, 8), 1, 2))
def test_no_prediction_beats_the_physical_floor(kw, micro):
    if micro is not None:
        kw = {**kw, "microbatches": micro}
    ds = sweep(**kw)
    N = (ds.tp * ds.pp * ds.dp).astype(float)
    B, S = ds.batch.astype(float), ds.prompt_len.astype(float)  # float: B·S·params overflows int64
    for m in (SPECS[n] for n in ds.model.values):
        for h in ds.hardware.values:
            hw = presets.hardware_spec(str(h))
            for wdt in (str(w) for w in ds.weight_dtype.values):
                point = ds.sel(model=m.name, hardware=h, weight_dtype=wdt)
                b_w, b_kv = DTYPE_BYTES[wdt], DTYPE_BYTES[kw["kv_dtype"]]
                active = _active_matmul_params(m)
                head = m.vocab_size * m.d_model
                must_read = (active + head) * b_w + B * m.kv_elements_per_token_per_layer * b_kv * (
                    _keys_first_step(m, S)
                )
                decode_floor = must_read / (N * hw.hbm_bandwidth)
                assert_le(decode_floor, point.tpot, f"tpot below the HBM floor ({m.name}, {h}, {wdt})")
                peak = getattr(hw, f"peak_flops_{MATH_COLUMN[wdt]}")
                if peak > 0:
                    prefill_floor = (2 * active * B * S + 2 * B * head) / (N * peak)
                    assert_le(prefill_floor, point.ttft_max, f"ttft_max below the compute floor ({m.name}, {h}, {wdt})")


# ---------------------------------------------------------------------------------------------
# 9. Feasible points are finite and positive; infeasible points say why and carry NaN
# ---------------------------------------------------------------------------------------------


@SETTINGS
@given(
    kw=grids(),
    micro=st.none() | _subset((1, 2, 3, 4, 8), 1, 2),
    world=st.none() | _subset((1, 2, 4, 8, 16, 32, 64), 1, 3),
)
def test_feasible_points_finite_and_positive(kw, micro, world):
    if micro is not None:
        kw = {**kw, "microbatches": micro}
    if world is not None:
        kw = {**kw, "world_size": world}
    ds = sweep(**kw)
    feasible = ds.feasible
    assert (feasible == (ds.infeasible_reason == 0)).all()
    for name, var in ds.data_vars.items():
        if var.dtype.kind != "f":
            continue
        bad = feasible & ~np.isfinite(var)
        if "op" in var.dims:
            bad = bad.any("op")
        _fail_if(bad, f"{name} not finite at a feasible point", value=var if "op" not in var.dims else var.sum("op"))
    for name in POSITIVE:
        _fail_if(feasible & ~(ds[name] > 0), f"{name} not positive at a feasible point", value=ds[name])
    infeasible = ~feasible
    _fail_if(infeasible & ~(ds.infeasible_reason > 0), "infeasible point without a reason", reason=ds.infeasible_reason)
    _fail_if(infeasible & ~np.isnan(ds.ttft), "infeasible point with a ttft", ttft=ds.ttft)
