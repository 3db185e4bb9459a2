"""Long contexts: chunked prefill (chunk_size) and context parallelism (cp)."""

import numpy as np
import pytest
import torch

import tensorperf as tp
from tensorperf.engine.physics.attention import mean_pairs_between

S_1M = 1_048_576  # 128 chunks of 8192
L8B = tp.presets.model("llama-3.1-8b")
BIG = tp.presets.hardware_spec("b200").replace(name="b200-big", hbm_capacity=1e13)


def _view(spec):
    """A float tensor view of a ModelSpec (as the engine builds one)."""
    g = tp.build_grid(model=spec, hardware="b200")
    return g.spec("model")


def test_chunk_pair_counts_for_a_1m_token_prompt():
    m = _view(L8B)
    C = 8192.0
    j = torch.arange(128, dtype=torch.float64)
    pairs = mean_pairs_between(m, j * C, j * C + C)
    # chunk j: c·p + c(c+1)/2 = 8192·8192·j + 8192·8193/2 = 67,108,864·j + 33,558,528
    assert pairs[0].item() == 33_558_528 and pairs[127].item() == 67_108_864 * 127 + 33_558_528
    # all chunks together: S(S+1)/2 = 549,756,338,176 pairs, as one pass
    assert pairs.sum().item() == S_1M * (S_1M + 1) // 2 == 549_756_338_176


def test_chunked_prefill_flops_kv_and_time():
    ds = tp.sweep(model="llama-3.1-8b", hardware=BIG, prompt_len=S_1M, output_len=1, chunk_size=[8192, S_1M])
    # attention FLOPs do not depend on the chunking: 4·n_q·d_h·n_L·S(S+1)/2 = 4·32·128·32·549,756,338,176
    attn = ds.prefill_op_flops.sel(op="attn")
    assert float(attn.sel(chunk_size=8192)) == float(attn.sel(chunk_size=S_1M)) == 4 * 32 * 128 * 32 * 549_756_338_176
    # the weights are re-read by each of the 128 chunks: QKV bytes grow, FLOPs do not
    qkv_bytes = ds.prefill_op_bytes.sel(op="qkv")
    assert float(qkv_bytes.sel(chunk_size=8192)) > float(qkv_bytes.sel(chunk_size=S_1M))
    # the KV cache of the whole request: (S + T_out)·2·n_L·n_kv·d_h·2 B = 1,048,577·131,072 B
    assert float(ds.kv_cache_memory_per_gpu.sel(chunk_size=8192)) == 1_048_577 * 131_072
    assert bool((ds.ttft.sel(chunk_size=8192) >= ds.ttft.sel(chunk_size=S_1M)).all())


@pytest.mark.parametrize("model", ["llama-3.1-8b", "deepseek-v3", "gpt-oss-120b", "llama-4-scout"])
def test_chunk_at_least_the_prompt_equals_unchunked_exactly(model):
    kw = dict(model=model, hardware=BIG, prompt_len=[1000, 8192], batch=[1, 8], tp=8, pp=[1, 2], output_len=64)
    plain = tp.sweep(**kw)
    chunked = tp.sweep(**kw, chunk_size=[8192, 50000])
    for name in ("ttft", "ttft_max", "tpot", "prefill_op_time", "prefill_op_flops", "prefill_op_bytes"):
        for c in (8192, 50000):
            got = chunked[name].sel(chunk_size=c)
            want = plain[name].transpose(*got.dims)
            if c == 8192:  # only the prompts that fit one chunk
                got, want = got.sel(prompt_len=[1000, 8192]), want.sel(prompt_len=[1000, 8192])
            np.testing.assert_array_equal(got.values, want.values, err_msg=f"{name} C={c}")


def test_smaller_chunks_never_speed_up_a_single_prefill():
    ds = tp.sweep(
        model=["llama-3.1-8b", "mixtral-8x7b"],
        hardware=BIG,
        prompt_len=131072,
        chunk_size=[2048, 8192, 32768, 131072],
        batch=1,
        tp=8,
    )
    assert bool((ds.ttft.diff("chunk_size") <= 1e-12 * ds.ttft.isel(chunk_size=slice(1, None))).all())


def test_context_parallel_prefill_speeds_up_long_prompts_until_comm_dominates():
    # Llama-3.1-70B, 128K prompt, tp=8: cp ranks split the tokens and the pairs; on an NVL72 domain
    # the ring transfer hides behind attention, so TTFT falls with cp
    kw = dict(model="llama-3.1-70b", prompt_len=131072, output_len=2, batch=1, tp=8, cp=[1, 2, 4, 8])
    fast = tp.sweep(hardware=tp.presets.hardware_spec("gb200").replace(name="gb200-big", hbm_capacity=1e13), **kw)
    t = fast.ttft.values
    assert np.all(np.diff(t) < 0) and t[-1] < t[0] / 4
    # with a 1 GB/s, 1 ms scale-out link the cp ring leaves the 8-GPU domain and communication dominates
    slow_hw = BIG.replace(name="slow-net", scaleout_bandwidth=1e9, scaleout_latency=1e-3)
    slow = tp.sweep(hardware=slow_hw, **kw)
    assert float(slow.ttft.sel(cp=8)) > float(slow.ttft.sel(cp=1))
    assert list(fast.num_gpus.values) == [8, 16, 32, 64]  # N = tp·cp·pp·dp


def test_context_parallel_divides_the_kv_cache_and_decode_attention():
    ds = tp.sweep(
        model=["llama-3.1-8b", "deepseek-v3"], hardware=BIG, prompt_len=524288, output_len=2, batch=2, tp=8, cp=[1, 4]
    )
    kv = ds.kv_cache_memory_per_gpu
    np.testing.assert_array_equal(kv.sel(cp=4).values * 4, kv.sel(cp=1).values)
    attn = ds.decode_op_bytes.sel(op="attn")  # KV read per decode step per GPU: 1/cp of it
    assert bool((attn.sel(cp=4) < attn.sel(cp=1) / 3).all())
    # weights are not split by cp (each cp rank holds the full attention/dense weights)
    w = ds.weight_memory_per_gpu.sel(model="llama-3.1-8b")
    assert float(w.sel(cp=4)) == float(w.sel(cp=1))


def test_seed_convention_rejects_cp_and_chunking():
    with pytest.raises(tp.SpecError, match="no context parallelism or chunked prefill"):
        tp.sweep(model="gpt-moe-1.8t", hardware="mi300-seed", convention="seed", cp=[1, 2])


def test_long_context_example_runs():
    import io
    from pathlib import Path

    from tensorperf.interface.cli import main

    path = Path(__file__).resolve().parents[1] / "examples" / "long-context.toml"
    out = io.StringIO()
    assert main(["sweep", str(path)], out=out) == 0
    text = out.getvalue()
    assert "deepseek-v3" in text and "1048576" in text and "gpt-moe-1.8t" in text


@pytest.mark.parametrize("pp", [1, 2, 4])
def test_a_one_token_remainder_chunk_changes_little(pp):
    # C = S − 1 runs the chunked path (one full chunk and a 1-token remainder); it must stay within a
    # few percent of the single pass, and above it: the remainder re-reads the weights once more
    kw = dict(model=["llama-3.1-8b", "mixtral-8x7b"], hardware=BIG, prompt_len=8192, tp=8, pp=pp, batch=[1, 4])
    one = tp.sweep(**kw)
    two = tp.sweep(**kw, chunk_size=8191)
    for name in ("ttft", "ttft_max"):
        a, b = one[name].values, two[name].values
        assert np.all(b >= a * (1 - 1e-12)) and np.all(b <= a * 1.10), name


def test_chunked_prefill_pays_one_pipeline_hop_per_chunk():
    # pp = 2 over a 1 GB/s link (tp = 8 fills each 8-GPU domain): the first stage sends each of the
    # 8 chunks' activations on, 1024·4096·2 B / (1e9·eta) each, and every chunk passes that stage
    slow = BIG.replace(name="slow-link", scaleup_size=8, scaleout_bandwidth=1e9)
    ds = tp.sweep(model="llama-3.1-8b", hardware=slow, tp=8, pp=2, prompt_len=8192, chunk_size=[1024, 8192])
    hop = 1024 * 4096 * 2 / (1e9 * slow.efficiency.scaleout)
    assert float(ds.ttft_max.sel(chunk_size=1024)) > 8 * hop
    assert float(ds.prefill_op_time.sel(op="pp_comm", chunk_size=1024)) > 8 * hop


def test_chunk_axis_sum_does_not_depend_on_the_grid_around_a_point():
    """The per-chunk attention sum runs in a fixed order: every point of a grid equals its own
    one-point sweep bit for bit (a one-point grid has a different chunk-axis length)."""
    kw = dict(model="llama-3.1-8b", hardware=BIG, prompt_len=[65536, 131072], chunk_size=[512, 8192], tp=8)
    whole = tp.sweep(**kw)
    for S in kw["prompt_len"]:
        for C in kw["chunk_size"]:
            one = tp.sweep(**{**kw, "prompt_len": S, "chunk_size": C})
            for var in ("ttft", "ttft_max", "prefill_op_flops", "prefill_op_time"):
                np.testing.assert_array_equal(one[var].values, whole[var].sel(prompt_len=S, chunk_size=C).values)
