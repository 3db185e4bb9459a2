"""Issue 20 (explanations): `tp.explain` and `tensorperf explain` / `tensorperf best` spell out every
infeasibility reason with the point's own numbers (model and hardware facts in the comments)."""

import io

import pytest

import tensorperf as tp
from tensorperf.interface.cli import main
from tensorperf.interface.explanation import Explanation, Finding
from tensorperf.interface.explanation_stream import explain_inputs
from tensorperf.interface.point_inputs import point_inputs

R = tp.Reason
L70 = dict(model="llama-3.1-70b", hardware="h100-sxm", breakdown=False)  # 64 heads, 8 KV heads, d_ff 28672, 80 layers


def messages(ds, reason=None):
    return [f.message for f in tp.explain(ds) if reason is None or f.reason == reason]


def run(argv):
    out = io.StringIO()
    return main(argv, out=out), out.getvalue()


# ---- one message per rule, with the numbers -------------------------------------------------------


def test_divisibility_says_which_quantity_fails():
    # Llama-3.1-70B at tp=3: 64 % 3 = 1, 8 % 3 = 2 and 3 % 8 = 3, 28672 % 3 = 1 (28672 = 2^12·7)
    assert messages(tp.sweep(**L70, tp=3)) == [
        "tp=3 does not divide 64 attention heads",
        "tp=3 and 8 KV heads: neither divides the other",
        "tp=3 does not divide d_ff=28672 (the MLP width of 80 dense layers)",
    ]
    # Mixtral-8x7B (8 experts of width 14336) at tp=16, ep=3: 8 % 3, 16 % 3 and 14336 % (16/3) fail
    ds = tp.sweep(model="mixtral-8x7b", hardware="h100-sxm", tp=16, ep=3, breakdown=False)
    assert messages(ds) == [
        "ep=3 does not divide 8 experts",
        "ep=3 does not divide the 16 GPUs of a pipeline stage (tp·cp·dp = 16·1·1)",
        "the expert tensor-parallel degree tp·cp·dp/ep = 5.333 does not divide d_ff_expert=14336",
    ]
    # a dense model has no experts to spread
    assert messages(tp.sweep(**L70, tp=8, ep=2)) == ["ep=2 but llama-3.1-70b has no experts (ep must be 1)"]


def test_pipeline_batch_and_world_size():
    ds = tp.sweep(**L70, tp=8, pp=128, dp=2, batch=3, world_size=64)
    assert int(ds.infeasible_reason) == R.WORLD_SIZE | R.PIPELINE | R.BATCH
    assert messages(ds) == [
        "the layout uses 2048 GPUs (tp·cp·pp·dp = 8·1·128·2), the required world size is 64",  # 8·128·2 = 2048
        "pp=128 pipeline stages for 80 layers (at most one stage per layer)",
        "dp=2 does not divide batch=3",  # (then a replica's 1.5 requests split into no microbatches either)
    ]
    # 2 microbatches of a replica's 3 requests (pp=2, dp=1)
    ds = tp.sweep(**L70, tp=8, pp=2, batch=3, microbatches=2)
    assert messages(ds) == ["2 microbatches do not divide a replica's 3 requests (batch 3 / dp 1)"]


def test_dtype_names_the_format_the_hardware_and_the_paths():
    # H100: bf16 989.4 and fp8 1978.8 TFLOP/s dense, no fp4 (h100-sxm.toml)
    assert messages(tp.sweep(**L70, tp=8, weight_dtype="fp4")) == [
        "fp4 has no math path on h100-sxm: no native fp4 math (peak_flops_fp4 = 0; native math there: "
        "bf16 989.4 TFLOP/s, fp8 1979 TFLOP/s); stack ideal has no weight-only kernel and no W4A8 kernel"
    ]
    # gpt-oss-120b's MXFP4 experts on an A100 (bf16 only, 312 TFLOP/s): the experts group has no path
    ds = tp.sweep(model="gpt-oss-120b", hardware="a100-sxm-80g", recipe="gpt-oss-mxfp4", tp=2, breakdown=False)
    (finding,) = tp.explain(ds)
    assert finding.reason == R.DTYPE and finding.rule == "experts_path"
    assert finding.message == (
        "the experts weights are mxfp4 (recipe gpt-oss-mxfp4), and mxfp4 has no math path on a100-sxm-80g: "
        "no native fp4 math (peak_flops_fp4 = 0; native math there: bf16 312 TFLOP/s); "
        "stack ideal has no weight-only kernel and no W4A8 kernel"
    )


def test_placement_group_vs_scale_up_domain():
    # DeepSeek-V3 at tp=128 divides everything (128 heads, d_ff 18432 = 128·144, d_ff_expert 2048 = 128·16)
    # but 128 > 72 GPUs of a GB200 NVL72 domain and 128 % 72 = 56
    ds = tp.sweep(model="deepseek-v3", hardware="gb200", tp=128, breakdown=False)
    assert int(ds.infeasible_reason) == R.PLACEMENT
    assert messages(ds) == [
        "tp=128 spans more than the 72-GPU scale-up domain of gb200 and is not a multiple of it "
        "(a TP group fits one domain or spans whole domains)"
    ]


def test_memory_needed_vs_usable():
    ds = tp.sweep(model="llama-3.1-405b", hardware="h100-sxm", tp=2, batch=64, breakdown=False)
    (finding,) = tp.explain(ds)
    # usable: 0.9 (the ideal stack's KV fraction) x 85,520,809,984 B = 77.0 GB; weights 405.85e9
    # params x 2 B / tp 2 = 405.9 GB; KV: 2·126 layers·(8/2) KV heads·128·2 B·64 requests·1152 tokens
    # = 19,025,362,944 B
    assert finding.message == (
        "needs 426.8 GB per GPU, has 77.0 GB usable (weights 405.9, KV cache 19.0, activations 2.0 GB)"
    )
    assert finding.values["kv_cache_memory_per_gpu"] == 2 * 126 * 4 * 128 * 2 * 64 * 1152
    assert finding.values["memory_capacity_per_gpu"] == pytest.approx(0.9 * 85520809984, rel=1e-15)


def test_inconsistent_what_ifs():
    # 5 KV heads for 64 query heads; an idle power above the H100's 700 W board power
    ds = tp.sweep(**L70, tp=8, num_kv_heads=5, idle_power=900.0)
    assert messages(ds, R.INCONSISTENT) == [
        "num_kv_heads=5 does not divide num_heads=64 (each KV head serves a whole group of query heads)",
        "idle_power 900 W is above board_power 700 W",
    ]
    assert messages(ds, R.DIVISIBILITY) == ["tp=8 and 5 KV heads: neither divides the other"]


def test_overloaded_rate_vs_capacity_of_the_closed_loop():
    ds = tp.sweep(**L70, tp=4, batch=64, request_rate=100.0)
    (finding,) = tp.explain(ds)
    closed = tp.sweep(**L70, tp=4, batch=64)  # the capacity: B / e2e of the closed loop at the cap
    capacity, e2e = float(closed.serving_requests_per_s), float(closed.serving_e2e_latency)
    assert finding.values == {"rate": 100.0, "capacity": capacity, "batch": 64.0, "e2e": e2e}
    assert capacity == pytest.approx(64 / e2e, rel=1e-12)
    assert finding.message == (
        f"request rate 100/s reaches the capacity of {capacity:.4g} requests/s "
        f"(64 requests in flight, each {e2e:.4g} s end to end)"
    )


def test_every_reason_has_a_sentence():
    cases = {
        R.WORLD_SIZE: dict(tp=8, world_size=16),
        R.DIVISIBILITY: dict(tp=3),
        R.MEMORY: dict(tp=1),
        R.DTYPE: dict(tp=8, weight_dtype="fp4"),
        R.PLACEMENT: dict(tp=8, scaleup_size=6),  # 8 > 6 and 8 % 6 = 2
        R.PIPELINE: dict(tp=8, pp=81),
        R.BATCH: dict(tp=8, dp=2, batch=3),
        R.INCONSISTENT: dict(tp=8, pue_scale=0.5),
        R.OVERLOADED: dict(tp=8, batch=8, request_rate=1e4),
        R.NO_DRAFTER: dict(tp=8, speculative="mtp", acceptance=0.7),  # Llama has no MTP modules
    }
    assert set(cases) == set(R)
    for reason, kw in cases.items():
        ds = tp.sweep(**L70, **kw)
        assert int(ds.infeasible_reason) == reason, (reason, kw)
        found = tp.explain(ds)
        assert [f.reason for f in found] and {f.reason for f in found} == {reason}
        assert all(f.rule and "recorded in infeasible_reason" not in f.message for f in found), found.text()


# ---- many points: counts per reason, one example each ---------------------------------------------


def test_summary_counts_every_bit_and_shows_one_example_per_reason():
    ds = tp.sweep(**L70, weight_dtype=["bf16", "fp4"], tp=[1, 3, 8], batch=[1, 3], dp=[1, 2])
    why = tp.explain(ds)
    assert isinstance(why, Explanation) and all(isinstance(f, Finding) for f in why)
    codes = ds.infeasible_reason.values
    assert why.points == codes.size == 24 and why.feasible == int((codes == 0).sum())
    assert dict(why.counts) == {r: int(((codes & r) != 0).sum()) for r in R if ((codes & r) != 0).any()}
    # the example of a reason is the first point (C order of weight_dtype, batch, tp, dp) failing it
    # alone: batch 1 over dp 2 at bf16 and tp=8 (tp 1 runs out of memory, tp 3 does not divide)
    (batch,) = [f for f in why if f.reason == R.BATCH and f.rule == "batch_over_dp"]
    assert dict(batch.point) == {"weight_dtype": "bf16", "batch": 1, "tp": 8, "dp": 2}
    assert batch.message == "dp=2 does not divide batch=1"
    assert int(ds.infeasible_reason.sel(batch.point)) == R.BATCH
    text = why.text()
    assert text.startswith(f"24 points, {why.feasible} feasible; the {24 - why.feasible} others by reason")
    assert f"dtype         {why.counts[R.DTYPE]} points, e.g. fp4 has no math path on h100-sxm" in text


def test_streamed_explanation_equals_the_in_memory_one():
    kw = dict(model="llama-3.1-70b", hardware="h100-sxm", weight_dtype=["bf16", "fp4"], tp=[1, 3, 8], batch=[1, 3])
    ref = tp.explain(tp.sweep(**kw, dp=[1, 2]))
    got = explain_inputs(chunk_points=5, dp=[1, 2], **kw)
    assert (got.points, got.feasible, dict(got.counts)) == (ref.points, ref.feasible, dict(ref.counts))
    assert [(dict(f.point), f.rule, f.message) for f in got] == [(dict(f.point), f.rule, f.message) for f in ref]


def test_a_point_rebuilds_its_specs_from_the_dataset():
    custom = tp.presets.hardware_spec("h100-sxm").replace(name="h100-small", hbm_capacity=40e9)
    ds = tp.sweep(model="llama-3.1-70b", hardware=custom, tp=1, num_layers=40, breakdown=False)
    inputs = point_inputs(ds)
    assert inputs["hardware"] == custom and inputs["model"] == tp.presets.model("llama-3.1-70b")
    assert inputs["num_layers"] == 40 and inputs["tp"] == 1
    # 0.9 x 40 GB = 36.0 GB usable
    assert messages(ds, R.MEMORY)[0].split(" (")[0].endswith("has 36.0 GB usable")


def test_explain_refuses_what_is_not_a_sweep():
    with pytest.raises(tp.SpecError, match="sweep's Dataset"):
        tp.explain(tp.sweep(**L70).drop_vars("infeasible_reason"))


# ---- the command line -----------------------------------------------------------------------------


def test_cli_explain_spells_out_an_infeasible_point_and_keeps_the_op_table_of_a_feasible_one():
    code, text = run(["explain", "--model", "llama-3.1-70b", "--hardware", "h100-sxm", "--tp", "3"])
    assert code == 0
    assert (
        "feasible: no (divisibility; infeasible_reason 2)\n  divisibility: tp=3 does not divide 64 attention heads"
        in text
    )
    code, text = run(["explain", "--model", "llama-3.1-70b", "--hardware", "h100-sxm", "--tp", "4"])
    assert code == 0 and "feasible: yes" in text and "Decode: one step" in text and "divisibility" not in text


def test_cli_best_with_nothing_feasible_prints_the_counts_per_reason(tmp_path):
    flags = ["--model", "llama-3.1-70b", "--hardware", "h100-sxm", "--tp", "3,5", "--weight-dtype", "fp4"]
    code, text = run(["best", *flags])
    assert code == 0
    lines = text.splitlines()
    assert lines[0] == "Best point by tokens_per_s_per_gpu (max): no feasible point."
    assert lines[1] == "none of the 2 points is feasible; by reason (a point may have several):"
    assert lines[2].startswith("  divisibility  2 points, e.g. tp=3 does not divide 64 attention heads")
    assert lines[3].startswith("  dtype         2 points, e.g. fp4 has no math path on h100-sxm")
    # the same from a results file
    path = tmp_path / "none.nc"
    assert run(["sweep", *flags, "-o", str(path)])[0] == 0
    assert run(["best", str(path)]) == (code, text)
    # feasible points, none meeting the constraint: the table, and a line saying so
    code, text = run(
        ["best", "--model", "llama-3.1-70b", "--hardware", "h100-sxm", "--tp", "3,4", "--where", "ttft<=1e-6"]
    )
    assert code == 0 and text.splitlines()[-1] == "1 of 2 points is feasible; none of them meets the constraints"
    assert text.startswith("Best point by tokens_per_s_per_gpu (max) with ttft <= 1e-06")  # (the table)


def test_seed_convention_counts_tp_pp_dp_ep_against_the_seed_cluster():
    # the seed's MI300 cluster: 8 GPUs per node x 8 nodes = 64; the seed counts tp·pp·dp·ep GPUs
    ds = tp.sweep(
        model="gpt-moe-1.8t", hardware="mi300-seed", convention="seed", prompt_len=16384, batch=16, tp=4, ep=8
    )
    assert messages(ds) == ["the layout uses 32 GPUs (tp·pp·dp·ep = 4·1·1·8), the required world size is 64"]


def test_zipped_points_name_their_inputs_in_memory_and_streamed():
    kw = dict(model="llama-3.1-70b", hardware="h100-sxm", tp=[1, 3, 8], pp=[1, 1, 2], zipped=["tp", "pp"], batch=[2, 3])
    ref = tp.explain(tp.sweep(**kw, dp=2, breakdown=False))
    got = explain_inputs(chunk_points=2, dp=2, **kw)
    (div,) = [f for f in ref if f.rule == "heads_over_tp"]
    assert dict(div.point) == {"point": 1, "tp": 3, "pp": 1, "batch": 2}
    assert [(dict(f.point), f.message) for f in got] == [(dict(f.point), f.message) for f in ref]
