# ruff: noqa: E501, UP039 - the notebook's own lines and class syntax, kept as written
"""The seed notebook's own prefill (TTFT) model as a scalar, one-configuration-at-a-time Python loop.

This is the notebook's code (shared/seed/000_021ebbe46a36e6db.txt, cells In[20] modelConfig, In[77]
GpuConfig / shardConfig / communication_config / algoConfig, the TP/PP/EP_communication cell,
compute_forward_pass, communication_forward_pass, pipeline_bubble_time_forward, In[73] hw_dict /
algo_dict, In[72] return_key, In[78] ttft_time), copied with only these changes:

- ``print`` calls removed (they would dominate the timing); ``verbose`` printing dropped;
- ``assert(0)`` at the end of ttft_time's layout loop removed (as tensorperf's seed convention does);
- ttft_time's loop body is applied to one (batch, seqlen, dp, pp, tp, ep) configuration per call
  (:func:`ttft_one`): the whole notebook pipeline runs per configuration, as a scalar loop over a
  grid does; :func:`ttft_time` keeps the notebook's shape (one call per (batch, seqlen), a loop over
  the layouts inside, compute hoisted out of the loop);
- unused methods/fields (moe_topk gating doc comments, set/get of bandwidth tables, print helpers)
  left out.

Every formula, operation order, integer and float floor division (``//``) and quirk is the
notebook's; tensorperf's ``convention="seed"`` claims to reproduce it bit for bit, which
benchmarks/scale.py asserts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


# ---------------------------------------------------------------- In[20]: model parameters
@dataclass
class modelConfig:
    num_layers: int = 120
    hidden_dim: int = 10752
    vocab_size: int = 100256
    mlp_factor: int = 4
    context_len: int = 16384
    output_tokens: int = 1024
    total_experts: int = 16
    active_experts: int = 4
    fsdp_enable: int = 1
    fsdp_factor: float = 0.15
    batch_size: int = 16
    num_microbatches: int = 4
    wt_bpe: int = 2
    act_bpe: int = 2
    kv_bpe: int = 2

    def qkv_flops(self, seqlen):
        return 6 * seqlen * self.hidden_dim * self.hidden_dim

    def attn_flops(self, seqlen):
        return 2 * 2 * seqlen * seqlen * self.hidden_dim

    def outproj_flops(self, seqlen):
        return 2 * seqlen * self.hidden_dim * self.hidden_dim

    def rope_payload(self, seqlen):
        return seqlen * self.hidden_dim * self.act_bpe

    def moe_flops(self, seqlen):
        expert_capacity = self.active_experts * seqlen / self.total_experts
        return 2 * 2 * expert_capacity * self.hidden_dim * self.mlp_factor * self.hidden_dim  # 2 FFN

    def layernorm_payload(self, seqlen):
        return seqlen * self.hidden_dim * self.act_bpe

    def moe_topk_softmax(self, l2_latency, seqlen):
        topk_cycles = seqlen * self.active_experts * (l2_latency + self.total_experts * 8 + 128 + l2_latency)
        gemm_cycles = seqlen * self.hidden_dim * 4 // l2_latency
        softmax_cycles = seqlen * self.active_experts * 12 // 64
        return (gemm_cycles, softmax_cycles, topk_cycles)


# ---------------------------------------------------------------- In[77]: hardware, sharding, comm
@dataclass
class GpuConfig:
    fp16_flops: int
    num_cus: int
    fp32_flops: int
    fma_flops: int
    trans_flops: int
    freq: float
    hbm_bw: float
    hbm_capacity: int
    gpus_per_node: int
    number_of_nodes: int
    l2_latency: int
    hbm_latency: int
    nic_cards: int
    intracommEff: float
    intercommEff: float
    topology: str
    intra_bw: float
    inter_bw: float
    intra_latency: int
    inter_latency: int
    reduction_bw: dict
    gather_bw: dict
    scatter_bw: dict
    all2all_bw: dict

    def f16flops(self):
        return self.fp16_flops * self.num_cus


@dataclass
class shardConfig:
    dp_intra_degree: int = 1
    pp_intra_degree: int = 1
    tp_intra_degree: int = 1
    ep_intra_degree: int = 1
    dp_inter_degree: int = 1
    pp_inter_degree: int = 1
    tp_inter_degree: int = 1
    ep_inter_degree: int = 1

    def tp_parallel_degree(self):
        return self.tp_intra_degree * self.tp_inter_degree

    def pp_parallel_degree(self):
        return self.pp_intra_degree * self.pp_inter_degree

    def dp_parallel_degree(self):
        return self.dp_intra_degree * self.dp_inter_degree

    def ep_parallel_degree(self):
        return self.ep_intra_degree * self.ep_inter_degree

    def parse_shard(self, _str):
        shard_num = []
        shard_str = []
        substr_num = []
        substr_char = []
        for i in range(len(_str)):
            if _str[i].isnumeric():
                if len(substr_char) == 2:
                    shard_str.append("".join(substr_char))
                    substr_char.clear()
                substr_num.append(_str[i])
            elif _str[i].isalpha():
                if len(substr_num) >= 1:
                    shard_num.append(int("".join(substr_num)))
                    substr_num.clear()
                substr_char.append(_str[i])
        if len(substr_num) >= 1:
            shard_num.append(int("".join(substr_num)))
        if len(substr_char) >= 1:
            shard_str.append("".join(substr_char))
        return (shard_str, tuple(shard_num))

    def reset(self):
        self.dp_intra_degree = 1
        self.pp_intra_degree = 1
        self.tp_intra_degree = 1
        self.ep_intra_degree = 1
        self.dp_inter_degree = 1
        self.pp_inter_degree = 1
        self.tp_inter_degree = 1
        self.ep_inter_degree = 1

    def setup_configuration(self, key: str, value: tuple):
        (shard_key, shard_value) = self.parse_shard(key)
        assert shard_value == value
        for idx, item in enumerate(shard_key):
            if item == "dp":
                (self.dp_intra_degree, self.dp_inter_degree) = (
                    (1, shard_value[idx]) if shard_value[idx] <= 8 else (shard_value[idx] // 8, 8)
                )
            elif item == "pp":
                (self.pp_intra_degree, self.pp_inter_degree) = (
                    (1, shard_value[idx]) if shard_value[idx] <= 8 else (shard_value[idx] // 8, 8)
                )
            elif item == "tp":
                (self.tp_intra_degree, self.tp_inter_degree) = (
                    (shard_value[idx], 1) if shard_value[idx] <= 8 else (8, shard_value[idx] // 8)
                )
            elif item == "ep":
                (self.ep_intra_degree, self.ep_inter_degree) = (
                    (1, shard_value[idx]) if shard_value[idx] <= 8 else (shard_value[idx] // 8, 8)
                )
            else:
                raise ValueError(f" unsupported parallelism configuration given {item} supported = ep,tp,pp,dp")


@dataclass
class communication_config:
    hidden_dim: int
    context_len: int
    batch_size: int
    bpe: int
    inter_bw: int
    intra_bw: int
    inter_nodes: int
    intra_nodes: int
    inter_latency: int
    intra_latency: int
    topology: str = "ring"


@dataclass
class algoConfig:
    mode: str
    qkv_gemm_eff: float
    attn_gemm_eff: float
    output_gemm_eff: float
    moe_gemm_eff: float
    ln_eff: float
    rope_eff: float
    topk_gating_eff: float
    gelu_eff: float


# ---------------------------------------------------------------- communication / compute cell
def TP_communication(N: int, latency: float, BW_LINK: float, payload: int, topology: str = "ring"):
    factor = 1
    if topology == "ring":
        num_steps = factor * (N - 1) / N
    elif topology == "Tree":
        num_steps = factor * math.log2(N)
    latency_time = latency * 1e-3 * num_steps * N
    payload_time = (num_steps * payload * 1e-9 / (BW_LINK)) * 1e3  # ms
    return latency_time + payload_time


def PP_communication(latency: float, BW_LINK: float, payload: int):
    payload_time = 1e3 * ((payload * 1e-9) / BW_LINK)
    return (latency * 1e-3) + payload_time


def EP_communication(
    payload: int,
    num_experts: int,
    total_gpus: int,
    gpus_per_node: int,
    latency_inter: int,
    BWIntra_LINK: int,
    BWInter_LINK: int,
):
    compute_experts = min(num_experts, total_gpus)
    prob_intra_ep = gpus_per_node / compute_experts
    prob_inter_ep = 1 - prob_intra_ep
    communication_steps = (compute_experts - gpus_per_node) / compute_experts
    payload_intra = payload * prob_intra_ep
    payload_inter = payload * prob_inter_ep
    latency = 1e-3 * latency_inter * communication_steps * compute_experts / gpus_per_node
    payload_latency = (
        1e3 * communication_steps * (1e-9 * ((payload_intra / BWIntra_LINK) + (payload_inter / BWInter_LINK)))
    )
    return latency + payload_latency


def compute_forward_pass(
    mode: str,
    seqlen: int,
    algoCfg: algoConfig,
    modelCfg: modelConfig,
    hwCfg: GpuConfig,
    layer_dict: dict,
    verbose: bool = False,
):
    if mode == "TTFT":  # prefill
        qkv_time = (
            modelCfg.qkv_flops(seqlen) * 1e-9 / (algoCfg.qkv_gemm_eff * hwCfg.f16flops()) * (1 / hwCfg.freq) * 1e3
        )
        layer_dict["qkv_time"] = qkv_time
        attn_time = (
            modelCfg.attn_flops(seqlen) * 1e-9 / (algoCfg.attn_gemm_eff * (hwCfg.f16flops())) * (1 / hwCfg.freq) * 1e3
        )
        layer_dict["attn_time"] = attn_time
        out_time = (
            modelCfg.outproj_flops(seqlen)
            * 1e-9
            / (algoCfg.output_gemm_eff * (hwCfg.f16flops()))
            * (1 / hwCfg.freq)
            * 1e3
        )
        layer_dict["outproj_time"] = out_time
        moe_time = (
            modelCfg.moe_flops(seqlen) * 1e-9 / (algoCfg.moe_gemm_eff * hwCfg.f16flops()) * (1 / hwCfg.freq) * 1e3
        )
        gemm_cycles, softmax_cycles, topk_cycles = modelCfg.moe_topk_softmax(hwCfg.l2_latency, seqlen)
        topk_softmax_moe = (
            (1 / hwCfg.freq) * 1e3 * ((gemm_cycles + softmax_cycles + topk_cycles) * 1e-9 / (hwCfg.num_cus * 8))
        )
        layer_dict["moe_time"] = moe_time
        layer_dict["topk_softmax_time"] = topk_softmax_moe
        hbm_bw_gfxclk = hwCfg.hbm_bw / hwCfg.freq
        ln_time = (modelCfg.layernorm_payload(seqlen) * 2) * 1e-9 / (algoCfg.ln_eff * hbm_bw_gfxclk) * 1e3
        layer_dict["ln_time"] = ln_time
        rope_time = (modelCfg.rope_payload(seqlen) * 2) * 1e-9 / (algoCfg.rope_eff * hbm_bw_gfxclk) * 1e3
        layer_dict["rope_time"] = rope_time
        compute_time = qkv_time + attn_time + out_time + moe_time + ln_time + rope_time + topk_softmax_moe
        return compute_time
    else:
        return 1


def fsdp_communication_overhead():
    return 0.25


def communication_pp_forward(
    payload: int, latency: int, bw_inter: int, inter_nodes: int, bw_intra: int, intra_nodes: int
):
    pp_inter_time = PP_communication(latency, bw_inter, payload) if inter_nodes > 1 else 0
    pp_intra_time = PP_communication(latency, bw_intra, payload) if intra_nodes > 1 else 0
    return max(pp_inter_time, pp_intra_time)


def communication_forward_pass(
    shardCfg: shardConfig, comCfg: communication_config, gpus_per_node: int, num_nodes: int, modelCfg: modelConfig
):
    assert comCfg is not None
    gpus_in_config = shardCfg.dp_parallel_degree() * shardCfg.tp_parallel_degree() * shardCfg.pp_parallel_degree()
    nodes_in_config = gpus_in_config // (shardCfg.pp_intra_degree * shardCfg.tp_intra_degree * shardCfg.dp_intra_degree)
    gpus_in_intra = gpus_in_config // nodes_in_config
    pp_inter_parallelism = shardCfg.pp_inter_degree
    pp_intra_parallelsim = shardCfg.pp_intra_degree
    bw_inter = comCfg.inter_bw // gpus_in_intra
    bw_intra = comCfg.intra_bw
    payload = comCfg.context_len * comCfg.hidden_dim * comCfg.bpe
    pp_communication_time = communication_pp_forward(
        payload, comCfg.inter_latency, bw_inter, pp_inter_parallelism, bw_intra, pp_intra_parallelsim
    )
    pp_communication_time = pp_communication_time // modelCfg.num_layers
    bw_intra = comCfg.intra_bw
    tp_intra_time = (
        TP_communication(shardCfg.tp_intra_degree, comCfg.intra_latency, bw_intra, payload // nodes_in_config, "ring")
        if shardCfg.tp_intra_degree > 1
        else 0
    )
    bw_inter = comCfg.inter_bw // (gpus_in_intra)
    tp_inter_time = (
        TP_communication(shardCfg.tp_inter_degree, comCfg.inter_latency, bw_inter, (payload // gpus_in_intra), "ring")
        if shardCfg.tp_inter_degree > 1
        else 0
    )
    tp_communication_time = tp_intra_time + tp_inter_time
    ep_communication_time = 0
    bw_intra = comCfg.intra_bw
    bw_inter = comCfg.inter_bw
    if shardCfg.ep_inter_degree > 1 or shardCfg.ep_intra_degree > 1:
        ep_communication_time = EP_communication(
            payload, modelCfg.total_experts, gpus_in_config, gpus_in_intra, comCfg.inter_latency, bw_intra, bw_inter
        )
    forward_com_time = pp_communication_time + 2 * tp_communication_time + 2 * ep_communication_time
    forward_com_time = (1 + fsdp_communication_overhead()) * forward_com_time
    return forward_com_time


def pipeline_bubble_time_forward(
    shardCfg: shardConfig, comCfg: communication_config, compute_time: float, hwCfg: GpuConfig, modelCfg: modelConfig
):
    num_microbatches = modelCfg.num_microbatches
    comtime = communication_forward_pass(shardCfg, comCfg, hwCfg.gpus_per_node, hwCfg.number_of_nodes, modelCfg)
    bubble_time = 1 / num_microbatches * (shardCfg.pp_parallel_degree() - 1) * (compute_time + comtime)
    return bubble_time


# ---------------------------------------------------------------- In[73]: mi300 and prefill efficiencies
hw_dict = {
    "mi300": {
        "fp16_flops": 2048,
        "fp32_flops": 128,
        "fma_flops": 256,
        "freq": 1.3,
        "hbm_bw": 4200,
        "num_cus": 308,
        "trans_flops": 16,
        "hbm_capacity": 160,
        "gpus_per_node": 8,
        "number_of_nodes": 8,
        "topology": "ring",
        "intracommEff": 0.7,
        "intercommEff": 0.5,
        "l2_latency": 320,
        "hbm_latency": 640,
        "intra_bw": 7 * 64,
        "nic_cards": 8,
        "inter_bw": 50,
        "intra_latency": 1,
        "inter_latency": 2,
        "gather_bw": {},
        "scatter_bw": {},
        "all2all_bw": {},
        "reduction_bw": {},
    },
}
algo_dict = {
    "ttft": {
        "qkv_gemm_eff": 0.85,
        "attn_gemm_eff": 0.8,
        "output_gemm_eff": 0.85,
        "moe_gemm_eff": 0.75,
        "ln_eff": 0.65,
        "rope_eff": 0.8,
        "topk_gating_eff": 0.6,
        "gelu_eff": 0.7,
    },
    "tpot": {},
}
prefillCfg = algo_dict["ttft"]


# ---------------------------------------------------------------- In[72]: layout keys
def return_key(inp: tuple):
    dp, pp, tp, ep = inp
    val = ()
    temp_list = list(val)
    key_str = " "
    if tp > 1:
        key_str += "tp" + f"{tp}"
        temp_list.append(tp)
    if pp > 1:
        key_str += "pp" + f"{pp}"
        temp_list.append(pp)
    if dp > 1:
        key_str += "dp" + f"{dp}"
        temp_list.append(dp)
    if ep > 1:
        key_str += "ep" + f"{ep}"
        temp_list.append(ep)
    val = tuple(temp_list)
    return (key_str, val)


# ---------------------------------------------------------------- In[78]: ttft_time
def ttft_time(batch_size: int, seqlen: int, shard_cfg: dict):
    """The notebook's ttft_time (assert(0) and prints removed): ms per layout key."""
    modelCfg = modelConfig()
    hwCfg = GpuConfig(**hw_dict["mi300"])
    ttftCfg = algoConfig("ttft", **prefillCfg)
    shardCfg = shardConfig()
    ttft_dict = {}
    layercompute_dict = {"qkv_time": 0, "attn_time": 0, "outproj_time": 0, "moe_time": 0, "ln_time": 0, "rope_time": 0}
    comCfg = communication_config(
        modelCfg.hidden_dim,
        seqlen,
        batch_size,
        modelCfg.wt_bpe,
        hwCfg.nic_cards * hwCfg.inter_bw * hwCfg.intercommEff,
        hwCfg.intra_bw * hwCfg.intracommEff,
        hwCfg.number_of_nodes,
        hwCfg.gpus_per_node,
        hwCfg.inter_latency,
        hwCfg.intra_latency,
        "ring",
    )
    computetime_spent = compute_forward_pass("TTFT", seqlen, ttftCfg, modelCfg, hwCfg, layercompute_dict, False)
    for key, val in shard_cfg.items():
        shardCfg.setup_configuration(key, val)
        modelCfg.num_microbatches = shardCfg.pp_inter_degree * shardCfg.pp_intra_degree
        commtime_spent = communication_forward_pass(
            shardCfg, comCfg, hwCfg.gpus_per_node, hwCfg.number_of_nodes, modelCfg
        )
        parallelism_degree = (
            shardCfg.pp_parallel_degree() * shardCfg.tp_parallel_degree() * shardCfg.dp_parallel_degree()
        )
        computetime = computetime_spent // (parallelism_degree * modelCfg.num_layers)
        pipeline_time = (
            pipeline_bubble_time_forward(shardCfg, comCfg, computetime, hwCfg, modelCfg)
            if (shardCfg.pp_inter_degree * shardCfg.pp_intra_degree) > 1
            else 0
        )
        time_batch_size_layer = computetime_spent // (parallelism_degree) + commtime_spent + pipeline_time
        time = batch_size * modelCfg.num_layers * time_batch_size_layer
        ttft_dict[key] = {key: shard_cfg[key], "latency": time}
        shardCfg.reset()
    return ttft_dict


def ttft_one(batch_size: int, seqlen: int, dp: int, pp: int, tp: int, ep: int) -> float:
    """ttft_time for one configuration: the notebook's whole pipeline for a single layout, in ms."""
    key, val = return_key((dp, pp, tp, ep))
    return ttft_time(batch_size, seqlen, {key: val})[key]["latency"]
