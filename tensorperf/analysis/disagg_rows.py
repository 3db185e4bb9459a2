"""The disaggregated rows of a measurements table (modes ``disagg_prefill`` / ``disagg_decode``): what
their notes add to :mod:`tensorperf.analysis.fidelity`'s mapping, and the rows that give both pools.

Rules (docs/validation.md, "Disaggregated rows"; each a decision about what the deployment ran):

Physical experts
    Wide expert parallelism places a whole number of experts on every EP rank, so a run whose EP
    degree does not divide the model's experts held redundant copies (EPLB; SGLang requires the
    physical experts to split evenly over the EP ranks). The count the notes state ("288 experts
    incl. 32 redundant") is used; otherwise the smallest multiple of EP at or above the model's
    experts (256 over EP48, EP72 or EP144: 288, as DeepSeek's own decode runs, 32 redundant). They
    enter as the ``num_experts`` what-if of the row: memory, weight reads and routing see them; the
    FLOPs per token do not change (top-k is the same).
Batch
    A stated batch that does not split over the dp attention ranks (13,200 over 144) is evaluated at
    the nearest whole number per rank and a throughput scaled back by stated / evaluated.
Both pools (an end-to-end deployment)
    Notes stating "prefill instance <n> nodes/<G> GPUs" and "<x> prefill + <y> decode instances"
    give the prefill pool too (its layout by the row's rule with num_gpus = G, its batch the
    disaggregated-prefill default): a decode throughput is then the decode pool's share of the
    deployment's rate, ``decode_utilization`` of :func:`tensorperf.engine.physics.disagg.serve`
    times the decode instance's own throughput (1 where the decode pool is the bottleneck).
Skipped
    Weights offloaded to host memory ("offload" in the notes: how much stays in HBM is not stated);
    a point whose memory does not fit names the bytes it needs and what the row does not state.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch

from tensorperf.catalog import presets
from tensorperf.engine.conventions import CONVENTIONS
from tensorperf.engine.masks import Reason
from tensorperf.engine.physics import disagg as physics
from tensorperf.engine.roofline.transfer import pool_link
from tensorperf.run.inputs import build_grid, check_efficiency

_STATED_EXPERTS = re.compile(r"\b(\d+) experts incl(?:uding|\.)? (\d+) redundant", re.IGNORECASE)
_OFFLOAD = re.compile(r"\boffload", re.IGNORECASE)
_INSTANCES = re.compile(r"\b(\d+) prefill \+ (\d+) decode instances?\b", re.IGNORECASE)
_PREFILL_GPUS = re.compile(r"\bprefill instance\b[^;|,]*?\b(\d+) GPUs\b", re.IGNORECASE)
# disaggregated prefill without a stated batch: prompt tokens per rank per forward (fidelity's rule)
PREFILL_TOKENS_PER_RANK = 16384
_THROUGHPUT = ("prefill_tokens_per_s_per_gpu", "decode_tokens_per_s_per_gpu")
_POINT = ("model", "hardware", "weight_dtype", "kv_dtype", "prompt_len", "output_len", "tp", "pp", "dp", "ep")


def _text(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value).strip()


def physical_experts(notes: str, experts: int, ep: int) -> int | None:
    """The experts a run held (stated, else the smallest multiple of ``ep`` >= ``experts``); None
    where EP divides the model's experts and the notes state no other count (no what-if needed)."""
    m = _STATED_EXPERTS.search(notes)
    if m:
        return int(m.group(1))
    if experts and experts % ep:
        return math.ceil(experts / ep) * ep
    return None


def refine(row: Mapping[str, Any], out: dict[str, Any]) -> dict[str, Any]:
    """A mapped disaggregated row (status ok) with what its notes add, or skipped with the reason."""
    notes = _text(row.get("notes"))
    if _OFFLOAD.search(notes):
        return {
            "status": "skipped: weights offloaded to host memory (notes: offload); the row does not state how "
            "much of them stays in HBM"
        }
    model = presets.model(out["model"])
    experts = physical_experts(notes, int(model.num_experts), int(out["ep"]))
    out["num_experts"] = float("nan") if experts is None else float(experts)
    batch = out["batch"]
    if isinstance(batch, int) and batch % out["dp"]:  # whole requests per attention rank
        evaluated = max(1, round(batch / out["dp"])) * out["dp"]
        if out["variable"] in _THROUGHPUT:
            out["factor"] = out["factor"] * batch / evaluated
        out["batch"] = evaluated
    instances, gpus = _INSTANCES.search(notes), _PREFILL_GPUS.search(notes)
    if instances and gpus and out["variable"] == "decode_tokens_per_s_per_gpu":
        x, y, g = int(instances.group(1)), int(instances.group(2)), int(gpus.group(1))
        ep = g if out["ep"] == out["dp"] else out["ep"]  # EP over every GPU, as in the decode pool
        prefill_experts = physical_experts(notes, int(model.num_experts), ep)
        out["pools"] = (x, y, g, ep, float("nan") if prefill_experts is None else float(prefill_experts))
    return out


def _inputs(points: pd.DataFrame, experts: list[float], **changes: list[Any]) -> dict[str, Any]:
    """Zipped sweep inputs of ``points`` (their mapped columns), with ``changes`` per point."""
    inputs: dict[str, Any] = {k: points[k].tolist() for k in _POINT}
    inputs |= {"stack": points["stack"].tolist(), "recipe": points["recipe"].tolist()}
    inputs |= {"batch": [int(b) for b in points["batch"]]} | changes
    zipped = list(inputs)
    if not all(math.isnan(e) for e in experts):
        own = [presets.model(m).num_experts for m in points["model"]]
        inputs["num_experts"] = [n if math.isnan(e) else e for n, e in zip(own, experts)]
        zipped.append("num_experts")
    return inputs | {"zipped": zipped}


def _pool(inputs: Mapping[str, Any], overrides: Mapping[str, float], what_if: Mapping[str, Any], sites: dict) -> tuple:
    grid = build_grid(**inputs, **what_if)
    metrics = ("ttft", "ttft_max", "tpot", "concurrency", "num_gpus")
    with torch.no_grad():
        ev = CONVENTIONS["roofline"](grid, overrides, breakdown=False, metrics=metrics)
        link, layers = pool_link(grid, sites, overrides)
    shape = grid.shape
    values = {k: ev.values[k].expand(shape).reshape(-1) for k in metrics}
    link = physics.Link(**{k: getattr(link, k).expand(shape).reshape(-1) for k in physics.Link.__dataclass_fields__})
    return values, link, layers.expand(shape).reshape(-1), ev.reason.expand(shape).reshape(-1)


def with_pools(
    points: pd.DataFrame,
    predicted: pd.DataFrame,
    efficiency: Mapping[str, float] | None,
    what_if: Mapping[str, Any],
) -> pd.DataFrame:
    """``predicted`` with the rows that give both pools scaled by the decode pool's utilization in the
    deployment (x prefill + y decode instances, :func:`tensorperf.engine.physics.disagg.serve`)."""
    if "pools" not in points:
        return predicted
    both = points[points["pools"].map(lambda p: isinstance(p, tuple))]
    if not len(both):
        return predicted
    x, y, g, ep, experts = (list(v) for v in zip(*both["pools"]))
    overrides = check_efficiency(efficiency)
    sites = {h: i for i, h in enumerate(dict.fromkeys(both["hardware"]))}
    batch = [gpus * math.ceil(PREFILL_TOKENS_PER_RANK / s) for gpus, s in zip(g, both["prompt_len"])]
    pre = _inputs(both, experts, tp=[1] * len(both), dp=g, ep=ep, output_len=[1] * len(both), batch=batch)
    decode_experts = both["num_experts"].astype(float).tolist()
    vp, lp, layers, rp = _pool(pre, overrides, what_if, sites)
    vd, ld, _, rd = _pool(_inputs(both, decode_experts), overrides, what_if, sites)
    as_t = lambda v: torch.as_tensor(np.asarray(v, dtype=float), dtype=vp["ttft"].dtype)  # noqa: E731
    result = physics.serve(
        physics.PrefillPool(vp["concurrency"], vp["num_gpus"], vp["ttft"], vp["ttft_max"], layers, lp),
        physics.DecodePool(vd["concurrency"], vd["num_gpus"], vd["tpot"], ld),
        as_t(x),
        as_t(y),
        as_t(both["output_len"].tolist()),
    )
    share = result["decode_utilization"].cpu().numpy()
    out = predicted.copy()
    out.loc[both.index, "value"] = predicted.loc[both.index, "value"].to_numpy(dtype=float) * share
    prefill_bad = (rp != 0).cpu().numpy()
    reason = out.loc[both.index, "reason"].to_numpy(dtype=np.int64)
    out.loc[both.index, "reason"] = np.where(prefill_bad, reason | rp.cpu().numpy(), reason)
    return out


def memory_statuses(points: pd.DataFrame, reasons: pd.Series, what_if: Mapping[str, Any]) -> dict[Any, str]:
    """For disaggregated points whose memory does not fit: a reason naming the bytes they need, the
    bytes usable and what the row does not state (index -> status)."""
    short = points[(reasons.loc[points.index].astype(np.int64) & int(Reason.MEMORY)) != 0]
    if not len(short):
        return {}
    experts = short["num_experts"].astype(float).tolist() if "num_experts" in short else [math.nan] * len(short)
    grid = build_grid(**_inputs(short, experts), **what_if)
    with torch.no_grad():
        ev = CONVENTIONS["roofline"](grid, {}, breakdown=False, metrics=("memory_per_gpu",))
    need = ev.values["memory_per_gpu"].expand(grid.shape).reshape(-1).cpu().numpy()
    usable = ev.values["memory_capacity_per_gpu"].expand(grid.shape).reshape(-1).cpu().numpy()
    return {
        i: f"skipped: infeasible (memory): {n / 1e9:.1f} GB per GPU needed, {u / 1e9:.1f} GB usable; the row "
        "states no weight offload or memory fraction that would make it fit"
        for i, n, u in zip(short.index, need, usable)
    }
