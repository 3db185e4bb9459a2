"""Chunked prefill: the prompt in chunks of C tokens, each a forward pass over the cache before it."""

from __future__ import annotations

import torch

from tensorperf.engine.physics import ops
from tensorperf.engine.physics.attention import mean_cached_tokens, mean_pairs_between
from tensorperf.engine.roofline import collectives, layer, stages
from tensorperf.engine.roofline.collectives import Collectives
from tensorperf.engine.roofline.per_op import PerOp, each
from tensorperf.engine.roofline.values import Deployment, Rates, Shortcuts, Workload


def chunked_prefill(w: Workload, r: Rates, d: Deployment, s: Shortcuts) -> tuple[PerOp, Collectives, torch.Tensor]:
    """Per-op sums over the chunks of a chunked prefill, the summed collectives, and the pipeline
    fill time of the final chunk.

    Chunk j of C tokens follows j·C cached ones: its attention covers P(jC + C) − P(jC) pairs and
    reads the jC + C cached tokens; every chunk re-reads the weights. The last chunk holds the
    remainder r = S − floor(S/C)·C (when r > 0) and carries the LM head. Full chunks differ only in
    their attention, evaluated one chunk position at a time (max S / min C over the grid) and summed
    exactly; the other ops are the same for every full chunk."""
    m, lay, b, eff, S = w.model, d.layout, d.sizes, r.efficiency, w.prompt
    C = torch.minimum(w.chunk_size, S)
    n_full = torch.floor(S / C)
    rest = S - n_full * C
    has_rest = (rest > 0) * 1.0
    bmb, cp = d.microbatch, lay.cp
    full = ops.Phase(
        tokens=bmb * C / cp,
        pairs=bmb * mean_pairs_between(m, torch.zeros_like(C), C) / cp,
        kv_read=bmb * C,
        sequences=bmb,
        absorbed=False,
        spread=cp,
    )
    last = ops.Phase(
        tokens=bmb * rest / cp,
        pairs=bmb * mean_pairs_between(m, S - rest, S) / cp,
        kv_read=bmb * mean_cached_tokens(m, S) * (rest > 0),
        sequences=bmb,
        absorbed=False,
        spread=cp,
    )
    full_ops, last_ops = layer.phase_ops(w, r, d, s, full), layer.phase_ops(w, r, d, s, last)
    # the attention of every full chunk j, accumulated one chunk position at a time: grid-sized
    # memory for any chunk count, and a fixed order of additions (the sum does not depend on how the
    # grid is split; positions past a point's own chunk count add exact zeros)
    attn_full = [0.0, 0.0, 0.0, 0.0]
    for j in range(w.max_chunks):  # chunk positions, not grid points
        start = j * C
        chunk_j = ops.Phase(
            tokens=full.tokens,
            pairs=bmb * mean_pairs_between(m, start, start + C) / cp,
            kv_read=bmb * mean_cached_tokens(m, start + C),
            sequences=bmb,
            absorbed=False,
            spread=cp,
        )
        f, n = ops.attention_core(m, lay, chunk_j, b, s.has_gqa, s.has_mla)
        t, margin = layer.timed(r, s, f, n, r.peak_attn, eff.attention, eff.memory)
        valid = j < n_full
        attn_full = [
            None if x is None else acc + torch.where(valid, x, torch.zeros_like(x))
            for acc, x in zip(attn_full, (f, n, t, margin))
        ]
    per_op = {}
    for name in full_ops:  # a handful of op kinds
        if name == "attn":
            per_op[name] = each(lambda a, x: a + has_rest * x, attn_full, last_ops[name])
        elif name == "lm_head":  # logits once, after the last chunk
            per_op[name] = each(lambda x, y: torch.where(rest > 0, x, y), last_ops[name], full_ops[name])
        else:
            per_op[name] = each(lambda x, y: n_full * x + has_rest * y, full_ops[name], last_ops[name])
    c_full = collectives.with_context_parallel(
        w, r, d, s, collectives.phase_comm(w, r, d, s, full.tokens, cp), full, full_ops["attn"][2]
    )
    c_last = collectives.with_context_parallel(
        w, r, d, s, collectives.phase_comm(w, r, d, s, last.tokens, cp), last, last_ops["attn"][2]
    )
    coll = {k: n_full * c_full[k] + has_rest * c_last[k] for k in ("dense", "moe_tp", "moe_ep", "hops") if k in c_full}
    coll["hop"] = n_full * c_full["hop"] + has_rest * c_last["hop"]  # the slowest stage sends every chunk on
    # pipeline drain of the final chunk: the remainder, or a full chunk (its attention averaged)
    avg = dict(full_ops) | {"attn": each(lambda x: x / torch.clamp(n_full, min=1), attn_full)}
    _, total_f, slowest_f = stages.compose(w, d, s, avg, c_full)
    _, total_l, slowest_l = stages.compose(w, d, s, last_ops, c_last)
    fill = torch.maximum(total_f - slowest_f, has_rest * (total_l - slowest_l))
    return per_op, coll, fill
