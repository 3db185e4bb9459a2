"""Attention extents: query-key pairs in prefill, keys per decode step, tokens held in the cache.

Full causal attention over S tokens has S(S+1)/2 pairs per sequence (not S², seed bug B10).
A sliding window of w keys (keys j with i − w < j <= i) has w(w+1)/2 + (S − w)·w pairs once S > w;
Llama-4 chunked attention with chunk C lets position i see ((i − 1) mod C) + 1 keys
(docs/model.md §8.12). Models mix full, sliding and chunked layers; these functions return the
average over the layers of a model, which is what a per-layer op table needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from tensorperf.catalog.specs import ModelSpec


def causal_pairs(S: torch.Tensor) -> torch.Tensor:
    return S * (S + 1) / 2


def window_pairs(S: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Pairs per sequence with a window of w keys (equals causal_pairs when S <= w)."""
    ww = torch.minimum(S, w)
    return ww * (ww + 1) / 2 + (S - ww) * ww


def chunked_pairs(S: torch.Tensor, C: torch.Tensor) -> torch.Tensor:
    """Pairs per sequence with chunked attention: full chunks of C, then a partial one of r."""
    q = torch.floor(S / C)
    r = S - q * C
    return q * C * (C + 1) / 2 + r * (r + 1) / 2


def _mix(m: ModelSpec, full: torch.Tensor, sliding: torch.Tensor, chunked: torch.Tensor) -> torch.Tensor:
    n = m.num_layers
    n_sw = m.sliding_window_layers * (m.sliding_window > 0)
    n_ch = m.chunked_layers * (m.attention_chunk > 0)
    return ((n - n_sw - n_ch) * full + n_sw * sliding + n_ch * chunked) / n


def _safe(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x > 0, x, torch.ones_like(x))


def mean_pairs_between(m: ModelSpec, start: torch.Tensor, end: torch.Tensor) -> torch.Tensor:
    """Pairs of the queries at positions start+1 .. end (a prefill chunk after `start` cached
    tokens): P(end) − P(start) with P the cumulative pair count, per sequence, averaged over layers.
    For full causal layers c·p + c(c+1)/2 with c = end − start, p = start (docs/model.md §3.3)."""
    return mean_prefill_pairs(m, end) - mean_prefill_pairs(m, start)


def mean_prefill_pairs(m: ModelSpec, S: torch.Tensor) -> torch.Tensor:
    """Query-key pairs per sequence per layer, averaged over the model's layers."""
    return _mix(
        m, causal_pairs(S), window_pairs(S, _safe(m.sliding_window)), chunked_pairs(S, _safe(m.attention_chunk))
    )


def mean_decode_keys(m: ModelSpec, L: torch.Tensor, chunked: torch.Tensor | None = None) -> torch.Tensor:
    """Keys attended by one decode query at context L (new token included), averaged over layers.

    ``chunked`` replaces the chunked-attention layers' keys, ((L − 1) mod C) + 1, a sawtooth in L,
    by a given value (e.g. its exact mean over a generation, :func:`mean_chunked_keys`)."""
    C = _safe(m.attention_chunk)
    saw = torch.remainder(L - 1, C) + 1 if chunked is None else chunked
    return _mix(m, L, torch.minimum(L, _safe(m.sliding_window)), saw)


def mean_chunked_keys(m: ModelSpec, S: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
    """Exact mean over decode steps L = S+1 .. S+steps of a chunked layer's keys ((L − 1) mod C) + 1:
    the running sum of keys is the chunked pair count, so the mean is a difference of pair counts."""
    C = _safe(m.attention_chunk)
    return (chunked_pairs(S + steps, C) - chunked_pairs(S, C)) / steps


def mean_cached_tokens(m: ModelSpec, L: torch.Tensor) -> torch.Tensor:
    """Tokens a layer keeps in its KV cache at context L, averaged over layers."""
    return _mix(m, L, torch.minimum(L, _safe(m.sliding_window)), torch.minimum(L, _safe(m.attention_chunk)))
