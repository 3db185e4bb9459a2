"""The one registry of sweep inputs.

Every input of :func:`tensorperf.sweep` that can become a dimension is one row of :data:`AXES`:
its name, its kind (what values it takes), its default, its unit, whether it is a layout or
scheduling knob (what a "best layout" search keeps free), and its evaluation rank (where the engine
puts its tensor axis). Everything else derives from this table: the order of a Dataset's dimensions
(:data:`DIM_ORDER`, the table's order), the engine's own axis order (:data:`EVAL_ORDER`), the
inputs that are integer counts, the defaults, the CLI flags (``--prompt-len``) and the sweep-file
keys. What-if inputs (any numeric spec field, or ``<field>_scale``) are open-ended and are not rows.

A new sweep input is a new row here (and the physics that reads it).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any


class Kind(enum.Enum):
    """What values an axis takes."""

    SPEC = "spec"  # a preset id, a spec file or a spec object (model, hardware)
    LABEL = "label"  # a name from a fixed table (a number format, an algorithm)
    COUNT = "count"  # an integer >= 1 (tokens, requests, parallel degrees)
    BATCH = "batch"  # a count, or "max" (the largest batch that fits each point)
    RATE = "rate"  # a finite number > 0 (requests per second)
    FRACTION = "fraction"  # a number in (0, 1]
    FACTOR = "factor"  # a finite number >= 1 (a max/mean ratio)
    DRAFT_TOKENS = "draft_tokens"  # an integer in [0, MAX_DRAFT_TOKENS] (speculative decoding's k)
    PROBABILITY = "probability"  # a number in [0, 1) (an acceptance probability)


MAX_DRAFT_TOKENS = 64  # draft tokens per step a sweep accepts (serving stacks draft at most ~10)


@dataclass(frozen=True)
class Axis:
    """One sweep input.

    ``default``: the value when the input is not given; ``None`` means the input is absent (the
    engine then derives it, e.g. the number of microbatches). ``rank``: position in the engine's own
    axis order, outermost first (see :data:`EVAL_ORDER`). ``layout``: a layout or scheduling choice,
    free in a best-configuration search (not a workload, hardware or model given by the user).
    """

    name: str
    kind: Kind
    default: Any
    unit: str
    help: str
    rank: int
    layout: bool = False
    required: bool = False  # must be given (model, hardware); other inputs have defaults or are optional

    @property
    def flag(self) -> str:
        """The command-line flag (``--prompt-len``)."""
        return "--" + self.name.replace("_", "-")

    @property
    def integer(self) -> bool:
        return self.kind in (Kind.COUNT, Kind.BATCH, Kind.DRAFT_TOKENS)


# The Dataset's dimension order is this table's order. Ranks: an elementwise op whose operand lacks
# the engine's innermost axis runs a loop as short as that axis, so the axes nearly every grid-sized
# tensor spans (the tokens per microbatch: batch, dp, pp; the shards: tp) are innermost (highest
# rank) and the ones few tensors span (ep: only the experts; prompt and output lengths: not decode's
# weight streaming; a chunk size or world size: one pass or one check; the serving inputs: a few
# of the serving pass's counts) outermost. Measured in
# benchmarks/scale.py against the table order.
_ROWS = (
    Axis("model", Kind.SPEC, None, "1", "model: preset ids or spec files (.toml, config.json)", 6, required=True),
    Axis("hardware", Kind.SPEC, None, "1", "hardware: preset ids or spec files (.toml)", 7, required=True),
    Axis("weight_dtype", Kind.LABEL, "bf16", "1", "number format of the weights (also selects the math rate)", 8),
    Axis("kv_dtype", Kind.LABEL, "bf16", "1", "number format of the KV cache", 9),
    Axis("act_dtype", Kind.LABEL, "bf16", "1", "number format of activations and collectives", 10),
    Axis("allreduce", Kind.LABEL, "ring", "1", "all-reduce algorithm: ring, tree or hierarchical", 11),
    Axis("stack", Kind.SPEC, "ideal", "1", "serving stack: preset ids or spec files (.toml); its overheads", -6),
    Axis(
        "recipe",
        Kind.SPEC,
        "uniform",
        "1",
        "precision recipe: weight format per tensor group (preset ids or .toml); 'uniform' follows weight_dtype",
        -7,
    ),
    Axis("prompt_len", Kind.COUNT, 1024, "tokens", "prompt length (input sequence length)", 3),
    Axis("output_len", Kind.COUNT, 128, "tokens", "output length, counting the first token", 4),
    Axis("batch", Kind.BATCH, 1, "1", "requests in flight on the deployment, or 'max'", 17, layout=True),
    Axis("tp", Kind.COUNT, 1, "1", "tensor-parallel degree", 12, layout=True),
    Axis("cp", Kind.COUNT, 1, "1", "context-parallel degree", 13, layout=True),
    Axis("pp", Kind.COUNT, 1, "1", "pipeline-parallel degree (stages)", 14, layout=True),
    Axis("dp", Kind.COUNT, 1, "1", "data-parallel degree (replicas)", 18, layout=True),
    Axis("ep", Kind.COUNT, 1, "1", "expert-parallel degree", 5, layout=True),
    Axis("microbatches", Kind.COUNT, None, "1", "pipeline microbatches per replica (default: derived)", 15, True),
    Axis(
        "chunk_size", Kind.COUNT, None, "tokens", "chunked prefill: tokens per chunk (default: whole prompt)", 2, True
    ),
    Axis("world_size", Kind.COUNT, None, "1", "keep only layouts of exactly this many GPUs", 1),
    Axis("max_num_seqs", Kind.COUNT, None, "1", "scheduler limit on requests in flight (with batch='max')", 16, True),
    Axis(
        "max_num_tokens",
        Kind.COUNT,
        8192,
        "tokens",
        "serving: token budget of one step (decode + prefill chunks)",
        -1,
        True,
    ),
    Axis(
        "request_rate",
        Kind.RATE,
        None,
        "1/s",
        "serving: Poisson arrivals per second (open loop; batch caps the requests in flight)",
        -2,
    ),
    Axis("num_requests", Kind.COUNT, None, "1", "serving: an offline run of this many requests queued at once", -3),
    Axis(
        "queue",
        Kind.LABEL,
        "server",
        "1",
        "serving: where requests beyond batch wait: server (queued there; TTFT counts the wait) or "
        "client (a benchmark client sends one as a slot frees, --max-concurrency; TTFT from sending)",
        -13,
    ),
    Axis(
        "adp_balance_iters",
        Kind.COUNT,
        None,
        "1",
        "serving with attention DP (dp > 1): a new request's prefill waits until every DP rank has one, "
        "at most this many steps (TensorRT-LLM attention_dp_config enable_balance, timeout_iters); default: no wait",
        -16,
    ),
    Axis(
        "admission_interval",
        Kind.COUNT,
        1,
        "steps",
        "serving: decode steps between the scheduler's checks for new requests (SGLang "
        "--scheduler-recv-interval, --num-continuous-decode-steps); default 1: before every step",
        -17,
        True,
    ),
    Axis("isl_range_ratio", Kind.FRACTION, 1.0, "1", "prompt lengths uniform in [r·prompt_len, prompt_len]", -4),
    Axis("osl_range_ratio", Kind.FRACTION, 1.0, "1", "output lengths uniform in [r·output_len, output_len]", -5),
    Axis(
        "imbalance",
        Kind.FACTOR,
        None,
        "1",
        "MoE: max/mean routed token-expert pairs over the EP ranks, >= 1 (default: uniform top-k routing's)",
        -8,
    ),
    Axis(
        "ep_overlap",
        Kind.LABEL,
        "none",
        "1",
        "MoE: none, or two_batch (two half micro-batches, one's expert all-to-all behind the other's compute)",
        -14,
    ),
    Axis(
        "ep_a2a",
        Kind.LABEL,
        "nccl",
        "1",
        "MoE: the expert all-to-all's kernels: nccl, deepep (normal: once per remote node, fp8 dispatch) "
        "or deepep_ll (low latency: every copy, fp8 dispatch)",
        -15,
    ),
    Axis("speculative", Kind.LABEL, "none", "1", "speculative decoding: none, mtp, eagle or draft", -9),
    Axis(
        "spec_tokens",
        Kind.DRAFT_TOKENS,
        None,
        "tokens",
        "speculative decoding: draft tokens k per step, 0..64 (default: 1)",
        -10,
    ),
    Axis(
        "acceptance",
        Kind.PROBABILITY,
        None,
        "1",
        "speculative decoding: P(a draft token is accepted | the previous one was), in [0, 1) "
        "(default: the model preset's sourced value, e.g. mtp_acceptance)",
        -11,
    ),
    Axis(
        "draft_model",
        Kind.SPEC,
        None,
        "1",
        "speculative='draft': the draft model (preset ids or spec files)",
        -12,
    ),
)

AXES: Mapping[str, Axis] = MappingProxyType({a.name: a for a in _ROWS})

ZIP_DIM = "point"  # the shared dimension of zipped inputs; outermost in the engine
DIM_ORDER: tuple[str, ...] = tuple(AXES)
EVAL_ORDER: tuple[str, ...] = (ZIP_DIM, *sorted(AXES, key=lambda n: AXES[n].rank))
LABEL_AXES: tuple[str, ...] = tuple(n for n, a in AXES.items() if a.kind is Kind.LABEL)
LAYOUT_AXES: tuple[str, ...] = tuple(n for n, a in AXES.items() if a.layout)
DEFAULTS: Mapping[str, Any] = MappingProxyType({n: a.default for n, a in AXES.items()})
