"""The static passes through the model, each a function of (workload, rates, deployment, shortcuts):
prefill (whole or chunked) and decode (docs/model.md §3, §8); serving under load is in :mod:`.load`.

Decode: output token 1 comes from prefill; decode step j = 1..T_out−1 attends over L = S + j cached
tokens. TPOT is the mean over those steps, integrated with Simpson's rule over j (exact where the
step time is affine or quadratic in L, e.g. whenever attention is memory-bound).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tensorperf.engine.physics import inplace, ops, pipeline
from tensorperf.engine.physics import speculative as spec_physics
from tensorperf.engine.physics.attention import mean_chunked_keys, mean_decode_keys, mean_prefill_pairs
from tensorperf.engine.roofline import collectives, layer, overlap, speculative, stages
from tensorperf.engine.roofline.chunked import chunked_prefill
from tensorperf.engine.roofline.collectives import Collectives
from tensorperf.engine.roofline.per_op import PerOp, each
from tensorperf.engine.roofline.values import Deployment, Rates, Shortcuts, Workload


@dataclass(frozen=True)
class Prefill:
    ttft: torch.Tensor  # mean over the batch's microbatches
    ttft_max: torch.Tensor  # the last microbatch's
    ops: PerOp  # per-op quantities of one layer (summed over chunks)
    times: torch.Tensor | None  # per-op times over all layers, op axis last (breakdown only)


@dataclass(frozen=True)
class Decode:
    tpot: torch.Tensor
    ops: PerOp  # per-op quantities of the mean decode step (speculative: its verification pass)
    coll: Collectives  # its collectives
    times: torch.Tensor | None  # per-op times of the mean step over all layers (breakdown only)
    # the mean decode step's time: tpot itself, or with speculative decoding tpot · E (its k draft
    # steps and its verification, E tokens per sequence; docs/model.md §3.14)
    step: torch.Tensor | None = None

    @property
    def step_time(self) -> torch.Tensor:
        return self.tpot if self.step is None else self.step


def simpson(first: torch.Tensor, middle: torch.Tensor, last: torch.Tensor, into_first: bool = False) -> torch.Tensor:
    """Mean over an interval from its ends and midpoint; exact for quadratics (and for constants,
    bit for bit, in this form). ``into_first``: ``first`` is the caller's temporary and may take the
    result (first + 4·middle in one pass: 4·middle is exact, so the fused form rounds the same)."""
    if into_first and inplace.owned(first, middle, last):
        return first.add_(middle, alpha=4).add_(last).div_(6)
    return (first + 4 * middle + last) / 6


def with_overhead(r: Rates, s: Shortcuts, t: torch.Tensor, steps: torch.Tensor | None = None) -> torch.Tensor:
    """``t`` plus the fixed overhead of its forward steps (``steps`` of them, default one), left out
    where step_overhead is identically 0 (the default)."""
    if not s.overhead:
        return t
    return t + (r.efficiency.step_overhead if steps is None else steps * r.efficiency.step_overhead)


def prefill(w: Workload, r: Rates, d: Deployment, s: Shortcuts) -> Prefill:
    """B_mb sequences of S tokens per replica-microbatch; context parallelism: each cp rank takes 1/cp
    of the tokens and pairs, and reads every K/V block. With ``chunk_size``, the chunked prefill where
    a chunk is shorter than the prompt (a chunk of the whole prompt is the whole prefill exactly)."""
    m, lay, S, bmb = w.model, d.layout, w.prompt, d.microbatch
    cp = lay.cp
    tokens = bmb * S / cp
    pre = ops.Phase(
        tokens=tokens,
        pairs=bmb * mean_prefill_pairs(m, S) / cp,
        kv_read=bmb * S,
        sequences=bmb,
        absorbed=False,
        spread=cp,
    )
    pre_ops = layer.phase_ops(w, r, d, s, pre)
    pre_coll = collectives.with_context_parallel(
        w, r, d, s, collectives.phase_comm(w, r, d, s, tokens, cp), pre, pre_ops["attn"][2]
    )
    pre_times, pre_total, pre_slowest = stages.compose(
        w, d, s, pre_ops, pre_coll, s.breakdown, overlap.halves(w, r, d, s, pre)
    )
    ttft, ttft_max = pipeline.prefill_times(with_overhead(r, s, pre_total), pre_slowest, lay.micro)
    if w.chunk_size is None:
        return Prefill(ttft=ttft, ttft_max=ttft_max, ops=pre_ops, times=pre_times)
    whole = w.chunk_size >= S
    c_ops, c_coll, fill = chunked_prefill(w, r, d, s)
    c_times, c_total, c_slowest = stages.compose(w, d, s, c_ops, c_coll, s.breakdown)
    c_ttft, c_ttft_max = pipeline.chunked_prefill_times(
        c_total, with_overhead(r, s, c_slowest, w.chunks), lay.micro, fill
    )
    keep = lambda a, b: torch.where(whole.reshape(whole.shape + (1,) * (b.dim() - whole.dim())), a, b)
    return Prefill(
        ttft=keep(ttft, c_ttft),
        ttft_max=keep(ttft_max, c_ttft_max),
        ops={k: each(keep, pre_ops[k], c_ops[k]) for k in pre_ops},
        times=keep(pre_times, c_times) if s.breakdown else None,
    )


def decode(w: Workload, r: Rates, d: Deployment, s: Shortcuts) -> Decode:
    """TPOT by Simpson's rule over steps j = 1 .. T_out − 1 (3 quadrature nodes). Only the attention
    core depends on the step (its context S + j); every other op, and the collectives, are computed
    once, at the middle node. Speculative decoding (docs/model.md §3.14): each step verifies k + 1
    positions per sequence after k draft steps, and yields E tokens per sequence."""
    m, lay, S, bmb = w.model, d.layout, w.prompt, d.microbatch
    spec = w.speculation
    last = torch.clamp(w.output - 1, min=1)
    saw = mean_chunked_keys(m, S, last)  # chunked-attention layers: exact mean over the generation
    nodes = []
    at = (torch.ones_like(last), (1 + last) / 2, last)
    for j in at:
        keys = bmb * mean_decode_keys(m, S + j, saw) / lay.cp  # the KV cache is split over cp
        nodes.append(ops.Phase(tokens=bmb, pairs=keys, kv_read=keys, sequences=bmb, absorbed=True))
    plain = nodes
    if spec is not None:  # the verification pass of k + 1 positions per sequence
        nodes = [speculative.verify_phase(spec, p.tokens, p.pairs) for p in plain]
    dec_ops = layer.phase_ops(w, r, d, s, nodes[1])
    dec_coll = collectives.with_context_parallel(
        w, r, d, s, collectives.phase_comm(w, r, d, s, nodes[1].tokens), nodes[1], dec_ops["attn"][2]
    )
    steps, attn = [], []
    halves = overlap.halves(w, r, d, s, nodes[1])
    rest = (
        None
        if halves is not None
        else stages.grouped_by_layer_count(stages.without_attention(w, d, s, dec_ops, dec_coll), d)
    )
    for node in nodes:
        attn.append(layer.attention_op(w, r, d, s, (node,)))
        if rest is not None:
            total, slowest = stages.with_attention(rest, attn[-1][2])
        else:  # two-batch overlap: each layer's all-to-all against its compute, attention included
            h_ops = halves[0] | {"attn": layer.attention_op(w, r, d, s, (overlap.half(node),))}
            _, total, slowest = stages.compose(
                w, d, s, dec_ops | {"attn": attn[-1]}, dec_coll, False, (h_ops, *halves[1:])
            )
        steps.append(pipeline.decode_step(total, slowest, lay.micro))
    if spec is not None:  # k draft steps before each verification, at each node's context
        dr = speculative.drafter(w, r, d, s, bmb, plain[1].pairs)
        draft = [speculative.draft_time(w, r, d, s, dr, bmb, p.pairs, S + j) for p, j in zip(plain, at)]
        steps = [spec_physics.step_time(t, t_d, spec.k) for t, t_d in zip(steps, draft)]
    tpot = with_overhead(r, s, simpson(*steps, into_first=True))  # the same overhead at every node
    mean_ops = dec_ops | {"attn": each(simpson, *attn)}  # (the mean step's attention)
    times = stages.compose(w, d, s, mean_ops, dec_coll, True)[0] if s.breakdown else None
    if spec is None:
        return Decode(tpot=tpot, ops=mean_ops, coll=dec_coll, times=times)
    return Decode(tpot=tpot / spec.tokens_per_step, ops=mean_ops, coll=dec_coll, times=times, step=tpot)
