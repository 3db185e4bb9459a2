"""Fidelity: predict published measurements and report the relative error.

``load_measurements(path)`` reads a CSV in the schema of ``data/measurements.csv`` (one published
number per row, with the configuration that produced it; ``data/measurements-2.csv`` has the same
schema); ``map_rows(rows)`` turns each row into a grid point (or a reason to skip it);
``predict(rows)`` evaluates every mapped row in a few zipped sweeps (``sweep_groups``: one per batch
kind - the runtime's choice ``batch="max"`` or a stated batch - and combination of the optional
inputs ``request_rate``, ``num_requests``, ``isl_range_ratio``, ``osl_range_ratio`` that the rows
state; a row that states none of them never gets one) and returns the report; ``summary(report)``
gives the median and p90 |error| by metric, source, hardware and model family.

Report columns: ``id, metric, measured, predicted, rel_error, status`` with
``rel_error = (predicted - measured) / measured`` and ``status`` = ``ok`` or ``skipped: <reason>``;
then context columns (``unit``, ``hardware``, ``model``, ``mode``, ``source``, the tensorperf
``variable`` compared, and the mapped ``tp, pp, dp, ep, batch``; ``batch`` is the concurrency the
model used, i.e. the runtime's choice for ``batch="max"`` rows; ``request_rate, num_requests,
isl_range_ratio, osl_range_ratio``, NaN where the row does not state them; and the serving
``stack`` id the row maps to). ``measured`` and ``predicted`` are in the row's own unit;
everything in between is SI (ms -> s at the edges only).

Mapping rules (each is a decision about what the benchmark ran; see docs/validation.md):

Model and hardware
    ``model`` is a preset id (aliases: ``llama-3-70b``/``llama-3.0-70b`` -> ``llama-3.3-70b``,
    ``deepseek-r1``/``deepseek-r1-0528``/``deepseek-v3.1`` -> ``deepseek-v3``: same dimensions);
    ``hardware`` a hardware preset id. Unknown ids are skipped with the reason.

Dtypes
    ``weight_dtype`` as given (fp16 stays fp16; fp8 and fp4 select the fp8/fp4 math rates). Empty:
    ``bf16`` where the notes say the checkpoint's default precision was used (vLLM CI rows), else the
    row is skipped (MLPerf logs do not state it). ``kv_dtype`` as given; empty: ``fp8`` for fp8 and
    fp4 weights - the ModelOpt FP8/NVFP4 checkpoints TensorRT-LLM benchmarks quantize the KV cache to
    FP8, and every row of these sources that states its KV dtype for fp8/fp4 weights says fp8 - else
    the weight dtype (fp16/bf16 engines keep the cache in the activation format).

Layout (N = num_gpus, pp = row pp or 1)
    ``attention_dp`` true (TensorRT-LLM ``enable_attention_dp``, SGLang/DeepSeek DP attention):
    attention runs as N/pp data-parallel replicas, so ``tp=1, dp=N/pp``; experts over the same GPUs
    with ``ep`` = row ep, or 1 when not stated (TensorRT-LLM's default MoE mapping is tensor-parallel
    experts, ep=1 x etp=N). The row's tp column is then the world size of the attention group, not
    a TP degree (e.g. "TP8" in the perf-overview tables). Otherwise ``tp`` = row tp, ``dp`` = row dp
    or 1, ``ep`` = row ep or 1. A layout that is not stated (empty tp) or whose tp·pp·dp differs from
    ``num_gpus`` is skipped.

Batch and metric, by mode (``variable`` is the tensorperf metric compared; ``*_total`` metrics are
multiplied by ``num_gpus``; ``total_tok_*`` metrics count input and output tokens and are the output
throughput times (E[ISL] + E[OSL]) / E[OSL], the mean lengths under the range ratio - the per-row
``factor`` of ``map_rows``)
    Continuous batching (``max_throughput``, ``concurrency``, ``server``): output throughput ->
    ``serving_tokens_per_s_per_gpu``, ``ttft_mean_ms`` -> ``serving_ttft``, ``tpot_mean_ms`` (also a
    mean inter-token latency) -> ``serving_tpot``, ``e2e_latency_ms`` -> ``serving_e2e_latency``,
    ``tok_s_per_user`` -> ``serving_tokens_per_s_per_user``. What the notes state about the requests
    is passed to the sweep, and only where stated:
    - ``request_rate``: "QPS=<x>" (Triton table) -> ``request_rate = x`` (Poisson arrivals);
      "QPS=INF" (all sent at once) -> no request rate, ``batch="max"``.
    - ``num_requests``: "all <N> requests queued at once", "num_requests=<N>" (trtllm-bench offline
      runs) or "<N> requests total" (Triton: 500 requests per rate) -> ``num_requests = N``.
    - ``isl_range_ratio = osl_range_ratio = r``: "random-range-ratio <r>" (benchmark_serving's
      random dataset, as every InferenceX row states: lengths uniform in [0.8 L, L]); r must be in
      (0, 1].
    ``max_throughput`` (trtllm-bench offline: all requests queued, in-flight batching, the runtime
    picks the batch): ``batch="max"`` with ``max_num_seqs = 4096`` per scheduler (4096·dp with
    attention DP, where every rank schedules its own requests), and ``num_requests`` where stated:
    in the notes, else, for a TensorRT-LLM perf-overview row, the count the page's dataset table
    gives for the row's ISL/OSL (:data:`PERF_OVERVIEW_NUM_REQUESTS`).
    ``concurrency`` (a stated number of requests in flight, in-flight batching; InferenceX runs at
    ``max-concurrency`` with an unlimited request rate): ``batch`` = concurrency, a closed loop; no
    request rate. InferenceX rows (the notes say "InferenceX") run ``num_requests`` = 10 x
    concurrency with ``queue="client"``: its launch scripts' ``--num-prompts $((CONC * 10))``, held
    and timed from sending by benchmark_serving (:data:`INFERENCEX_PROMPTS_PER_CONCURRENCY`). Where
    the notes say "static batching" (TensorRT-LLM v0.9.0 gptSessionBenchmark), the row is mapped as
    ``fixed_batch`` instead.
    ``server`` (an open loop: "request rate QPS=<x>", "<N> requests total"): ``request_rate`` and
    ``num_requests`` as above, ``batch`` = the stated cap on requests in flight, else ``"max"``
    with ``max_num_seqs`` as for ``max_throughput`` (what fits, the server's cap). A ``server`` row
    without "QPS=" in its notes (MLPerf Server: a target QPS over a dataset) is skipped.
    ``fixed_batch`` (static batching: gptSessionBenchmark, the H200/Falcon blogs, vLLM latency
    tests; the whole batch is prefilled, then decoded to the end): output throughput ->
    ``tokens_per_s_per_gpu`` (output tokens / total batch latency, prefill included: the sources
    define it as output_len·batch/total_latency/tp), ``ttft_ms`` -> ``ttft_max`` (a static engine
    emits every first token at the end of the batch's context phase), ``e2e_latency_ms`` ->
    ``e2e_latency``, ``tpot_mean_ms`` -> ``tpot``, ``tok_s_per_user`` -> ``tokens_per_s_per_user``.
    ``latency`` (batch-1 first-token latency of a static engine, output length 1): ``ttft_ms`` ->
    ``ttft`` at the stated batch, 1 when none is stated.
    ``disagg_prefill`` (prefill-only instances): ``prefill_input_tok_s_per_gpu`` ->
    ``prefill_tokens_per_s_per_gpu``; without a stated batch, ``dp·ceil(16384/ISL)`` requests (16,384
    prompt tokens per rank and forward, as the rows that state it say); output_len 1 when empty.
    ``disagg_decode`` (decode-only instances): ``decode_output_tok_s_per_gpu`` ->
    ``decode_tokens_per_s_per_gpu``, ``tok_s_per_user`` -> ``tokens_per_s_per_user``, at the stated
    batch, or for throughput ``batch="max"`` (memory-bound batch; the source saturated decode) when
    none is given (a per-user speed without a batch is skipped);
    an empty OSL becomes 1, i.e. one decode step at a context of ISL (the rows give "KV length").
    Both disaggregated modes then take what the notes add (:mod:`tensorperf.analysis.disagg_rows`):
    the physical experts with EPLB's redundant copies (``num_experts``, an optional zipped input),
    whole requests per attention rank, the deployment's rate where the notes give both pools, and
    skip reasons naming what the row lacks (weight offload, a memory shortfall).

Serving stack (``stack``, a zipped per-row input: :data:`STACK_IDS`; docs/model.md §10.4)
    From the row's ``framework`` and ``framework_version`` (both optional columns; see
    :func:`stack_of`): TensorRT-LLM whose version says MLPerf (submission code) -> ``ideal``; whose
    version says Triton (the tensorrtllm_backend behind Triton Inference Server: a request passes the
    ensemble's Python tokenizer models before and after the engine) -> ``trtllm-triton``; whose
    version says "PyTorch" (the PyTorch backend/workflow, also 0.20) -> ``trtllm-1``; whose first
    version number is 0.x (TensorRT engines and the C++ runtime: gptSessionBenchmark, trtllm-bench,
    v0.5-v0.14) -> ``trtllm-0``; 1.x (also release candidates, e.g. the
    ``release:1.2.0rc6`` images) or a 2025 main-branch build or commit (the docs of the PyTorch
    workflow) -> ``trtllm-1``; a version not stated -> ``ideal``, except an InferenceX row (its launch
    scripts serve with ``trtllm-serve --backend=pytorch``, SemiAnalysisAI/InferenceX@843c625
    benchmarks/single_node/fixed_seq_len/dsr1_*_trt.sh; every InferenceX TensorRT-LLM row that records
    its image records a 1.x release) -> ``trtllm-1``. SGLang -> ``sglang``, or
    ``sglang-rocm`` for a ROCm image or an AMD GPU (another build: AITER kernels, HIP graphs); vLLM ->
    ``vllm``; ATOM (AMD) -> ``atom``; anything else (DeepSeek internal, RTP-LLM, no framework
    stated) -> ``ideal``. ``predict(rows, stacks={id: spec})`` evaluates the rows of a stack id with
    another spec (a StackSpec, a preset id or a .toml path), e.g. ``ideal`` for all of them.

Speculative decoding (``speculative`` not empty; :mod:`tensorperf.analysis.speculative_rows`)
    ``speculative = "mtp"`` rows map to ``speculative="mtp"`` with ``spec_tokens`` = the draft length
    the notes state, or for InferenceX rows the one InferenceX's launch script for that engine sets
    (SGLang: 2 on NVIDIA, 3 on AMD; TensorRT-LLM: 3, 1 with attention DP; ATOM: 3 for fp8, 1 for
    fp4), and ``acceptance`` = the one the notes state, else the model preset's sourced
    ``mtp_acceptance`` (DeepSeek-V3: 0.875; docs/model.md §3.14). A row lacking the method, the draft
    length or an acceptance is skipped with a reason naming what it lacks.

Skipped (``status = "skipped: <reason>"``)
    speculative rows lacking a method, draft length or acceptance (above); p99 metrics
    (tails of an arrival process, the model gives means); ``*_ambiguous`` metrics (per GPU or total
    not stated); ``production`` mode (mixed traffic with KV-cache hits); ``server`` rows without a
    stated request rate; empty ISL/OSL (dataset workloads); a range ratio outside (0, 1] or a
    non-positive rate; unknown presets (e.g. Mistral-7B), units or metric/mode pairs; non-positive
    values; unstated dtypes, layouts or batches; and points the model finds infeasible
    (``skipped: infeasible (<tensorperf.describe(reason)>)``, e.g. ``memory``, or ``overloaded``
    where the request rate reaches the deployment's capacity), never an exception.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
import torch

from tensorperf.analysis import disagg_rows, speculative_rows
from tensorperf.catalog import presets
from tensorperf.engine.conventions import CONVENTIONS
from tensorperf.engine.masks import describe
from tensorperf.engine.metrics import METRICS
from tensorperf.run.inputs import build_grid, check_efficiency
from tensorperf.units import MS
from tensorperf.validation import SpecError

REQUIRED_COLUMNS = (
    "id",
    "hardware",
    "num_gpus",
    "model",
    "weight_dtype",
    "kv_dtype",
    "tp",
    "pp",
    "ep",
    "dp",
    "attention_dp",
    "batch",
    "isl",
    "osl",
    "mode",
    "metric",
    "value",
    "unit",
    "speculative",
    "source",
)
NUMERIC_COLUMNS = ("num_gpus", "tp", "pp", "ep", "dp", "batch", "isl", "osl", "value")
REPORT_COLUMNS = ("id", "metric", "measured", "predicted", "rel_error", "status")
CONTEXT_COLUMNS = (
    "unit",
    "hardware",
    "model",
    "mode",
    "source",
    "variable",
    "weight_dtype",
    "kv_dtype",
    "isl",
    "osl",
    "tp",
    "pp",
    "dp",
    "ep",
    "batch",
    "request_rate",
    "num_requests",
    "queue",
    "isl_range_ratio",
    "osl_range_ratio",
    "stack",
    "recipe",
    "ep_overlap",
    "ep_a2a",
)

# a row's unit -> SI factor (the only unit conversions of the module)
UNIT_TO_SI: Mapping[str, float] = {"ms": MS, "s": 1.0, "tok/s": 1.0, "tok/s/gpu": 1.0, "tok/s/user": 1.0}

MODEL_ALIASES: Mapping[str, str] = {
    "llama-3-70b": "llama-3.3-70b",
    "llama-3.0-70b": "llama-3.3-70b",
    "deepseek-r1": "deepseek-v3",
    "mistralai/mistral-7b-v0.1": "mistral-7b",
    "deepseek-r1-0528": "deepseek-v3",
    "deepseek-v3.1": "deepseek-v3",
}

# trtllm-bench's scheduler cap on requests in flight (per scheduler, i.e. per attention replica)
MAX_NUM_SEQS = 4096
# disaggregated prefill without a stated batch: prompt tokens per rank per forward
PREFILL_TOKENS_PER_RANK = 16384

# metric -> (tensorperf variable, multiply by num_gpus, multiply by (E[ISL] + E[OSL]) / E[OSL])
_SERVING = {
    "output_tok_s_total": ("serving_tokens_per_s_per_gpu", True, False),
    "output_tok_s_per_gpu": ("serving_tokens_per_s_per_gpu", False, False),
    "total_tok_s_total": ("serving_tokens_per_s_per_gpu", True, True),
    "total_tok_s_per_gpu": ("serving_tokens_per_s_per_gpu", False, True),
    "tok_s_per_user": ("serving_tokens_per_s_per_user", False, False),
    "ttft_mean_ms": ("serving_ttft", False, False),
    "tpot_mean_ms": ("serving_tpot", False, False),
    "e2e_latency_ms": ("serving_e2e_latency", False, False),
}
_STATIC = {
    "output_tok_s_total": ("tokens_per_s_per_gpu", True, False),
    "output_tok_s_per_gpu": ("tokens_per_s_per_gpu", False, False),
    "ttft_ms": ("ttft_max", False, False),
    "ttft_mean_ms": ("ttft_max", False, False),
    "e2e_latency_ms": ("e2e_latency", False, False),
    "tpot_mean_ms": ("tpot", False, False),
    "tok_s_per_user": ("tokens_per_s_per_user", False, False),
}
# mode -> metric -> (tensorperf variable, multiply by num_gpus, multiply by the in+out length factor)
VARIABLES: Mapping[str, Mapping[str, tuple[str, bool, bool]]] = {
    "max_throughput": _SERVING,
    "concurrency": _SERVING,
    "server": _SERVING,
    "fixed_batch": _STATIC,
    "latency": {"ttft_ms": ("ttft", False, False), "ttft_mean_ms": ("ttft", False, False)},
    "disagg_prefill": {
        "prefill_input_tok_s_per_gpu": ("prefill_tokens_per_s_per_gpu", False, False),
        "ttft_ms": ("ttft_max", False, False),
    },
    "disagg_decode": {
        "decode_output_tok_s_per_gpu": ("decode_tokens_per_s_per_gpu", False, False),
        "tok_s_per_user": ("tokens_per_s_per_user", False, False),
        "tpot_mean_ms": ("tpot", False, False),
    },
}
# continuous-batching modes: the serving inputs (request rate, number of requests, length ranges) apply
SERVING_MODES = ("max_throughput", "concurrency", "server")
_UNMODELLED_MODES = {
    "production": "production traffic (mixed workload with KV-cache hits)",
}
# what the notes state about the run (case-insensitive; the first match wins)
_STATIC_NOTE = re.compile(r"\bstatic batching\b", re.IGNORECASE)
_RATE_NOTE = re.compile(r"\bQPS\s*=\s*(INF\b|\d+(?:\.\d+)?)", re.IGNORECASE)
_NUM_REQUESTS_NOTES = (
    re.compile(r"\ball (\d+) requests queued", re.IGNORECASE),  # trtllm-bench v0.14 table
    re.compile(r"\bnum_requests\s*=\s*(\d+)", re.IGNORECASE),  # trtllm-bench v0.20 table
    re.compile(r"\b(\d+) requests total", re.IGNORECASE),  # Triton table: 500 requests per rate
)
# The TensorRT-LLM perf-overview pages state the number of requests trtllm-bench ran per ISL/OSL
# ('Preparing a Dataset' table: "$num_requests"), not in the rows themselves. Keyed by the page's
# commit (the row's source URL): v1.0 @00f3768 docs/source/performance/perf-overview.md, main
# @03e27c7 docs/source/developer-guide/perf-overview.md. The @03e27c7 table lists 1024/1024 and
# not 1000/1000: the 1000/1000 rows take the 1024/1024 count (and the count the v1.0 page gives
# 1000/1000), 3000.
PERF_OVERVIEW_NUM_REQUESTS: Mapping[str, Mapping[tuple[int, int], int]] = MappingProxyType(
    {
        "00f3768": MappingProxyType(
            {
                (128, 128): 30000,
                (128, 2048): 3000,
                (128, 4096): 1500,
                (1000, 2000): 1500,
                (2048, 128): 3000,
                (2048, 2048): 1500,
                (5000, 500): 1500,
                (1000, 1000): 3000,
                (500, 2000): 3000,
                (20000, 2000): 1000,
            }
        ),
        "03e27c7": MappingProxyType(
            {
                (1024, 1024): 3000,
                (1000, 1000): 3000,
                (8192, 1024): 1500,
                (1024, 8192): 1500,
                (32768, 1024): 1000,
                (1024, 32768): 1000,
            }
        ),
    }
)
_PERF_OVERVIEW_SOURCE = re.compile(r"TensorRT-LLM/blob/([0-9a-f]{7})[0-9a-f]*/docs/source/\S*perf-overview\.md")
# InferenceX's launch scripts run benchmark_serving with --num-prompts $((CONC * 10)) at
# --max-concurrency CONC, after --num-warmups $((2 * CONC)) warm-up requests that all end before the
# measured run starts (SemiAnalysisAI/InferenceX at 843c625: benchmarks/single_node/*.sh,
# benchmarks/benchmark_lib.sh:696, utils/bench_serving/benchmark_serving.py): 10·CONC requests held
# by the client, the first CONC sent together, each later one as a slot frees
INFERENCEX_PROMPTS_PER_CONCURRENCY = 10
# InferenceX's TensorRT-LLM DeepSeek-R1 launch scripts with attention DP set attention_dp_config
# {enable_balance: true, timeout_iters: 60, batching_wait_iters: 0} (843c625:
# benchmarks/single_node/fixed_seq_len/dsr1_*_trt*.sh): docs/model.md §10.5
INFERENCEX_TRTLLM_ADP_TIMEOUT_ITERS = 60
_INFERENCEX_NOTE = re.compile(r"\binference(?:x|max)\b", re.IGNORECASE)
# InferenceX's SGLang DeepSeek-R1 launch scripts (843c625: benchmarks/single_node/fixed_seq_len/
# dsr1_{fp8,fp4}_<gpu>[_mtp].sh): the step's token budget (--chunked-prefill-size, = its
# --max-prefill-tokens) and the decode steps between the scheduler's checks for new requests
# (--scheduler-recv-interval on B200: 10 below concurrency 16, else 30, 1 with DP attention, which
# SGLang's recv skipper does not support; --num-continuous-decode-steps on the AMD GPUs; neither on
# H200): (max_num_tokens, admission_interval) per (hardware, weight dtype); docs/model.md §10.1
INFERENCEX_SGLANG_BUDGET = MappingProxyType(
    {
        ("h200-sxm", "fp8"): 32768,  # dsr1_fp8_h200.sh, _mtp.sh
        ("b200", "fp8"): 32768,  # dsr1_fp8_b200.sh at TP8 (TP4: 8192; _mtp.sh: 16384)
        ("b200", "fp4"): 16384,  # dsr1_fp4_b200.sh, _mtp.sh (DP attention: 32768)
        ("mi300x", "fp8"): 131072,  # dsr1_fp8_mi300x.sh
        ("mi325x", "fp8"): 131072,  # dsr1_fp8_mi325x.sh, _mtp.sh
        ("mi355x", "fp8"): 196608,  # dsr1_fp8_mi355x.sh, _mtp.sh
        ("mi355x", "fp4"): 196608,  # dsr1_fp4_mi355x.sh, _mtp.sh (8192/1024 above concurrency 32: 32768)
    }
)
INFERENCEX_SGLANG_DECODE_STEPS = MappingProxyType(
    {("mi300x", "fp8"): 4, ("mi325x", "fp8"): 4, ("mi355x", "fp8"): 8, ("mi355x", "fp4"): 4}
)
# the expert all-to-all as the notes state it (docs/model.md §3.9.2, §8.8.1): two-batch overlap
# ("two-batch overlap", DeepSeek's "two micro-batch overlap"), and DeepEP ("DeepEP", or DeepSeek's
# "fp8 GEMM/dispatch"), whose normal kernels serve prefill and low-latency kernels decode (LMSYS,
# 2025-05-05-large-scale-ep: "Prefill: Normal Dispatch; Decode: Low-Latency Dispatch")
_TWO_BATCH_NOTE = re.compile(r"\btwo[- ](?:batch|micro-?batch) overlap", re.IGNORECASE)
_DEEPEP_NOTE = re.compile(r"\bdeepep\b|\bfp8 gemm/dispatch\b", re.IGNORECASE)
_RANGE_NOTE = re.compile(r"\brandom[-_ ]range[-_ ]ratio\s*[=:]?\s*(\d*\.?\d+)", re.IGNORECASE)
MAPPED_COLUMNS = (
    "status",
    "model",
    "hardware",
    "weight_dtype",
    "kv_dtype",
    "prompt_len",
    "output_len",
    "tp",
    "pp",
    "dp",
    "ep",
    "batch",
    "max_num_seqs",
    "request_rate",
    "num_requests",
    "queue",
    "adp_balance_iters",
    "max_num_tokens",
    "admission_interval",
    "isl_range_ratio",
    "osl_range_ratio",
    "stack",
    "recipe",
    "ep_overlap",
    "ep_a2a",
    "variable",
    "times_gpus",
    "factor",
    "si",
    "speculative",  # speculative rows: the method, draft tokens per step and acceptance (speculative_rows)
    "spec_tokens",
    "acceptance",
    "num_experts",  # disaggregated rows: the physical experts, redundant ones included (disagg_rows)
    "pools",  # disaggregated rows giving both pools: (x, y, prefill GPUs, prefill ep, its experts)
)
# inputs a mapped row carries only when its source states them (NaN otherwise); rows are grouped
# into one zipped sweep per combination of present inputs (and batch kind)
OPTIONAL_INPUTS = (
    "request_rate",
    "num_requests",
    "isl_range_ratio",
    "osl_range_ratio",
    "num_experts",
    "spec_tokens",
    "acceptance",
    "adp_balance_iters",
)
_GRID_INPUTS = (
    "model",
    "hardware",
    "weight_dtype",
    "kv_dtype",
    "prompt_len",
    "output_len",
    "tp",
    "pp",
    "dp",
    "ep",
    "stack",
    "recipe",
    "queue",
    "ep_overlap",
    "ep_a2a",
    "max_num_tokens",
    "admission_interval",
)
# the serving-stack presets rows map to (tensorperf/catalog/presets/stacks; stack_of gives the rule)
STACK_IDS = ("ideal", "trtllm-0", "trtllm-1", "trtllm-triton", "sglang", "sglang-rocm", "vllm", "atom")
_VERSION = re.compile(r"(?<![\w.])(\d+)\.(\d+)")  # the first version number: 0.14.0, release:1.2.0rc6


# ------------------------------------------------------------------------------------------ loading
def load_measurements(path: str | Path) -> pd.DataFrame:
    """Read a measurements CSV; a missing file, column or a non-numeric number raises SpecError."""
    if not isinstance(path, (str, os.PathLike)):
        raise SpecError(f"measurements path = {path!r} is not allowed: must be the path of a CSV file (str or Path)")
    if not str(path).strip():
        raise SpecError("measurements path = '' is not allowed: must be the path of a CSV file")
    path = Path(path)
    try:
        rows = pd.read_csv(path, dtype={"id": str}, keep_default_na=True)
    except FileNotFoundError:
        raise SpecError(f"{path}: no such measurements file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, IsADirectoryError) as e:
        raise SpecError(
            f"{path}: not a readable CSV ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
        ) from None
    except OSError as e:
        raise SpecError(f"{path}: cannot read the measurements file ({e.strerror or e})") from None
    return check_measurements(rows, str(path))


COUNT_COLUMNS = ("num_gpus", "tp", "pp", "ep", "dp", "batch", "isl", "osl")  # integers >= 1 where stated
_MAX_COUNT = 2**53


def check_measurements(rows: Any, origin: str = "measurements") -> pd.DataFrame:
    """A checked copy of a measurements table (the schema of ``data/measurements.csv``): every required
    column, numbers in the numeric columns (finite; counts integers in [1, 2^53]), unique non-empty ids
    and at least one row. ``origin`` (a file name) starts every error message."""
    if not isinstance(rows, pd.DataFrame):
        raise SpecError(
            f"{origin} = {rows!r} is not allowed: must be a pandas DataFrame or the path of a measurements CSV"
        )
    for column in REQUIRED_COLUMNS:
        if column not in rows.columns:
            raise SpecError(
                f"{origin}: missing column {column!r} (a measurements CSV needs {', '.join(REQUIRED_COLUMNS)})"
            )
    if not len(rows):
        raise SpecError(f"{origin}: no rows; a measurements table needs at least one")
    rows = rows.copy()

    def row_id(i: int) -> Any:
        return rows["id"].iloc[i]

    for column in NUMERIC_COLUMNS:
        raw = rows[column]
        try:
            numbers = pd.to_numeric(raw, errors="coerce")
        except (TypeError, ValueError):  # cells pandas cannot even try (lists, dicts, ...)
            numbers = pd.Series(
                [_number(v) if isinstance(v, (str, int, float, np.number)) else np.nan for v in raw],
                index=raw.index,
                dtype=float,
            )
        bad = numbers.isna() & raw.notna()
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise SpecError(f"{origin}: column {column!r} of row {row_id(i)!r} is {raw.iloc[i]!r}, not a number")
        values = numbers.to_numpy(dtype=float)
        stated = ~np.isnan(values)
        bad = stated & ~np.isfinite(values)
        if column in COUNT_COLUMNS:
            with np.errstate(invalid="ignore"):
                bad |= stated & ((values < 1) | (values > _MAX_COUNT) | (np.mod(values, 1) != 0))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            words = "an integer >= 1 (at most 2^53)" if column in COUNT_COLUMNS else "a finite number"
            raise SpecError(
                f"{origin}: column {column!r} of row {row_id(i)!r} is {raw.iloc[i]!r}; must be {words} or empty"
            )
        rows[column] = numbers
    ids = rows["id"]
    if ids.isna().any() or ids.astype(str).str.strip().eq("").any():
        raise SpecError(f"{origin}: column 'id' has an empty value; every row needs a unique id")
    if ids.duplicated().any():
        raise SpecError(
            f"{origin}: column 'id' must be unique and non-empty (got {ids[ids.duplicated()].iloc[0]!r} twice)"
        )
    return rows


# ------------------------------------------------------------------------------------------ mapping
def _text(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value).strip()


def _number(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else x


def _flag(value: Any) -> bool:
    return _text(value).lower() in ("true", "1", "yes")


def source_label(source: str) -> str:
    """A short name for a source URL: repository/file@commit for GitHub, host/page otherwise."""
    url = _text(source).split()[0] if _text(source) else ""
    url = re.sub(r"^https?://", "", url).rstrip("/")
    m = re.match(r"github\.com/([^/]+)/([^/]+)/blob/([^/]+)/(.*)$", url)
    if m:
        owner, repo, ref, path = m.groups()
        if "/results/" in f"/{path}":  # MLPerf results: repo + submitter
            parts = path.split("/")
            return f"{repo}/{parts[1] if len(parts) > 1 else parts[0]}"
        stem = Path(path).stem
        return f"{repo}/{stem}" + (f"@{ref[:7]}" if re.fullmatch(r"[0-9a-f]{7,40}", ref) else "")
    host, _, rest = url.partition("/")
    page = [p for p in rest.split("/") if p and p != "blog"]
    return host + ("/" + page[-1] if page else "") if host != "buildkite.com" else f"{host}/{'/'.join(page[:2])}"


def model_family(model: str) -> str:
    """Coarse family of a model id (for grouping errors)."""
    m = _model_id(model)
    for prefix in (
        "llama-2",
        "llama-3",
        "llama-4",
        "deepseek",
        "gpt-oss",
        "gpt-j",
        "falcon",
        "mixtral",
        "mistral",
        "qwen",
    ):
        if m.startswith(prefix):
            return prefix + (".x" if prefix == "llama-3" else "")
    return m or "-"


def _model_id(name: str) -> str:
    name = _text(name).lower()
    return MODEL_ALIASES.get(name, name)


def _weight_dtype(row: Mapping[str, Any]) -> str | None:
    w = _text(row.get("weight_dtype")).lower()
    if w:
        return w
    notes = _text(row.get("notes")).lower()
    return "bf16" if re.search(r"orig_precision=\(default", notes) else None


def recipe_of(model: str, weight: str, hardware: str) -> str:
    """The precision recipe a row's checkpoint ships with (tensorperf/catalog/presets/recipes), from
    its model and the weight format the row states: gpt-oss in fp4 is OpenAI's release (MXFP4
    experts, the rest bf16); DeepSeek-V3/R1 fp8 is block-scaled; other fp8 and fp4 checkpoints
    quantize the transformer blocks' linear layers and keep the embeddings and LM head in bf16
    (NVIDIA ModelOpt; DeepSeek's NVFP4 release keeps its attention in block fp8; on AMD Instinct, fp4
    is AMD Quark's MXFP4); bf16/fp16 rows store every group in
    that format. gpt-oss ships in MXFP4 only (OpenAI's release; the TensorRT-LLM perf-overview lists
    no fp8 or fp4 re-quantization of it among its checkpoints and labels its Hopper columns "FP8"):
    its rows run that recipe whatever format they state."""
    if model.startswith("gpt-oss") and weight in ("fp4", "fp8"):
        return "gpt-oss-mxfp4"
    if weight == "fp8":
        return "deepseek-fp8" if model.startswith("deepseek") else "modelopt-fp8"
    if weight == "fp4":
        if hardware.startswith("mi"):
            return "quark-mxfp4"
        return "deepseek-nvfp4" if model.startswith("deepseek") else "modelopt-nvfp4"
    return "uniform"


# GPUs without fp4 tensor cores on which TensorRT-LLM's gpt-oss recipe keeps the KV cache at the
# checkpoint's bf16: the perf-overview's gpt-oss llm_options.yml sets kv_cache_config dtype fp8 with
# the comment "Hopper: use auto" (TensorRT-LLM@03e27c7 docs/source/developer-guide/perf-overview.md)
_HOPPER = ("h100", "h200", "h20", "h800")


def _kv_dtype(row: Mapping[str, Any], weight: str) -> str:
    kv = _text(row.get("kv_dtype")).lower()
    if kv:
        return kv
    model, hardware = _model_id(row.get("model")), _text(row.get("hardware")).lower()
    if model.startswith("gpt-oss") and hardware.startswith(_HOPPER):
        if row_stack(row).startswith("trtllm"):
            return "bf16"
    return "fp8" if weight in ("fp8", "fp4") else weight


def _layout(row: Mapping[str, Any]) -> tuple[int, int, int, int] | str:
    """(tp, pp, dp, ep) or the reason the layout cannot be known."""
    n = _number(row.get("num_gpus"))
    tp, pp, dp, ep = (_number(row.get(k)) for k in ("tp", "pp", "dp", "ep"))
    pp = pp or 1.0
    if n is None:
        return "num_gpus not stated"
    if _flag(row.get("attention_dp")):
        if n % pp:
            return f"num_gpus {n:g} not divisible by pp {pp:g}"
        layout = (1.0, pp, n / pp, ep or 1.0)
    else:
        if tp is None:
            return "layout not stated (tp/pp/dp split unknown)"
        layout = (tp, pp, dp or 1.0, ep or 1.0)
    if layout[0] * layout[1] * layout[2] != n:
        return f"layout tp·pp·dp = {layout[0] * layout[1] * layout[2]:g} does not match num_gpus {n:g}"
    return tuple(int(v) for v in layout)  # type: ignore[return-value]


def stated_rate(notes: Any) -> str:
    """The request rate a row's notes state, as written ("2", "INF"; "" where none)."""
    m = _RATE_NOTE.search(_text(notes))
    return m.group(1).upper() if m else ""


def _serving_inputs(row: Mapping[str, Any], mode: str) -> dict[str, Any] | str:
    """What the notes of a continuous-batching row state about its requests: ``request_rate``
    (None for none or 'INF'), ``num_requests``, the length range ratios, and ``unlimited`` (an
    'INF' rate: everything sent at once); or the reason they cannot be read."""
    notes = _text(row.get("notes"))
    out: dict[str, Any] = {"request_rate": None, "num_requests": None, "range_ratio": None, "unlimited": False}
    m = _RATE_NOTE.search(notes)
    if m:
        if m.group(1).upper() == "INF":
            out["unlimited"] = True
        else:
            rate = float(m.group(1))
            if not rate > 0:
                return f"request rate QPS={m.group(1)} is not > 0"
            out["request_rate"] = rate
    for pattern in _NUM_REQUESTS_NOTES:
        m = pattern.search(notes)
        if m:
            out["num_requests"] = int(m.group(1))
            break
    if out["num_requests"] is None and mode == "max_throughput":
        out["num_requests"] = perf_overview_num_requests(row)
    if out["num_requests"] is not None and out["num_requests"] < 1:
        return "number of requests stated as 0"
    m = _RANGE_NOTE.search(notes)
    if m:
        ratio = float(m.group(1))
        if not 0 < ratio <= 1:
            return f"random range ratio {m.group(1)} not in (0, 1]"
        out["range_ratio"] = ratio
    if mode == "server" and out["request_rate"] is None and not out["unlimited"]:
        return "server scenario without a stated request rate ('QPS=<x>' or 'QPS=INF' in the notes)"
    return out


def perf_overview_num_requests(row: Mapping[str, Any]) -> int | None:
    """The requests trtllm-bench ran for a TensorRT-LLM perf-overview row, from the page's own
    table (:data:`PERF_OVERVIEW_NUM_REQUESTS`); None for another source or an ISL/OSL it omits."""
    m = _PERF_OVERVIEW_SOURCE.search(_text(row.get("source")))
    isl, osl = _number(row.get("isl")), _number(row.get("osl"))
    if m is None or isl is None or osl is None:
        return None
    return PERF_OVERVIEW_NUM_REQUESTS.get(m.group(1), {}).get((int(isl), int(osl)))


def stack_of(framework: Any, version: Any = None, hardware: Any = None, notes: Any = None) -> str:
    """The serving-stack preset id of a row's ``framework``, ``framework_version``, ``hardware`` and
    ``notes`` (the rule of the module docstring): ``trtllm-0``, ``trtllm-1``, ``trtllm-triton``, ``sglang``,
    ``sglang-rocm`` (a ROCm image, or SGLang on an AMD GPU), ``vllm``, ``atom`` or ``ideal``."""
    name, text = _text(framework).lower(), _text(version)
    if name.startswith(("tensorrt-llm", "trt-llm", "trtllm")):
        if re.search(r"mlperf", text, re.IGNORECASE):
            return "ideal"  # MLPerf submission code: the submitter's own harness
        if re.search(r"triton", text, re.IGNORECASE):
            return "trtllm-triton"  # Triton Inference Server's tensorrtllm_backend (its own front end)
        if re.search(r"pytorch", text, re.IGNORECASE):
            return "trtllm-1"  # the PyTorch backend (0.20 onwards) is the 1.x runtime
        m = _VERSION.search(text)
        if m:
            return "trtllm-0" if int(m.group(1)) == 0 else "trtllm-1"
        if re.search(r"\b(main|commit)\b", text, re.IGNORECASE):
            return "trtllm-1"  # a 2025 development build (the PyTorch workflow's docs)
        if _INFERENCEX_NOTE.search(_text(notes)):
            # InferenceX serves TensorRT-LLM with `trtllm-serve --backend=pytorch` (its *_trt.sh launch
            # scripts): the 1.x runtime, whether or not the row recorded the image
            return "trtllm-1"
        return "ideal"  # version not stated
    if name.startswith("sglang"):
        rocm = "rocm" in text.lower() or _text(hardware).lower().startswith("mi")
        return "sglang-rocm" if rocm else "sglang"
    if name.startswith("vllm"):
        return "vllm"
    if name.startswith("atom"):
        return "atom"
    return "ideal"


def row_stack(row: Mapping[str, Any]) -> str:
    """:func:`stack_of` a row (a mapping of the measurements columns)."""
    return stack_of(row.get("framework"), row.get("framework_version"), row.get("hardware"), row.get("notes"))


def _map_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """One row -> its grid point and variable, or {'status': 'skipped: ...'}."""
    metric, mode = _text(row.get("metric")), _text(row.get("mode"))
    out: dict[str, Any] = {"status": "ok"}

    def skip(reason: str) -> dict[str, Any]:
        return {"status": f"skipped: {reason}"}

    spec = speculative_rows.speculation(row) if _text(row.get("speculative")) else None
    if isinstance(spec, str):
        return skip(spec)
    if "p99" in metric:
        return skip("p99 metric (tail latency of an arrival process; the model gives means)")
    if "ambiguous" in metric:
        return skip("ambiguous metric (per-GPU or total not stated)")
    if mode in _UNMODELLED_MODES:
        return skip(_UNMODELLED_MODES[mode])
    if mode not in VARIABLES:
        return skip(f"unknown mode {mode!r}")
    # stated concurrency on a static-batch engine (gptSessionBenchmark): the fixed_batch mapping
    table = "fixed_batch" if mode == "concurrency" and _STATIC_NOTE.search(_text(row.get("notes"))) else mode
    if metric not in VARIABLES[table]:
        return skip(
            f"no mapping for metric {metric!r} in mode {mode!r}" + (" (static batching)" if table != mode else "")
        )
    value = _number(row.get("value"))
    if value is None or value <= 0:
        return skip("measured value missing or not positive")
    unit = _text(row.get("unit"))
    if unit not in UNIT_TO_SI:
        return skip(f"unknown unit {unit!r}")
    isl, osl = _number(row.get("isl")), _number(row.get("osl"))
    if osl is None and mode.startswith("disagg_"):
        osl = 1.0  # prefill-only / decode at a context of ISL
    if isl is None or osl is None:
        return skip("ISL/OSL not stated (dataset workload)")
    serving: dict[str, Any] = {"request_rate": None, "num_requests": None, "range_ratio": None, "unlimited": False}
    if table in SERVING_MODES:
        read = _serving_inputs(row, mode)
        if isinstance(read, str):
            return skip(read)
        serving = read
    model = _model_id(row.get("model"))
    if model not in presets.models():
        return skip(f"unknown model preset {model!r}")
    hardware = _text(row.get("hardware")).lower()
    if hardware not in presets.hardware():
        return skip(f"unknown hardware preset {hardware!r}")
    weight = _weight_dtype(row)
    if weight is None:
        return skip("weight dtype not stated")
    layout = _layout(row)
    if isinstance(layout, str):
        return skip(layout)
    tp, pp, dp, ep = layout
    batch = _number(row.get("batch"))
    if batch is not None:
        batch_value: int | str = int(batch)
    elif mode in ("max_throughput", "server") or (mode == "disagg_decode" and metric == "decode_output_tok_s_per_gpu"):
        batch_value = "max"  # the runtime's choice; with a request rate, the server's cap
    elif mode == "latency":
        batch_value = 1
    elif mode == "disagg_prefill":
        batch_value = dp * math.ceil(PREFILL_TOKENS_PER_RANK / isl)
    else:
        return skip("batch not stated")
    variable, total, in_out = VARIABLES[table][metric]
    queue, balance, budget, polls = "server", float("nan"), 8192, 1
    if table == "concurrency" and serving["num_requests"] is None and _INFERENCEX_NOTE.search(_text(row.get("notes"))):
        serving["num_requests"] = INFERENCEX_PROMPTS_PER_CONCURRENCY * int(batch_value)
        queue = "client"
        adp = _text(row.get("attention_dp")).lower() in ("true", "1", "yes") and dp > 1
        stack = row_stack(row)
        if adp and stack.startswith("trtllm"):
            balance = float(INFERENCEX_TRTLLM_ADP_TIMEOUT_ITERS)
        if stack.startswith("sglang") and model == "deepseek-v3":
            budget, polls = inferencex_sglang_launch(hardware, weight, tp * dp, adp, int(batch_value), isl, osl, spec)
    ratio = serving["range_ratio"]
    factor = 1.0
    if in_out:  # input + output tokens: output tokens x (E[ISL] + E[OSL]) / E[OSL]
        r_in = r_out = 1.0 if ratio is None else ratio
        factor = (isl * (1 + r_in) / 2 + osl * (1 + r_out) / 2) / (osl * (1 + r_out) / 2)
    nan = float("nan")
    if spec is not None:  # the draft length and the acceptance (the model preset's where not stated)
        spec = speculative_rows.with_acceptance(spec, presets.model(model))
        if isinstance(spec, str):
            return skip(spec)
        out.update(spec)
    out.update(
        model=model,
        hardware=hardware,
        weight_dtype=weight,
        kv_dtype=_kv_dtype(row, weight),
        recipe=recipe_of(model, weight, hardware),
        prompt_len=int(isl),
        output_len=int(osl),
        tp=tp,
        pp=pp,
        dp=dp,
        ep=ep,
        batch=batch_value,
        max_num_seqs=MAX_NUM_SEQS * dp,
        request_rate=nan if serving["request_rate"] is None else serving["request_rate"],
        num_requests=nan if serving["num_requests"] is None else float(serving["num_requests"]),
        queue=queue,
        adp_balance_iters=balance,
        max_num_tokens=budget,
        admission_interval=polls,
        ep_overlap="two_batch" if _TWO_BATCH_NOTE.search(_text(row.get("notes"))) else "none",
        ep_a2a=(
            ("deepep" if mode == "disagg_prefill" else "deepep_ll")
            if _DEEPEP_NOTE.search(_text(row.get("notes")))
            else "nccl"
        ),
        isl_range_ratio=nan if ratio is None else ratio,
        osl_range_ratio=nan if ratio is None else ratio,
        variable=variable,
        times_gpus=total,
        factor=factor,
        si=UNIT_TO_SI[unit],
    )
    return disagg_rows.refine(row, out) if mode.startswith("disagg_") else out


def inferencex_sglang_launch(
    hardware: str, weight: str, gpus: int, adp: bool, concurrency: int, isl: float, osl: float, spec: Any
) -> tuple[int, int]:
    """(max_num_tokens, admission_interval) of an InferenceX SGLang DeepSeek-R1 run, as its launch
    script sets them (:data:`INFERENCEX_SGLANG_BUDGET`; 8192 and 1 for a GPU without a script)."""
    budget = INFERENCEX_SGLANG_BUDGET.get((hardware, weight), 8192)
    polls = INFERENCEX_SGLANG_DECODE_STEPS.get((hardware, weight), 1)
    if hardware == "b200":  # --scheduler-recv-interval
        polls = 1 if adp else (30 if concurrency >= 16 else 10)
        if weight == "fp8" and gpus == 4:  # dsr1_fp8_b200.sh's TP4 branch
            budget, polls = 8192, 10
        elif weight == "fp8" and spec is not None:  # dsr1_fp8_b200_mtp.sh
            budget = 16384
        elif weight == "fp4" and adp:
            budget = 32768
    if (hardware, weight) == ("mi355x", "fp4") and (isl, osl) == (8192, 1024) and concurrency > 32:
        budget = 32768
    return budget, polls


def map_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The grid point of every row (index aligned with ``rows``): model, hardware, dtypes,
    prompt_len, output_len, tp, pp, dp, ep, batch (int or 'max'), max_num_seqs, request_rate,
    num_requests, isl_range_ratio, osl_range_ratio (NaN where the row does not state them), stack
    (the serving-stack preset id, :func:`stack_of`; skipped rows have one too), variable,
    times_gpus, factor (the multiplier of the prediction besides num_gpus), si (the unit's SI
    factor) and status ('ok' or 'skipped: ...')."""
    raw = rows.to_dict("records")
    mapped = pd.DataFrame([_map_row(r) for r in raw], index=rows.index, columns=MAPPED_COLUMNS)
    mapped["stack"] = [row_stack(r) for r in raw]  # skipped rows too
    return mapped


def sweep_groups(points: pd.DataFrame) -> list[tuple[tuple[bool, tuple[str, ...]], pd.DataFrame]]:
    """The mapped ``points`` (status ok) split into zipped sweeps: one per batch kind (``batch="max"``
    or stated) and combination of the optional inputs they state (a row without a request rate
    must not get one, nor one without a number of requests). Each item: ((batch_max, inputs), rows)."""
    is_max = points["batch"].map(lambda b: b == "max").to_numpy(dtype=bool)
    present = [points[k].notna().to_numpy(dtype=bool) for k in OPTIONAL_INPUTS]
    keys = [(bool(is_max[i]), tuple(k for k, p in zip(OPTIONAL_INPUTS, present) if p[i])) for i in range(len(points))]
    groups: dict[tuple[bool, tuple[str, ...]], list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    order = sorted(groups, key=lambda k: (not k[0], len(k[1]), k[1]))  # batch="max" first, fewest inputs first
    return [(key, points.iloc[groups[key]]) for key in order]


def grid_inputs(points: pd.DataFrame, batch_max: bool | None = None) -> dict[str, Any]:
    """The inputs of one zipped sweep over mapped ``points`` (rows of :func:`map_rows` of one group
    of :func:`sweep_groups`: all with ``batch == "max"`` when ``batch_max``, else all with a stated
    batch; ``None``: decided from the points). Each point's serving ``stack`` (a preset id or a
    spec; ``ideal`` for points without the column) is zipped with the rest. An optional input
    (request_rate, num_requests, range ratios) is passed, zipped, when the points state it; points
    that state it only in part raise ValueError (group them with :func:`sweep_groups` first)."""
    if batch_max is None:
        batch_max = bool(len(points)) and points["batch"].iloc[0] == "max"
    specs = {m: presets.model(m) for m in points["model"].unique()}  # parse each preset once
    inputs: dict[str, Any] = {k: points[k].tolist() for k in _GRID_INPUTS if k in points}
    inputs["model"] = [specs[m] for m in inputs["model"]]
    if "stack" not in inputs:  # points mapped without a stack: the ideal one
        inputs["stack"] = ["ideal"] * len(points)
    if "recipe" not in inputs:  # points mapped without a recipe: every group in weight_dtype
        inputs["recipe"] = ["uniform"] * len(points)
    for name, default in (
        ("queue", "server"),
        ("ep_overlap", "none"),
        ("ep_a2a", "nccl"),
        ("max_num_tokens", 8192),
        ("admission_interval", 1),
    ):
        if name not in inputs:  # points mapped without it: the input's default
            inputs[name] = [default] * len(points)
    for name in ("max_num_tokens", "admission_interval"):
        inputs[name] = [int(v) for v in inputs[name]]
    zipped = list(_GRID_INPUTS)
    if batch_max:
        inputs.update(batch="max", max_num_seqs=points["max_num_seqs"].astype(int).tolist())
        zipped.append("max_num_seqs")
    else:
        inputs["batch"] = points["batch"].astype(int).tolist()
        zipped.append("batch")
    for name in OPTIONAL_INPUTS:
        if name not in points:
            continue
        stated = points[name].notna()
        if not stated.any():
            continue
        if not stated.all():
            raise ValueError(f"{name} is stated on {int(stated.sum())} of {len(points)} points; group them first")
        values = points[name].astype(float)
        counts = ("num_requests", "adp_balance_iters")
        inputs[name] = values.astype(int).tolist() if name in counts else values.tolist()
        zipped.append(name)
    if "spec_tokens" in inputs:  # speculative rows: their method, with their draft length
        inputs["speculative"] = points["speculative"].tolist()
        zipped.append("speculative")
    inputs["zipped"] = zipped
    return inputs


def _evaluate(
    points: pd.DataFrame, batch_max: bool, efficiency: Mapping[str, float] | None, what_if: Mapping[str, Any]
) -> pd.DataFrame:
    """One zipped evaluation over ``points``: predicted SI value, concurrency and reason per point
    (NaN where infeasible for the metrics a sweep masks)."""
    overrides = check_efficiency(efficiency)
    grid = build_grid(**grid_inputs(points, batch_max), **what_if)
    with torch.no_grad():
        ev = CONVENTIONS["roofline"](grid, overrides, breakdown=False)
    n = len(points)
    reason = ev.reason.expand(grid.shape).reshape(-1).cpu().numpy().astype(np.int64)

    def column(name: str) -> np.ndarray:
        v = np.broadcast_to(ev.values[name].expand(grid.shape).reshape(-1).cpu().numpy(), (n,))
        return np.where(reason == 0, v, np.nan) if METRICS[name].masked else v

    values = np.full(n, np.nan)
    for variable in points["variable"].unique():
        sel = (points["variable"] == variable).to_numpy()
        values[sel] = column(variable)[sel]
    gpus = column("num_gpus")
    values = np.where(points["times_gpus"].to_numpy(dtype=bool), values * gpus, values)
    values = values * points["factor"].to_numpy(dtype=float)
    return pd.DataFrame(
        {
            "value": values,
            "concurrency": column("concurrency"),
            "reason": np.broadcast_to(reason, (n,)),
        },
        index=points.index,
    )


def with_stacks(mapped: pd.DataFrame, stacks: Mapping[str, Any] | None) -> pd.DataFrame:
    """``mapped`` (rows of :func:`map_rows`) with the stack of every row whose stack id is a key of
    ``stacks`` replaced by its value (a StackSpec, a preset id or a .toml path); ``None``: as is."""
    if stacks is None:
        return mapped
    if not isinstance(stacks, Mapping):
        raise SpecError(f"stacks = {stacks!r} is not allowed: must be a mapping of stack id -> stack")
    out = mapped.copy()
    out["stack"] = [stacks.get(s, s) if isinstance(s, str) else s for s in mapped["stack"]]
    return out


def predict(
    rows: pd.DataFrame,
    efficiency: Mapping[str, float] | None = None,
    stacks: Mapping[str, Any] | None = None,
    recipe: Any = None,
    **what_if: Any,
) -> pd.DataFrame:
    """The report: one line per row with ``REPORT_COLUMNS`` then ``CONTEXT_COLUMNS``.

    All mapped rows are evaluated in a few zipped sweeps, one per group of :func:`sweep_groups`
    (batch kind x the optional inputs the rows state).
    ``efficiency`` overrides every hardware's default factors (as in :func:`tensorperf.sweep`);
    ``stacks`` maps stack ids (:data:`STACK_IDS`) to the stack their rows are evaluated with instead
    of the preset (a StackSpec, a preset id or a .toml path; e.g. ``{s: "ideal" for s in
    STACK_IDS}``: no serving-stack overheads); the report's ``stack`` column keeps the row's id.
    ``recipe``: one precision recipe for every row instead of the one its checkpoint ships with
    (:func:`recipe_of`; e.g. ``"uniform"``: every tensor group in the row's weight format).
    ``what_if`` scalars (e.g. ``launch_overhead=20e-6``) are passed to the sweeps unchanged."""
    mapped = map_rows(rows)
    ok = with_stacks(mapped[mapped["status"] == "ok"], stacks)
    if recipe is not None:
        ok = ok.assign(recipe=[recipe] * len(ok))
    predicted = pd.DataFrame({"value": np.nan, "concurrency": np.nan, "reason": 0}, index=rows.index)
    for (batch_max, _), points in sweep_groups(ok):
        predicted.loc[points.index] = _evaluate(points, batch_max, efficiency, what_if)
    predicted = disagg_rows.with_pools(ok, predicted, efficiency, what_if)  # rows giving both pools
    status = mapped["status"].copy()
    infeasible = (status == "ok") & (predicted["reason"] != 0)
    status[infeasible] = [f"skipped: infeasible ({describe(int(c))})" for c in predicted["reason"][infeasible]]
    disagg = ok[rows.loc[ok.index, "mode"].astype(str).str.startswith("disagg_") & infeasible.loc[ok.index]]
    status.update(pd.Series(disagg_rows.memory_statuses(disagg, predicted["reason"], what_if), dtype=object))
    status[(status == "ok") & ~np.isfinite(predicted["value"].astype(float))] = "skipped: no finite prediction"
    good = status == "ok"
    si = mapped["si"].where(good)
    measured = rows["value"].astype(float)
    value = (predicted["value"] / si).where(good)
    report = pd.DataFrame(
        {
            "id": rows["id"],
            "metric": rows["metric"],
            "measured": measured,
            "predicted": value,
            "rel_error": ((value - measured) / measured).where(good),
            "status": status,
            "unit": rows["unit"],
            "hardware": rows["hardware"],
            "model": rows["model"],
            "mode": rows["mode"],
            "source": rows["source"].map(source_label),
            "variable": mapped["variable"],
            "weight_dtype": mapped["weight_dtype"],
            "kv_dtype": mapped["kv_dtype"],
            "isl": mapped["prompt_len"],
            "osl": mapped["output_len"],
            **{k: mapped[k] for k in ("tp", "pp", "dp", "ep")},
            "batch": predicted["concurrency"].where(mapped["status"] == "ok"),
            **{k: mapped[k].where(mapped["status"] == "ok") for k in OPTIONAL_INPUTS},
            **{k: mapped[k].where(mapped["status"] == "ok") for k in ("queue", "ep_overlap", "ep_a2a")},
            "stack": mapped["stack"],
            "recipe": mapped["recipe"] if recipe is None else mapped["recipe"].where(mapped["status"] != "ok", recipe),
        }
    )
    return report.reset_index(drop=True)


def validate(
    path: str | Path,
    efficiency: Mapping[str, float] | None = None,
    stacks: Mapping[str, Any] | None = None,
    recipe: Any = None,
    **what_if: Any,
) -> pd.DataFrame:
    """load_measurements + predict."""
    return predict(load_measurements(path), efficiency=efficiency, stacks=stacks, recipe=recipe, **what_if)


# ------------------------------------------------------------------------------------------ summary
SUMMARY_GROUPS = ("metric", "source", "hardware", "family")


def summary(report: pd.DataFrame, by: Sequence[str] = SUMMARY_GROUPS) -> pd.DataFrame:
    """Median and p90 |rel_error| (and the median signed error, 'bias') of the ok rows, with row
    counts, grouped by each of ``by`` (``family``: the model family) and over all rows.

    Columns: group, key, rows, ok, median, p90, bias (fractions, not percent)."""
    frame = report.assign(
        family=report["model"].map(model_family), _ok=report["status"] == "ok", _abs=report["rel_error"].abs()
    )

    def stats(group: str, key: str, part: pd.DataFrame) -> dict[str, Any]:
        good = part[part["_ok"]]
        return {
            "group": group,
            "key": key,
            "rows": len(part),
            "ok": len(good),
            "median": float(good["_abs"].median()) if len(good) else np.nan,
            "p90": float(good["_abs"].quantile(0.9)) if len(good) else np.nan,
            "bias": float(good["rel_error"].median()) if len(good) else np.nan,
        }

    out = [stats("all", "all", frame)]
    for group in by:
        for key, part in frame.groupby(group, sort=True, dropna=False):
            out.append(stats(group, str(key), part))
    return pd.DataFrame(out)
