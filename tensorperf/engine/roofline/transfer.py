"""What one pool of a disaggregated deployment brings to the KV-cache transfer (docs/model.md §3.15),
on its grid: the bytes of a request's prompt KV, the links that carry them and the tiers' rates. The
pool's prefill and decode metrics come from :func:`tensorperf.engine.roofline.evaluate` on the same
grid; :func:`tensorperf.engine.physics.disagg.serve` joins two pools."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from tensorperf.engine.grid import Grid
from tensorperf.engine.physics import disagg
from tensorperf.engine.physics.attention import mean_cached_tokens
from tensorperf.engine.physics.layout import kv_elements_per_rank
from tensorperf.engine.roofline.build import build


def pool_link(
    grid: Grid, sites: Mapping[str, int], efficiency: Mapping[str, Any] | None = None
) -> tuple[disagg.Link, torch.Tensor]:
    """(the KV-transfer side of every point of ``grid``, its number of layers). ``sites`` numbers the
    hardware names of both pools (a pool's ``site``); ``efficiency`` overrides as in ``evaluate``."""
    w, r, d, _ = build(grid, efficiency or {}, {}, False)
    m, lay, tiers = w.model, d.layout, r.tiers
    full = m.kv_elements_per_token_per_layer
    link = disagg.Link(
        kv_bytes=disagg.kv_bytes_per_request(full, m.num_layers, mean_cached_tokens(m, w.prompt), d.sizes.kv),
        lanes=disagg.kv_lanes(full, kv_elements_per_rank(m, lay), lay.pp, lay.cp),
        replicas=lay.dp,
        bw_scaleup=tiers.bw_in,
        lat_scaleup=tiers.lat_in,
        bw_scaleout=tiers.bw_out,
        lat_scaleout=tiers.lat_out,
        domain=tiers.domain,
        site=grid.place("hardware", [sites[name] for name in grid.labels["hardware"]]),
    )
    return link, m.num_layers
