"""The metric registry is the one declaration of a metric: each convention produces exactly the
metrics declared for it, and the roofline convention runs the passes the registry says they need."""

from __future__ import annotations

import pytest

from tensorperf.engine import roofline, seed
from tensorperf.engine.metrics import METRICS, ROOFLINE, SEED, Pass, produced_by
from tensorperf.engine.roofline.formulas import FORMULAS
from tensorperf.run.inputs import build_grid

ROOFLINE_METRICS = set(produced_by(ROOFLINE))


def test_every_roofline_formula_is_declared_and_every_declared_metric_has_a_formula():
    assert set(FORMULAS) == ROOFLINE_METRICS


@pytest.mark.parametrize("breakdown", [True, False])
def test_the_roofline_convention_produces_exactly_its_declared_metrics(breakdown):
    grid = build_grid(
        model=["llama-3.1-70b", "deepseek-v3"], hardware="h100-sxm", chunk_size=[1024, 8192], tp=[1, 8], batch=[1, 8]
    )
    ev = roofline.evaluate(grid, breakdown=breakdown)
    declared = {k for k in ROOFLINE_METRICS if breakdown or not METRICS[k].per_op}
    assert set(ev.values) == declared
    assert list(ev.values) == [k for k in METRICS if k in declared]  # the registry's (the Dataset's) order
    assert set(ev.trailing) == {k for k in declared if METRICS[k].per_op}


def test_the_seed_convention_produces_exactly_its_declared_metrics():
    grid = build_grid(model="gpt-moe-1.8t", hardware="mi300-seed", tp=[1, 2], batch=16)
    ev = seed.evaluate(grid, breakdown=True)
    assert set(ev.values) == set(produced_by(SEED))


def test_declarations_are_consistent():
    for name, m in METRICS.items():
        if m.always:  # computed whatever is asked: it can need no pass
            assert not m.passes and not m.per_op, name
        if m.passes:  # (the roofline convention's passes)
            assert ROOFLINE in m.conventions, name
        if not m.conventions:  # formed from the infeasibility reason
            assert name in ("feasible", "infeasible_reason")


@pytest.mark.parametrize(
    ("metrics", "breakdown", "passes"),
    [
        (None, False, set(Pass)),
        ((), False, set()),
        (("ttft",), False, {Pass.PREFILL}),
        (("e2e_latency",), False, {Pass.PREFILL, Pass.DECODE}),
        (("mfu", "memory_per_gpu"), False, {Pass.DECODE}),
        (("serving_tokens_per_s_per_gpu",), False, {Pass.SERVING}),
        (("prefill_op_time",), False, set()),  # the breakdown is computed with breakdown=True only
        ((), True, {Pass.PREFILL, Pass.DECODE}),
    ],
)
def test_the_passes_run_are_those_the_asked_for_metrics_need(metrics, breakdown, passes):
    runs, names = roofline.plan(metrics, breakdown)
    assert runs == passes
    always = {k for k, m in METRICS.items() if m.always}
    assert always <= set(names)
    assert all(METRICS[k].passes <= runs for k in names)
