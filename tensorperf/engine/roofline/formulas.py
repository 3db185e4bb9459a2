"""One formula per metric of the roofline convention, from what the passes computed (:class:`Outcome`).

The metric itself (units, long name, the passes it needs, whether it is always computed) is declared
in :data:`tensorperf.engine.metrics.METRICS`; a new metric is one entry there and one formula here
(tests check the two agree).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from types import MappingProxyType
from typing import Any

import torch

from tensorperf.engine.physics.memory import max_batch
from tensorperf.engine.physics.power import all_in_power, gpu_power
from tensorperf.engine.roofline import layer, per_op
from tensorperf.engine.roofline.footprint import Footprint, footprint
from tensorperf.engine.roofline.load import Load
from tensorperf.engine.roofline.per_op import PerOp
from tensorperf.engine.roofline.phases import Decode, Prefill
from tensorperf.engine.roofline.values import Deployment, Rates, Workload


@dataclass(frozen=True)
class Outcome:
    """What one evaluation computed at every point; a pass that did not run is None."""

    workload: Workload
    rates: Rates
    deployment: Deployment
    memory: Footprint
    counts: Mapping[str, Any]  # how often each op runs in a pass (per_op.counts)
    gpus: torch.Tensor  # GPUs of the layout
    per_gpu_step: torch.Tensor  # each GPU runs its stage once per microbatch per step: micro / pp
    prefill: Prefill | None
    decode: Decode | None
    serving: Load | None
    generation: torch.Tensor | None  # the decode steps after the first token (prefill and decode)
    e2e: torch.Tensor | None  # a request's end-to-end latency (prefill and decode)
    batch_done: torch.Tensor | None  # when the batch's last request is done (prefill and decode)

    # quantities several formulas share, each computed once per evaluation (when first asked for)
    @cached_property
    def static_throughput(self) -> torch.Tensor:
        """Output tokens/s per GPU of a static batch, its prefill included."""
        return self.workload.batch * self.workload.output / self.gpus / self.batch_done

    @cached_property
    def prefill_throughput(self) -> torch.Tensor:
        return self.workload.batch * self.workload.prompt / self.gpus / self.prefill.ttft_max

    @cached_property
    def serving_throughput(self) -> torch.Tensor:
        return self.serving.output_per_s / self.gpus

    @cached_property
    def power(self) -> torch.Tensor:
        """Mean W per GPU over a static batch's life: the prefill pass (until the last first token)
        and the decode steps, each at its own power, weighted by its time."""
        prefill = _step_power(self, self.prefill.ops, self.prefill.ttft_max)
        decode = _step_power(self, self.decode.ops, self.decode.step_time)  # (a speculative step: tpot·E)
        return (prefill * self.prefill.ttft_max + decode * self.generation) / self.batch_done

    @cached_property
    def serving_power(self) -> torch.Tensor:
        """W per GPU at the serving load: the mean step's power while steps run, idle otherwise."""
        running = _step_power(self, self.serving.ops, self.serving.step)
        busy = self.serving.busy
        return running if busy is None else busy * running + (1 - busy) * self.rates.operating.idle_power


def outcome(
    w: Workload,
    r: Rates,
    d: Deployment,
    prefill: Prefill | None,
    decode: Decode | None,
    serving: Load | None,
) -> Outcome:
    """The passes' results, the memory per GPU at the batch, and a request's timeline where both
    prefill and decode ran: the decode steps after the first token follow the (mean or last) first
    token."""
    generation = e2e = batch_done = None
    if prefill is not None and decode is not None:
        generation = (w.output - 1) * decode.tpot
        e2e = prefill.ttft + generation
        batch_done = prefill.ttft_max + generation
    lay = d.layout
    return Outcome(
        workload=w,
        rates=r,
        deployment=d,
        memory=footprint(w, d),
        counts=per_op.counts(w.model),
        gpus=lay.num_gpus,
        per_gpu_step=lay.micro / lay.pp,
        prefill=prefill,
        decode=decode,
        serving=serving,
        generation=generation,
        e2e=e2e,
        batch_done=batch_done,
    )


def _max_batch(o: Outcome) -> torch.Tensor:
    d, f64 = o.deployment, torch.float64
    return max_batch(
        d.capacity.to(f64), d.weights.to(f64), d.workspace_cap.to(f64), d.per_sequence.to(f64), d.layout_exact.dp
    )


def _bound(phase: Prefill | Decode) -> torch.Tensor:
    return per_op.bound({k: v[3] for k, v in phase.ops.items()}, phase.times)


# ---- power, energy and cost (docs/model.md §9) ---------------------------------------------------


def _step_power(o: Outcome, ops: PerOp, t: torch.Tensor) -> torch.Tensor:
    """W drawn by each GPU over ``t`` running ``ops`` (one layer's per-op quantities; each GPU runs
    its stage micro/pp times per pass): its load u_compute + β·u_hbm is the seconds the pass keeps
    the compute units busy plus β times the seconds it keeps HBM busy, each op's work at its own
    kernels' full rates, over ``t``. Few-axis coefficients are formed first: one grid-sized
    multiply-add per op and quantity."""
    rates = layer.busy_rates(o.workload, o.rates, "experts" in ops)
    op = o.rates.operating
    order = [k for k in per_op.OPS if k != "attn" and k in ops] + ["attn"]  # per_op.total's order
    coef = {k: o.counts[k] * o.per_gpu_step for k in order}  # runs of the op per GPU per pass
    busy = per_op.left_sum(
        term
        for k in order
        for term in ((coef[k] * rates[k][0]) * ops[k][0], (coef[k] * op.hbm_power_fraction * rates[k][1]) * ops[k][1])
    )
    return gpu_power(op.idle_power, op.board_power, busy / t)


def _per_megawatt(o: Outcome, throughput: torch.Tensor, power: torch.Tensor) -> torch.Tensor:
    """Output tokens/s per MW of all-in power (GPU, host share, facility)."""
    op = o.rates.operating
    return throughput * 1e6 / all_in_power(power, op.host_power_per_gpu, op.pue)


def _cost_per_million(o: Outcome, tokens_per_s_per_gpu: torch.Tensor) -> torch.Tensor:
    """$ per million tokens at a throughput per GPU: the GPU-seconds they take at the hour's price
    (NaN where the hardware states no price)."""
    price = o.rates.operating.price_per_gpu_hour
    return torch.where(price > 0, price * (1e6 / 3600), torch.nan) / tokens_per_s_per_gpu


# metric -> its formula; where a product has factors on few axes, those are multiplied first
FORMULAS: Mapping[str, Callable[[Outcome], torch.Tensor]] = MappingProxyType(
    {
        "ttft": lambda o: o.prefill.ttft,
        "ttft_max": lambda o: o.prefill.ttft_max,
        "tpot": lambda o: o.decode.tpot,
        "e2e_latency": lambda o: o.e2e,
        "tokens_per_s_per_gpu": lambda o: o.static_throughput,
        "tokens_per_s_per_user": lambda o: 1 / o.decode.tpot,
        "decode_tokens_per_s_per_gpu": lambda o: o.workload.batch / o.gpus / o.decode.tpot,
        "prefill_tokens_per_s_per_gpu": lambda o: o.prefill_throughput,
        "serving_ttft": lambda o: o.serving.ttft,
        "serving_tpot": lambda o: o.serving.tpot,
        "serving_e2e_latency": lambda o: o.serving.e2e,
        "serving_requests_per_s": lambda o: o.serving.requests_per_s,
        "serving_step_time": lambda o: o.serving.step,
        "serving_tokens_per_s_per_gpu": lambda o: o.serving_throughput,
        "serving_tokens_per_s_per_user": lambda o: 1 / o.serving.tpot,
        "concurrency": lambda o: o.workload.batch_exact,
        "memory_per_gpu": lambda o: o.memory.total,
        "weight_memory_per_gpu": lambda o: o.deployment.weights,
        "kv_cache_memory_per_gpu": lambda o: o.memory.kv,
        "activation_memory_per_gpu": lambda o: o.memory.activations,
        "memory_capacity_per_gpu": lambda o: o.deployment.capacity,
        "max_batch": _max_batch,
        "min_gpus_for_capacity": lambda o: o.memory.min_gpus,
        "num_gpus": lambda o: o.deployment.layout_exact.num_gpus,
        # FLOP and bytes of one decode step's ops on each GPU over what its peak delivers in the step (a
        # TPOT; speculative: the verification pass's over the step, docs/model.md §3.14)
        "mfu": lambda o: (
            per_op.total(o.decode.ops, o.counts, 0) * (o.per_gpu_step / o.rates.peak_gemm) / o.decode.step_time
        ),
        "mbu": lambda o: (
            per_op.total(o.decode.ops, o.counts, 1) * (o.per_gpu_step / o.rates.hbm_bandwidth) / o.decode.step_time
        ),
        "power_per_gpu": lambda o: o.power,
        "energy_per_output_token": lambda o: o.power / o.static_throughput,
        "tokens_per_s_per_mw": lambda o: _per_megawatt(o, o.static_throughput, o.power),
        "cost_per_million_output_tokens": lambda o: _cost_per_million(o, o.static_throughput),
        "cost_per_million_input_tokens": lambda o: _cost_per_million(o, o.prefill_throughput),
        "serving_power_per_gpu": lambda o: o.serving_power,
        "serving_energy_per_output_token": lambda o: o.serving_power / o.serving_throughput,
        "serving_tokens_per_s_per_mw": lambda o: _per_megawatt(o, o.serving_throughput, o.serving_power),
        "serving_cost_per_million_output_tokens": lambda o: _cost_per_million(o, o.serving_throughput),
        "prefill_op_time": lambda o: o.prefill.times,
        "decode_op_time": lambda o: o.decode.times,
        "prefill_op_flops": lambda o: per_op.stack(o.prefill.ops, o.counts, 0),
        "prefill_op_bytes": lambda o: per_op.stack(o.prefill.ops, o.counts, 1),
        "decode_op_flops": lambda o: per_op.stack(o.decode.ops, o.counts, 0),
        "decode_op_bytes": lambda o: per_op.stack(o.decode.ops, o.counts, 1),
        "prefill_op_bound": lambda o: _bound(o.prefill),
        "decode_op_bound": lambda o: _bound(o.decode),
    }
)
