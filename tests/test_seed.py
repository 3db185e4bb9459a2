"""convention='seed' reproduces the seed notebook's printed numbers (docs/model.md §1.4, Appendix A)."""

import json
from pathlib import Path

import numpy as np
import pytest

import tensorperf as tp
from tensorperf.engine.seed import seed_param_count

GOLDEN = json.loads((Path(__file__).parent / "golden" / "seed_appendix_a.json").read_text())
SEED = dict(model="gpt-moe-1.8t", hardware="mi300-seed", convention="seed")
REL = 1e-12


def close(got, expected, rel=REL):
    return abs(got - expected) <= rel * abs(expected)


@pytest.fixture(scope="module")
def recorded():
    """ttft_time(16, 16384), first configuration ' tp4ep16' (the recorded run)."""
    return tp.sweep(**SEED, prompt_len=16384, batch=16, tp=4, ep=16)


@pytest.mark.parametrize(
    "op, ms",
    [
        # the notebook's printed compute breakdown (cell In[83]); arithmetic in docs/model.md §1.4
        ("qkv", 16.304472562731384),  # 6·16384·10752² FLOP / (0.85·630784 FLOP/cycle) / 1.3 GHz
        ("attn", 17.59847832167832),  # 4·16384²·10752 FLOP at eff 0.8
        ("outproj", 5.434824187577129),  # 2·16384·10752² at 0.85
        ("moe", 12.318934825174825),  # one expert: 4·4096·10752·4·10752 at 0.75
        ("topk_softmax", 0.019023024787712287),  # 60,934,553 cycles / (308·8) / 1.3 GHz
        ("rope", 0.27262976000000005),  # 704,643,072 B / (0.8·4200/1.3) "ms" (B4)
        ("layernorm", 0.33554432),  # same bytes at 0.65
    ],
)
def test_recorded_layer_op_times(recorded, op, ms):
    assert close(float(recorded.layer_op_time.sel(op=op)) * 1e3, ms)


def test_recorded_totals(recorded):
    assert close(float(recorded.layer_op_time.sum("op")) * 1e3, 52.28390700194937)
    # 52.28 // 4 + 1.25·2·(0.8426057142857145 + 0.003) = 13.0 + 2.114014285714286
    assert close(float(recorded.layer_comm_time) * 1e3, 2.114014285714286)
    assert close(float(recorded.layer_time) * 1e3, 15.114014285714287)
    # 16 sequences · 120 layers · 15.114014285714287 ms
    assert close(float(recorded.ttft) * 1e3, 29018.90742857143)
    assert recorded.ttft.attrs["units"] == "s"
    assert bool(recorded.feasible) and int(recorded.infeasible_reason) == 0


def test_all_58_layouts_in_one_sweep():
    degrees = [1, 2, 4, 8, 16, 32, 64]
    ds = tp.sweep(
        **SEED,
        prompt_len=GOLDEN["prompt_len"],
        batch=GOLDEN["batch"],
        tp=degrees,
        pp=degrees,
        dp=degrees,
        ep=[1, 2, 4, 8, 16],
    )
    assert ds.ttft.dims == ("tp", "pp", "dp", "ep")
    assert len(GOLDEN["rows"]) == 58
    for row in GOLDEN["rows"]:
        point = ds.sel(tp=row["tp"], pp=row["pp"], dp=row["dp"], ep=row["ep"])
        assert bool(point.feasible), row["key"]
        assert float(point.ttft) * 1e3 == pytest.approx(float(row["latency_ms"]), rel=REL, abs=0)
        assert float(point.layer_comm_time) * 1e3 == pytest.approx(row["comm_ms"], rel=REL, abs=0)
        assert float(point.layer_bubble_time) * 1e3 == pytest.approx(row["bubble_ms"], rel=REL, abs=0)
    # only layouts of exactly 8 x 8 = 64 GPUs are feasible; the others carry the world-size bit
    world = ds.tp * ds.pp * ds.dp * ds.ep
    assert bool((ds.feasible == (world == 64)).all())
    assert bool((ds.infeasible_reason.where(world != 64) == int(tp.Reason.WORLD_SIZE)).where(world != 64, True).all())
    assert bool(ds.ttft.where(world != 64).isnull().all())


def test_seed_parameter_formulas():
    # docs/model.md §1.5: model_base() + moe_params() = 1,832,462,069,760; active (top-4) 500,686,663,680
    m = tp.presets.model("gpt-moe-1.8t")

    class View:  # the seed's mlp_factor is an integer ratio
        d_model, num_layers, vocab_size = m.d_model, m.num_layers, m.vocab_size
        learned_positions, num_experts, experts_per_token = m.learned_positions, m.num_experts, 4
        mlp_factor = m.d_ff_expert // m.d_model

    assert seed_param_count(View, active=False) == 1_832_462_069_760
    assert seed_param_count(View, active=True) == 500_686_663_680


def test_seed_gpu_capacity():
    # gpu_capacity(1.83e12 params, 1024 out, 16384 ctx, batch 16) -> fp8 14, fp16 27, fp4 7 GPUs (§1.5)
    ds = tp.sweep(**SEED, prompt_len=16384, output_len=1024, batch=16, tp=4, ep=16, weight_dtype=["fp8", "fp16", "fp4"])
    assert ds.min_gpus_for_capacity.values.tolist() == [14, 27, 7]


@pytest.mark.parametrize(
    "S, ms",
    [
        # compute_forward_pass("TTFT", S) re-run in CPython (docs/model.md §1.5)
        (1, 0.0021170957595345826),
        (128, 0.2720540373777693),
        (1000, 2.182589999669448),
        (4096, 9.771262065094609),
        (131072, 1403.7860420308298),
        (1048576, 74303.23464114362),
    ],
)
def test_compute_forward_pass_over_prompt_lengths(S, ms):
    ds = tp.sweep(**SEED, prompt_len=[S, 16384], tp=4, ep=16)
    assert close(float(ds.layer_op_time.sel(prompt_len=S).sum("op")) * 1e3, ms, rel=1e-13)


def test_seed_convention_needs_seed_hardware():
    with pytest.raises(tp.SpecError, match="mi300-seed"):
        tp.sweep(
            model="gpt-moe-1.8t", hardware=tp.presets.hardware_spec("mi300-seed").replace(seed=None), convention="seed"
        )


def test_seed_float32_close_to_float64():
    kw = dict(**SEED, prompt_len=[4096, 16384], batch=[1, 16], tp=[2, 4], ep=[8, 16], dp=[1, 2], pp=[1, 2])
    d64, d32 = tp.sweep(**kw), tp.sweep(**kw, dtype="float32")
    np.testing.assert_allclose(d32.layer_op_time.values, d64.layer_op_time.values, rtol=1e-5)
