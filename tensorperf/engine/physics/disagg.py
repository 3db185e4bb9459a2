"""Disaggregated prefill/decode (docs/model.md §3.15): a prefill pool of x instances and a decode pool of
y instances, joined by the KV-cache transfer of every request.

Takeaway: the system serves min(x·R_p, y·R_d) requests/s on x·G_p + y·G_d GPUs, so its per-GPU rate
never exceeds either pool's own R/G; the balanced ratio x/y = R_d/R_p reaches the harmonic bound
1/(G_p/R_p + G_d/R_d). Notation: R_p, R_d requests/s one instance sustains, G_p, G_d its GPUs, λ the
system rate, S prompt tokens, T_out output tokens, f the share of the KV transfer hidden behind
prefill compute. Sources: aiconfigurator (ai-dynamo/aiconfigurator, sdk/inference_session.py
DisaggInferenceSession: seq/s = min over the pools of workers·seq/s per worker, tokens/s/GPU =
seq/s·OSL/GPUs); Splitwise (Patel et al., ISCA 2024, arXiv:2311.18677, §IV-C: the KV cache sent
layer by layer while later layers compute, only the last layer's transfer exposed); DistServe (Zhong
et al., OSDI 2024, arXiv:2401.09670: goodput-optimal placement of the two phases).

Every function is elementwise on broadcastable tensors (no Python control flow on values).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def prefill_instance_rate(batch: torch.Tensor, batch_time: torch.Tensor) -> torch.Tensor:
    """Requests/s one prefill instance sustains prefilling static batches of ``batch`` prompts back to
    back, each done after ``batch_time`` (the last first token, ``ttft_max``): R_p = B_p / t_batch."""
    return batch / batch_time


def decode_instance_rate(batch: torch.Tensor, tpot: torch.Tensor, output_len: torch.Tensor) -> torch.Tensor:
    """Requests/s one decode instance sustains with ``batch`` requests in flight, each holding its slot
    for the T_out − 1 steps after the first token (which the prefill pool produced), Little's law:
    R_d = B_d / ((T_out − 1)·TPOT). Infinite at T_out = 1 (nothing left to decode)."""
    steps = output_len - 1
    busy = steps * tpot
    safe = torch.where(steps > 0, busy, torch.ones_like(busy))  # (never divides by 0)
    return torch.where(steps > 0, batch / safe, torch.full_like(safe, math.inf))


def kv_bytes_per_request(
    elements_per_token_per_layer: torch.Tensor, layers: torch.Tensor, cached_tokens: torch.Tensor, b_kv: torch.Tensor
) -> torch.Tensor:
    """KV-cache bytes of one request's prompt, one copy (not the TP replicas of MLA's latent or of KV
    heads when tp > n_kv): n_L · e · S_cached · b_kv, e = 2·n_kv·d_h (GQA) or r_kv + d_rope (MLA),
    S_cached the prompt tokens a layer keeps, averaged over layers (sliding windows keep w);
    docs/model.md §3.11 and §4 G2."""
    return layers * elements_per_token_per_layer * cached_tokens * b_kv


def kv_lanes(
    full_elements: torch.Tensor, rank_elements: torch.Tensor, pp: torch.Tensor, cp: torch.Tensor | float
) -> torch.Tensor:
    """GPUs of one replica holding distinct shards of a request's KV cache, each sending (or receiving)
    its shard on its own link at once: pp stages × cp context ranks × the head shards
    e / e_rank (min(tp, n_kv) for GQA; 1 for MLA, whose latent every TP rank holds whole)."""
    return pp * cp * full_elements / rank_elements


def link_rate(replicas: torch.Tensor, lanes: torch.Tensor, bw: torch.Tensor, nbytes: torch.Tensor) -> torch.Tensor:
    """Requests/s an instance's KV links carry: its dp replicas × lanes GPUs, each at ``bw`` bytes/s per
    direction, over ``nbytes`` bytes per request."""
    return replicas * lanes * bw / nbytes


def kv_transfer_time(
    nbytes: torch.Tensor, queued: torch.Tensor, lanes: torch.Tensor, bw: torch.Tensor, lat: torch.Tensor
) -> torch.Tensor:
    """Mean time to move a request's KV cache from its prefill replica to its decode replica, alpha-beta
    (docs/model.md §3.9): α + (q + 1)/2 · S_kv / (lanes · W). The q requests of one prefill replica's
    batch leave together and queue on the same links, first come first served (the mean request waits
    for (q − 1)/2 others); ``lanes`` links of ``bw`` bytes/s each carry the shards in parallel."""
    return lat + (queued + 1) / 2 * nbytes / (lanes * bw)


def layerwise_overlap(num_layers: torch.Tensor) -> torch.Tensor:
    """The share of the transfer a layer-by-layer sender hides when the link keeps up with compute:
    every layer's KV leaves while later layers compute, the last layer's is exposed: 1 − 1/n_L
    (Splitwise §IV-C; Mooncake and NVIDIA Dynamo's NIXL connectors send layer by layer the same way)."""
    return 1 - 1 / num_layers


def exposed_transfer(t_kv: torch.Tensor, t_prefill: torch.Tensor, overlap: torch.Tensor | float) -> torch.Tensor:
    """The part of the KV transfer that adds to TTFT: at most ``overlap`` of it hides, and no more than
    the prefill compute it hides behind: t_kv − min(f · t_kv, t_prefill)."""
    return t_kv - torch.minimum(overlap * t_kv, t_prefill)


def balanced_instances(r_p: torch.Tensor, r_d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y) with x·R_p = y·R_d (both pools saturate together), the smaller of the two equal to 1:
    x = R_d/R_p, y = 1 where R_d ≥ R_p, else x = 1, y = R_p/R_d (fractional instance counts; any
    common multiple is the same deployment scaled)."""
    prefill_short = r_d >= r_p
    return torch.where(prefill_short, r_d / r_p, 1.0), torch.where(prefill_short, 1.0, r_p / r_d)


def system_rate(x: torch.Tensor, y: torch.Tensor, r_p: torch.Tensor, r_d: torch.Tensor) -> torch.Tensor:
    """Requests/s the deployment serves at saturation, set by the slower pool: λ = min(x·R_p, y·R_d)
    (aiconfigurator's rate matching, without its empirical degradation factors)."""
    return torch.minimum(x * r_p, y * r_d)


def prefill_wait(utilization: torch.Tensor, batch_time: torch.Tensor) -> torch.Tensor:
    """Mean wait of an arrival for the prefill batch running on its instance to end before its own batch
    starts, fluid arrivals at the pool's share of λ: busy with probability ρ_p = λ/(x·R_p), then half
    a batch on average: ρ_p · t_batch / 2 (as §10.2's half step; a Poisson queue at a saturated pool
    has no steady state, so this is the TTFT at the rate the deployment is sized for)."""
    return utilization * batch_time / 2


def tokens_per_s_per_gpu(rate: torch.Tensor, output_len: torch.Tensor, gpus: torch.Tensor) -> torch.Tensor:
    """Output tokens per second per GPU of both pools: λ·T_out / (x·G_p + y·G_d)."""
    return rate * output_len / gpus


# --------------------------------------------------------------------------- two pools joined

TIER_AUTO, TIER_SCALEUP, TIER_SCALEOUT = 0, 1, 2  # where the KV cache travels (codes of ``tier``)


@dataclass(frozen=True)
class Link:
    """One pool's side of the KV transfer at each point (tensors broadcastable to the pairs)."""

    kv_bytes: torch.Tensor  # bytes of one request's prompt KV cache, one copy (the sender's format)
    lanes: torch.Tensor  # GPUs of one replica holding distinct KV shards (links used at once)
    replicas: torch.Tensor  # dp replicas of the instance
    bw_scaleup: torch.Tensor  # B/s per GPU per direction, efficiency applied
    lat_scaleup: torch.Tensor  # s
    bw_scaleout: torch.Tensor  # B/s per GPU per direction, efficiency applied
    lat_scaleout: torch.Tensor  # s
    domain: torch.Tensor  # GPUs per scale-up domain
    site: torch.Tensor  # which hardware (a code): pools on different hardware share no scale-up domain


@dataclass(frozen=True)
class PrefillPool:
    """One prefill instance: static batches of ``batch`` prompts."""

    batch: torch.Tensor  # prompts per batch on the instance
    gpus: torch.Tensor  # G_p
    ttft: torch.Tensor  # s: mean first-token time over its batch
    batch_time: torch.Tensor  # s: the batch's last first token (ttft_max)
    layers: torch.Tensor  # n_L (the default overlap's)
    link: Link


@dataclass(frozen=True)
class DecodePool:
    """One decode instance with ``batch`` requests in flight."""

    batch: torch.Tensor  # requests in flight on the instance
    gpus: torch.Tensor  # G_d
    tpot: torch.Tensor  # s: mean time per output token at that batch
    link: Link


def _tier(
    p: Link, d: Link, x: torch.Tensor, y: torch.Tensor, g_p: torch.Tensor, g_d: torch.Tensor, tier: int
) -> torch.Tensor:
    """Whether the KV cache stays in the scale-up domain: asked for, or (auto) both pools on one
    hardware and the whole deployment, ceil(x)·G_p + ceil(y)·G_d GPUs, inside one domain (e.g.
    GB200 NVL72); otherwise it crosses the scale-out network."""
    fits = (p.site == d.site) & (torch.ceil(x) * g_p + torch.ceil(y) * g_d <= torch.minimum(p.domain, d.domain))
    return fits if tier == TIER_AUTO else torch.full_like(fits, tier == TIER_SCALEUP)


def _path(p: Link, d: Link, up: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(bandwidth, latency) of the KV path on its tier: the slower end's per-GPU bandwidth, the larger
    latency."""
    bw = torch.where(up, torch.minimum(p.bw_scaleup, d.bw_scaleup), torch.minimum(p.bw_scaleout, d.bw_scaleout))
    lat = torch.where(up, torch.maximum(p.lat_scaleup, d.lat_scaleup), torch.maximum(p.lat_scaleout, d.lat_scaleout))
    return bw, lat


def serve(
    p: PrefillPool,
    d: DecodePool,
    x: torch.Tensor,
    y: torch.Tensor,
    output_len: torch.Tensor,
    overlap: torch.Tensor | float | None = None,
    tier: int = TIER_AUTO,
) -> dict[str, torch.Tensor]:
    """The deployment of x prefill and y decode instances at saturation (NaN in ``x`` and ``y``: the
    balanced ratio of the pools' rates). ``overlap``: the share f of the KV transfer hidden behind
    prefill compute (None: layer by layer, 1 − 1/n_L). Returns the serving metrics (docs/model.md
    §3.15): λ, TTFT = wait + prefill + exposed transfer, TPOT, per-GPU throughput, and their parts."""
    r_p = prefill_instance_rate(p.batch, p.batch_time)
    r_d = decode_instance_rate(d.batch, d.tpot, output_len)
    bal_x, bal_y = balanced_instances(r_p, r_d)
    x0, y0 = torch.where(torch.isnan(x), bal_x, x), torch.where(torch.isnan(y), bal_y, y)
    up = _tier(p.link, d.link, x0, y0, p.gpus, d.gpus, tier)
    bw, lat = _path(p.link, d.link, up)
    nbytes = p.link.kv_bytes
    # each instance's KV links bound its rate (the transfer overlaps the next batch's compute)
    r_p = torch.minimum(r_p, link_rate(p.link.replicas, p.link.lanes, bw, nbytes))
    r_d = torch.minimum(r_d, link_rate(d.link.replicas, d.link.lanes, bw, nbytes))
    bal_x, bal_y = balanced_instances(r_p, r_d)
    x, y = torch.where(torch.isnan(x), bal_x, x), torch.where(torch.isnan(y), bal_y, y)
    rate = system_rate(x, y, r_p, r_d)
    gpus = x * p.gpus + y * d.gpus
    t_kv = kv_transfer_time(nbytes, p.batch / p.link.replicas, torch.minimum(p.link.lanes, d.link.lanes), bw, lat)
    f = layerwise_overlap(p.layers) if overlap is None else overlap
    exposed = exposed_transfer(t_kv, p.ttft, f)
    rho_p = rate / (x * r_p)
    ttft = prefill_wait(rho_p, p.batch / r_p) + p.ttft + exposed
    tpot = d.tpot * torch.ones_like(ttft)
    return {
        "serving_ttft": ttft,
        "serving_tpot": tpot,
        "serving_e2e_latency": ttft + (output_len - 1) * tpot,
        "serving_requests_per_s": rate,
        "serving_tokens_per_s_per_gpu": tokens_per_s_per_gpu(rate, output_len, gpus),
        "serving_tokens_per_s_per_user": 1 / tpot,
        "num_gpus": gpus,
        "prefill_instances": x,
        "decode_instances": y,
        "prefill_capacity": x * r_p,
        "decode_capacity": y * r_d,
        "prefill_utilization": rho_p,
        "decode_utilization": rate / (y * r_d),
        "kv_transfer_time": t_kv,
        "kv_transfer_exposed": exposed,
        "kv_scaleup": up,
    }
