"""Top-k routing statistics of an MoE layer (docs/model.md §3.5.1): how much more than its mean share
the most loaded expert-parallel rank receives, and how many scale-up domains a token's experts span.

Pure tensor functions: vectorized, differentiable in the token count (and in the counts E, k, n,
which enter only through few-axis coefficients), no loop over points.

Routing model: each of T tokens picks k distinct experts of E uniformly at random, independently of
the other tokens; the E experts are placed E/n per rank on n EP ranks (E/D per domain on D domains).
Real routers are skewed (a few hot experts), so these are lower bounds on the imbalance of a real
stack without redundant experts; the ``imbalance`` sweep input replaces it by a measured value.
"""

from __future__ import annotations

import torch

# Blom's plotting position for the largest of n normal order statistics (alpha = 3/8)
BLOM_ALPHA = 0.375
TINY = 1e-30  # floor of a square root's argument and of the pairs per rank (float32 keeps 1/TINY)


def expected_max_normal(n: torch.Tensor) -> torch.Tensor:
    """E[max of n i.i.d. standard normals] by Blom's approximation, Φ⁻¹((n − 3/8)/(n + 1/4))
    (G. Blom, Statistical Estimates and Transformed Beta-Variables, 1958). Exactly 0 at n = 1;
    against the exact values (numerical integration): +4.5% at n = 2 (0.5895 vs 0.5642), +1.9% at
    n = 4, +0.7% at 8, within 0.5% for 16 <= n <= 256."""
    return torch.special.ndtri((n - BLOM_ALPHA) / (n - 2 * BLOM_ALPHA + 1))


def imbalance(tokens: torch.Tensor, E: torch.Tensor, k: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
    """Expected max/mean of the token-expert pairs the n EP ranks receive from ``tokens`` tokens
    routed uniformly to k of E experts (E/n per rank): λ >= 1, exactly 1 at n = 1 (and where every
    rank holds every chosen expert, k = E), → 1 as tokens → ∞.

    A rank's load is a sum of T i.i.d. per-token counts, each hypergeometric (k draws from E experts,
    E/n of them on the rank): mean μ = T·k/n, variance μ·(1 − 1/n)·c with c = (E − k)/(E − 1), third
    cumulant/variance g = (1 − 2/n)·(E − 2k)/(E − 2). The n loads sum to T·k, so they are exchangeable
    with correlation −1/(n − 1); for normal loads that makes max − mean exactly σ·sqrt(n/(n − 1))·(max
    of n i.i.d. standard normals) (X_i − X̄ representation), i.e. sqrt(μ·c)·e_n with e_n Blom's
    (:func:`expected_max_normal`). The loads are skewed (Poisson-like when μ is small): the expected
    max is taken as the Cornish-Fisher quantile at the same plotting position (E. A. Cornish and
    R. A. Fisher, Moments and cumulants in the specification of distributions, 1937), adding
    (e_n² − 1)/6·g:

        E[max] ≈ μ + e_n·sqrt(c·μ) + (e_n² − 1)/6·g,   λ = E[max]/μ = 1 + a/sqrt(μ) + b/μ,

    then bounded by what is possible: at least one pair lands somewhere (E[max] >= 1: λ >= 1/μ) and a
    rank receives at most min(k, E/n) pairs per token (λ <= min(n, E/k)).

    Error against Monte-Carlo sampling of top-k routing (the presets' (E, k), n = 2..64, T = 1..8192;
    tests/test_moe_routing.py): within 2.2% for μ >= 8 pairs per rank, 4% for 1 <= μ < 8 (but +5% to
    +8% at n = 2, μ = 1: Blom's error at n = 2), 7% for 1/2 <= μ < 1, 15% for 1/4 <= μ < 1/2, up to
    +30% below μ = 1/4 with n >= 32 (fewer pairs than a quarter of the ranks: the counts'
    discreteness). The plain normal approximation (b = 0) under-estimates by up to 28% at μ = 1/8
    (n = 64) and 15% at μ = 1.

    ``tokens`` may be 0 (a phase without tokens): λ is then its upper bound, finite, so that a count
    of zero times λ is exactly 0."""
    # (a dense model, E = k = 0, is taken as E = k = 1: λ = 1; its routed work is 0 anyway)
    safe_E, safe_k = torch.clamp(E, min=1), torch.clamp(k, min=1)
    e = expected_max_normal(n)
    c = (safe_E - safe_k) / torch.clamp(safe_E - 1, min=1)  # 0 at E = k: then `most` below is 1
    a = e * torch.sqrt(torch.clamp(c, min=TINY))  # (clamped: a finite derivative at c = 0)
    b = (e * e - 1) / 6 * (1 - 2 / n) * (safe_E - 2 * safe_k) / torch.clamp(safe_E - 2, min=1)
    most = torch.minimum(n, safe_E / safe_k)  # a rank takes at most min(k, E/n) of a token's pairs
    mu = torch.clamp(tokens * (safe_k / n), min=TINY)
    ratio = 1 + a / torch.sqrt(mu) + b / mu
    return torch.clamp(torch.minimum(torch.maximum(ratio, 1 / mu), most), min=1)


def _miss(E: torch.Tensor, k: torch.Tensor, D: torch.Tensor) -> torch.Tensor:
    """P(a token's k distinct experts all lie outside one given domain of E/D experts) =
    C(E − E/D, k)/C(E, k), by log-gamma (0 where E − E/D < k: every token reaches every domain)."""
    rest = E - E / D
    reach = rest >= k
    safe = torch.where(reach, rest, k)  # (a finite log-gamma where the probability is 0)
    log = torch.lgamma(safe + 1) - torch.lgamma(safe - k + 1) - torch.lgamma(E + 1) + torch.lgamma(E - k + 1)
    return torch.where(reach, torch.exp(log), torch.zeros_like(log))


def remote_domains(E: torch.Tensor, k: torch.Tensor, D: torch.Tensor) -> torch.Tensor:
    """Expected number of other scale-up domains a token must reach when its k distinct experts are
    drawn uniformly from E experts spread E/D per domain over D domains: (D − 1)·(1 − C(E − E/D, k) /
    C(E, k)) (each domain is missed with the hypergeometric probability; by symmetry the token's own
    domain is hit as often as any other). For E ≫ k this is (D − 1)·(1 − (1 − 1/D)^k). A stack that
    deduplicates sends a token once per such domain instead of once per remote expert (DeepEP's
    normal-mode dispatch: one RDMA message per destination node, forwarded over NVLink inside it;
    DeepSeek-V3 technical report, section 3.2.2, and the DeepEP README). DeepSeek-V3's node-limited routing caps it
    at M − 1 = 3 (M = 4 nodes per token), a property of the router not modelled here."""
    return (D - 1) * (1 - _miss(E, k, D))


def dedup_factor(E: torch.Tensor, k: torch.Tensor, D: torch.Tensor) -> torch.Tensor:
    """The inter-domain bytes of a deduplicating all-to-all over a plain one: a token's k copies send
    (D − 1)/D·k of them to other domains on average; deduplicated, :func:`remote_domains` of them.
    The ratio D·(1 − C(E − E/D, k)/C(E, k))/k is <= 1 (1 at k = 1 and where D = 1)."""
    safe_D = torch.clamp(D, min=1)
    ratio = safe_D * (1 - _miss(E, k, safe_D)) / torch.clamp(k, min=1)
    return torch.where(safe_D > 1, ratio, torch.ones_like(ratio))
