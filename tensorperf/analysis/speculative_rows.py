"""Measurement rows run with speculative decoding -> the sweep's ``speculative``, ``spec_tokens`` and
``acceptance`` inputs, or the reason a row cannot be mapped (what it does not state).

A row's ``speculative`` column names the method (``mtp``; ``eagle`` and ``draft`` as the engine
spells them). The draft length k and the acceptance α come from the notes where they state them
("num_nextn_predict_layers 3", "speculative-num-steps 2", "num-speculative-tokens 3",
"spec_tokens=3"; "acceptance 0.7" or "70% acceptance"). InferenceX rows (SemiAnalysis; the notes
say "InferenceX" and "spec=mtp") state neither: k is the one InferenceX's launch scripts set for
that engine (:func:`inferencex_draft_tokens`), and α, where a row does not state it, is the model
preset's sourced value (ModelSpec.mtp_acceptance: DeepSeek-V3's 85-90%, section 5.4.3 of its report;
docs/model.md §3.14). A row is skipped where a method, k or α is missing, with a reason that names it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import torch

from tensorperf.engine.physics.speculative import SPECULATIVE_METHODS, constant_acceptance, tokens_per_step

# the draft length a row's notes state (the first match wins; the engines' own spellings)
_K_NOTES = (
    re.compile(r"\bnum[_-]nextn[_-]predict[_-]layers\s*[=:]?\s*(\d+)", re.IGNORECASE),  # TensorRT-LLM MTP
    re.compile(r"\bspeculative[_-]num[_-]steps\s*[=:]?\s*(\d+)", re.IGNORECASE),  # SGLang EAGLE/MTP
    re.compile(r"\bnum[_-]speculative[_-]tokens\s*[=:]?\s*(\d+)", re.IGNORECASE),  # vLLM, ATOM
    re.compile(r"\bspec[_-]tokens\s*[=:]?\s*(\d+)", re.IGNORECASE),
)
_ACCEPTANCE_NOTES = (
    re.compile(r"\bacceptance(?: rate)?\s*[=:]?\s*(\d*\.?\d+)\s*(%?)", re.IGNORECASE),
    re.compile(r"(\d*\.?\d+)\s*(%)\s*acceptance", re.IGNORECASE),
)
_INFERENCEX = re.compile(r"\binference(?:x|max)\b.*\bspec=mtp\b", re.IGNORECASE | re.DOTALL)

# InferenceX's single-node DeepSeek-R1 MTP launch scripts (SemiAnalysisAI/InferenceX at 843c625,
# benchmarks/single_node/fixed_seq_len/dsr1_*_mtp.sh; unchanged since each was added):
# - SGLang on NVIDIA (dsr1_fp8_b200_mtp.sh, dsr1_fp4_b200_mtp.sh, dsr1_fp8_h200_mtp.sh):
#   --speculative-num-steps 2 --speculative-num-draft-tokens 3 --speculative-eagle-topk 1 -> k = 2
# - SGLang on AMD (dsr1_fp8_mi325x_mtp.sh, dsr1_fp8_mi355x_mtp.sh, dsr1_fp4_mi355x_mtp.sh):
#   --speculative-num-steps 3 --speculative-num-draft-tokens 4 --speculative-eagle-topk 1 -> k = 3
# - TensorRT-LLM (dsr1_fp8_b200_trt_mtp.sh, dsr1_fp4_b200_trt_mtp.sh, dsr1_fp8_h200_trt_mtp.sh):
#   speculative_config num_nextn_predict_layers: 3, or 1 with enable_attention_dp -> k = 3 / 1
# - ATOM (dsr1_fp8_mi355x_atom_mtp.sh: --method mtp --num-speculative-tokens 3 -> k = 3;
#   dsr1_fp4_mi355x_atom_mtp.sh: --method mtp alone, ATOM's default num_speculative_tokens = 1,
#   ROCm/ATOM atom/model_engine/arg_utils.py -> k = 1)
SGLANG_NVIDIA, SGLANG_AMD, TRTLLM, TRTLLM_ATTENTION_DP, ATOM_FP8, ATOM_FP4 = 2, 3, 3, 1, 3, 1


def _text(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value).strip()


def inferencex_draft_tokens(framework: str, hardware: str, weight: str, attention_dp: bool) -> int | None:
    """The draft tokens per step InferenceX's launch script for that engine sets (module notes)."""
    name = framework.lower()
    if name.startswith("sglang"):
        return SGLANG_AMD if hardware.lower().startswith("mi") else SGLANG_NVIDIA
    if name.startswith(("tensorrt-llm", "trt")):
        return TRTLLM_ATTENTION_DP if attention_dp else TRTLLM
    if name.startswith("atom"):
        return {"fp8": ATOM_FP8, "fp4": ATOM_FP4}.get(weight.lower())
    return None


def _stated(patterns: tuple[re.Pattern, ...], notes: str) -> re.Match | None:
    for pattern in patterns:
        m = pattern.search(notes)
        if m:
            return m
    return None


def speculation(row: Mapping[str, Any]) -> dict[str, Any] | str:
    """What a speculative row states: ``{"speculative", "spec_tokens", "acceptance"}`` (acceptance
    None where not stated), or the reason it cannot be mapped (starting 'speculative decoding (...)')."""
    method = _text(row.get("speculative")).lower()
    notes = _text(row.get("notes"))
    head = f"speculative decoding ({method})"
    if method not in SPECULATIVE_METHODS[1:]:
        if "simulated" in method:
            return (
                f"{head}: a simulated drafter (dummy kernels, an assumed acceptance), not a run of one; "
                "the row states no draft method and draft length to model"
            )
        return f"{head}: the row states no method the model knows ({', '.join(SPECULATIVE_METHODS[1:])})"
    if method != "mtp":
        return f"{head}: the row states no draft model and acceptance (only mtp rows are mapped)"
    m = _stated(_K_NOTES, notes)
    k = int(m.group(1)) if m else None
    if k is None and _INFERENCEX.search(notes):
        dp = _text(row.get("attention_dp")).lower() in ("true", "1", "yes")
        k = inferencex_draft_tokens(
            _text(row.get("framework")), _text(row.get("hardware")), _text(row.get("weight_dtype")), dp
        )
    if k is None:
        return f"{head}: the row states no draft length (spec_tokens, the draft tokens per step)"
    a = _stated(_ACCEPTANCE_NOTES, notes)
    acceptance = None
    if a:
        acceptance = float(a.group(1)) / (100 if a.group(2) == "%" else 1)
        if not 0 <= acceptance < 1:
            return f"{head}: the acceptance the row states, {a.group(0)!r}, is not in [0, 1)"
    return {"speculative": method, "spec_tokens": k, "acceptance": acceptance}


def with_acceptance(read: Mapping[str, Any], model: Any) -> dict[str, Any] | str:
    """``read`` with its acceptance: the row's, else the model preset's sourced MTP acceptance (where
    the preset's acceptance decays past its MTP modules, the constant α that gains the same tokens
    per step at the row's k: the sweep input is the same at every position); the reason to skip
    where neither exists."""
    if read["acceptance"] is not None:
        return dict(read)
    if model.mtp_acceptance > 0:
        k = int(read["spec_tokens"])
        if k <= model.num_mtp_layers or model.mtp_reuse_decay == 1:  # every position the module's own
            return dict(read, acceptance=float(model.mtp_acceptance))
        f64 = lambda x: torch.tensor(float(x), dtype=torch.float64)
        reuse = (f64(model.mtp_reuse_decay), f64(model.num_mtp_layers))
        gain = float(tokens_per_step(f64(model.mtp_acceptance), f64(k), k, reuse))
        return dict(read, acceptance=constant_acceptance(gain, k))
    return (
        f"speculative decoding ({read['speculative']}): the row states no acceptance and model preset "
        f"{model.name!r} has no sourced default (mtp_acceptance)"
    )
