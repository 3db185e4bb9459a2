"""convention="seed": the seed notebook's prefill model, vectorized and bit-exact.

Reproduces ``ttft_time(batch, seqlen)`` of the seed notebook (docs/model.md §1) for every layout
at once (its loop over shard configurations, with ``assert(0)`` removed), following the recipe of
docs/model.md §1.6: float64, integer counts in int64 converted where CPython converts them, the
seed's left-to-right operation order, and its integer *and float* floor divisions. Every quirk is
kept on purpose (see docs/seed-differences.md); this convention is for regression, not planning.

Times inside this module are in the seed's milliseconds; they become seconds at the very end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from tensorperf.catalog.specs import HARDWARE_FIELDS
from tensorperf.engine.grid import Grid
from tensorperf.engine.masks import Reason, combine
from tensorperf.engine.metrics import Evaluation
from tensorperf.validation import SpecError

if TYPE_CHECKING:
    from tensorperf.catalog.specs import SeedHardware

OPS = ("qkv", "attn", "outproj", "moe", "topk_softmax", "rope", "layernorm")
FSDP_OVERHEAD = 0.25  # fsdp_communication_overhead(), applied to all communication
ACT_BYTES = 2  # modelConfig.act_bpe
WT_BPE = 2  # modelConfig.wt_bpe: the communication payload's element size whatever the dtype
DECODE_MS = 1  # compute_forward_pass returns 1 for any mode but "TTFT" (B28)


@dataclass(frozen=True)
class SeedEfficiency:
    """algo_dict["ttft"] of the seed (cell In[73]); topk_gating and gelu are unused there."""

    qkv: float = 0.85
    attn: float = 0.8
    outproj: float = 0.85
    moe: float = 0.75
    layernorm: float = 0.65
    rope: float = 0.8


def _seed_bytes(labels: tuple[str, ...]) -> list[float]:
    """gpu_capacity's parameter_byte: fp8 -> 1, fp4 -> 0.5, anything else -> 2."""
    return [1.0 if d == "fp8" else 0.5 if d == "fp4" else 2.0 for d in labels]


def _floor(a: torch.Tensor, b: Any) -> torch.Tensor:
    """Python's ``a // b`` (CPython float floor division for floats, floor for ints)."""
    return torch.div(a, b, rounding_mode="floor")


def _split(v: torch.Tensor, tp: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """shardConfig.setup_configuration: degree -> (intra, inter). tp fills the node first;
    dp/pp/ep go across nodes first; the literal 8 and the floor are the seed's (B13)."""
    small = v <= 8
    if tp:
        return torch.where(small, v, 8), torch.where(small, 1, v // 8)
    return torch.where(small, 1, v // 8), torch.where(small, v, 8)


def layer_op_times(m: Any, hw: Any, S: torch.Tensor, f64: torch.dtype) -> list[torch.Tensor]:
    """compute_forward_pass("TTFT", S): ms per op for one layer, one sequence, one GPU."""
    h, E, k = m.d_model, m.num_experts, m.experts_per_token
    peak_cyc = hw.fp16_flops_per_cu_cycle * hw.num_cus  # int: FLOP/cycle
    freq = hw.freq_ghz
    eff = SeedEfficiency()

    def gemm_ms(flops: torch.Tensor, e: float) -> torch.Tensor:
        return flops.to(f64) * 1e-9 / (e * peak_cyc.to(f64)) * (1 / freq) * 1e3

    qkv = gemm_ms(6 * S * h * h, eff.qkv)
    attn = gemm_ms(2 * 2 * S * S * h, eff.attn)
    out = gemm_ms(2 * S * h * h, eff.outproj)
    cap = (k * S).to(f64) / E.to(f64)  # "expert_capacity" = k·S/E: one expert's tokens (B9)
    f = m.mlp_factor.to(f64)
    moe = 2 * 2 * cap * h.to(f64) * f * h.to(f64) * 1e-9 / (eff.moe * peak_cyc.to(f64)) * (1 / freq) * 1e3
    l2 = hw.l2_latency_cycles
    gemm_cycles = _floor(S * h * 4, l2)
    softmax_cycles = _floor(S * k * 12, 64)
    topk_cycles = S * k * (l2 + E * 8 + 128 + l2)
    topk = (1 / freq) * 1e3 * ((gemm_cycles + softmax_cycles + topk_cycles).to(f64) * 1e-9 / (hw.num_cus * 8))
    hbm_per_cycle = hw.hbm_bw_gbps / freq  # B4: bytes/cycle used as if bytes/ns
    payload = (S * h * ACT_BYTES * 2).to(f64)
    ln = payload * 1e-9 / (eff.layernorm * hbm_per_cycle) * 1e3
    rope = payload * 1e-9 / (eff.rope * hbm_per_cycle) * 1e3
    return [qkv, attn, out, moe, topk, rope, ln]  # in OPS order


def _tp_comm(
    N: torch.Tensor, lat: torch.Tensor | float, bw: torch.Tensor | float, payload: torch.Tensor, f64: torch.dtype
) -> torch.Tensor:
    """TP_communication(N, latency, BW, payload, 'ring') in ms: half a ring (B19)."""
    steps = (N - 1).to(f64) / N.to(f64)
    return lat * 1e-3 * steps * N.to(f64) + steps * payload.to(f64) * 1e-9 / bw * 1e3


def _pp_comm(
    lat: torch.Tensor | float, bw: torch.Tensor | float, payload: torch.Tensor, f64: torch.dtype
) -> torch.Tensor:
    return lat * 1e-3 + 1e3 * (payload.to(f64) * 1e-9 / bw)


def _ep_comm(
    payload: torch.Tensor,
    E: torch.Tensor,
    total_gpus: torch.Tensor,
    G: torch.Tensor,
    lat: torch.Tensor | float,
    bw_intra: torch.Tensor | float,
    bw_inter: torch.Tensor | float,
    f64: torch.dtype,
) -> torch.Tensor:
    c = torch.minimum(E, total_gpus)
    p_intra = G.to(f64) / c.to(f64)
    p_inter = 1 - p_intra
    steps = (c - G).to(f64) / c.to(f64)
    payload_intra = payload.to(f64) * p_intra
    payload_inter = payload.to(f64) * p_inter
    latency = 1e-3 * lat * steps * c.to(f64) / G.to(f64)
    return latency + 1e3 * steps * (1e-9 * (payload_intra / bw_intra + payload_inter / bw_inter))


def layer_comm_ms(
    m: _SeedModel,
    hw: SeedHardware,
    S: torch.Tensor,
    wt_bytes: int,
    tp: torch.Tensor,
    pp: torch.Tensor,
    dp: torch.Tensor,
    ep: torch.Tensor,
    f64: torch.dtype,
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """communication_forward_pass: ms per layer per sequence (x1.25 'FSDP', B23)."""
    tp_i, tp_o = _split(tp, tp=True)
    pp_i, pp_o = _split(pp, tp=False)
    dp_i, dp_o = _split(dp, tp=False)
    ep_i, ep_o = _split(ep, tp=False)
    gpus_in_config = (dp_i * dp_o) * (tp_i * tp_o) * (pp_i * pp_o)  # EP left out (B17)
    nodes = gpus_in_config // (pp_i * tp_i * dp_i)
    gpus_in_intra = gpus_in_config // nodes
    inter_bw = hw.nic_cards * hw.inter_bw_gbps * hw.inter_comm_eff  # 8*50*0.5
    intra_bw = hw.intra_bw_gbps * hw.intra_comm_eff  # 448*0.7
    intra_lat, inter_lat = hw.intra_latency_us, hw.inter_latency_us
    payload = S * m.d_model * wt_bytes  # wt_bpe used for an activation (B6)
    bw_inter = _floor(inter_bw, gpus_in_intra)  # float floor of a bandwidth (B5)
    zero = torch.zeros((), dtype=f64, device=S.device)
    pp_inter = torch.where(pp_o > 1, _pp_comm(inter_lat, bw_inter, payload, f64), zero)
    pp_intra = torch.where(pp_i > 1, _pp_comm(inter_lat, intra_bw, payload, f64), zero)
    pp_ms = _floor(torch.maximum(pp_inter, pp_intra), m.num_layers.to(f64))  # floors to 0 (B5)
    tp_intra = torch.where(tp_i > 1, _tp_comm(tp_i, intra_lat, intra_bw, payload // nodes, f64), zero)
    tp_inter = torch.where(tp_o > 1, _tp_comm(tp_o, inter_lat, bw_inter, payload // gpus_in_intra, f64), zero)
    ep_ms = torch.where(
        (ep_o > 1) | (ep_i > 1),
        _ep_comm(payload, m.num_experts, gpus_in_config, gpus_in_intra, inter_lat, intra_bw, inter_bw, f64),
        zero,
    )
    forward = pp_ms + 2 * (tp_intra + tp_inter) + 2 * ep_ms
    return (1 + FSDP_OVERHEAD) * forward, (pp_i * pp_o, (pp_i * pp_o) * (tp_i * tp_o) * (dp_i * dp_o))


def seed_param_count(m: Any, active: bool) -> Any:
    """model_base() + moe_params() (active: top-k experts): the seed's own parameter formulas."""
    h, n_l = m.d_model, m.num_layers
    base = (4 * h * h + 13 * h) * n_l + (m.vocab_size + m.learned_positions) * h
    experts = m.experts_per_token if active else m.num_experts
    return base + (n_l * experts) * (2 * m.mlp_factor * h * h)


class _SeedModel:
    """The seed's modelConfig fields, derived from any ModelSpec tensor view (dense: E = k = 1)."""

    def __init__(self, spec: Any, f64: torch.dtype) -> None:
        moe = spec.num_experts > 0
        self.d_model = spec.d_model
        self.num_layers = spec.num_layers
        self.vocab_size = spec.vocab_size
        self.learned_positions = spec.learned_positions
        self.num_experts = torch.where(moe, spec.num_experts, 1)
        self.experts_per_token = torch.where(moe, spec.experts_per_token, 1)
        width = torch.where(moe, spec.d_ff_expert, spec.d_ff)
        self.mlp_factor = width.to(f64) / spec.d_model.to(f64)  # mlp_factor (4 for the 1.8T model)


def evaluate(
    grid: Grid, efficiency: Any = None, fields: Any = None, breakdown: bool = True, metrics: Any = None
) -> Evaluation:
    """The seed's prefill (TTFT) model over the whole grid; decode is its constant 1 ms.
    ``breakdown=False`` leaves out the per-op ``layer_op_time``; ``metrics`` is accepted for the
    conventions' common signature and every metric is computed (the seed model is one small pass).

    The seed's own efficiencies (SeedEfficiency) apply; ``efficiency`` overrides and ``fields``
    (gradient leaves) are rejected."""
    if fields:
        raise SpecError("convention='seed' has no sensitivities (fields=); use convention='roofline'")
    if efficiency:
        raise SpecError(
            f"convention='seed' uses the seed's own efficiencies; efficiency={dict(efficiency)} "
            "applies to convention='roofline' only"
        )
    f64 = grid.dtype
    missing = [h.name for h in grid.values["hardware"] if h.seed is None]
    if missing:
        raise SpecError(
            f"convention='seed' needs hardware with the seed's raw [seed] table; "
            f"{missing} have none (use hardware='mi300-seed' or convention='roofline')"
        )
    touched = [n for n in grid.values if n.removesuffix("_scale") in HARDWARE_FIELDS]
    if touched:
        raise SpecError(
            f"convention='seed' reads the seed's raw hardware table; what-if hardware inputs "
            f"{touched} apply to convention='roofline' only"
        )
    if grid.values.get("cp", (1,)) != (1,) or "chunk_size" in grid.values:
        raise SpecError(
            "convention='seed' has no context parallelism or chunked prefill; use cp=1 and no "
            "chunk_size, or convention='roofline'"
        )
    if grid.values["batch"] == ("max",):
        raise SpecError("batch='max' needs a memory model; convention='seed' has none (use 'roofline')")
    i64 = torch.int64
    m = _SeedModel(grid.spec("model", int_dtype=i64), f64)
    hw = grid.spec("hardware", attr="seed", int_dtype=i64)
    S = grid.axis("prompt_len", i64)
    T = grid.axis("output_len", i64)
    B = grid.axis("batch", i64)
    tp, pp, dp, ep = (grid.axis(n, i64) for n in ("tp", "pp", "dp", "ep"))

    ops = layer_op_times(m, hw, S, f64)
    compute = ops[0] + ops[1] + ops[2] + ops[3] + ops[6] + ops[5] + ops[4]  # seed's sum order
    # the seed feeds wt_bpe (an int, 2) into the activation payload; keep it integral
    comm, (pp_deg, P) = layer_comm_ms(m, hw, S, WT_BPE, tp, pp, dp, ep, f64)
    n_l = m.num_layers
    micro = pp_deg  # num_microbatches overwritten with the pp degree (B18)
    computetime = _floor(compute, (P * n_l).to(f64))  # always 0 here (B5)
    bubble = 1 / micro.to(f64) * (pp_deg - 1).to(f64) * (computetime + comm)
    bubble = torch.where(pp_deg > 1, bubble, torch.zeros((), dtype=f64, device=S.device))
    per_layer = _floor(compute, P.to(f64)) + comm + bubble
    ttft_ms = (B * n_l).to(f64) * per_layer

    num_gpus = tp * pp * dp * ep
    world = grid.axis("world_size", i64) if "world_size" in grid.values else hw.gpus_per_node * hw.number_of_nodes
    seed_b = grid.place("weight_dtype", _seed_bytes(grid.values["weight_dtype"]), f64)
    params = seed_param_count(m, active=False)
    kv = seed_b * B.to(f64) * (S + T).to(f64) * m.d_model.to(f64) * n_l.to(f64) * 2
    total_bytes = seed_b * params + kv
    ttft = ttft_ms * 1e-3
    tpot = torch.full((), DECODE_MS * 1e-3, dtype=f64, device=S.device)
    e2e = ttft + tpot * T.to(f64)  # the seed header's latency = ttft + tpot·T_out (B7)
    values = {
        "ttft": ttft,
        "tpot": tpot,
        "e2e_latency": e2e,
        "tokens_per_s_per_gpu": (B * T).to(f64) / (e2e * num_gpus.to(f64)),
        "tokens_per_s_per_user": 1 / tpot,
        "memory_per_gpu": total_bytes / num_gpus.to(f64),
        "min_gpus_for_capacity": torch.ceil(total_bytes / (8 * 24 * 1e9)),  # gpu_capacity (B30)
        "num_gpus": num_gpus.to(f64),
        "layer_comm_time": comm * 1e-3,
        "layer_bubble_time": bubble * 1e-3,
        "layer_time": per_layer * 1e-3,
    }
    if breakdown:
        values["layer_op_time"] = torch.stack(torch.broadcast_tensors(*ops), dim=-1) * 1e-3
    reason = combine({Reason.WORLD_SIZE: num_gpus == world}, grid.shape, S.device)
    return Evaluation(values=values, reason=reason, trailing={"layer_op_time": ("op",)}, trailing_coords={"op": OPS})
