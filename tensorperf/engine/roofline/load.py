"""Serving under load: continuous batching with chunked prefill (vLLM, SGLang, TensorRT-LLM) at a
concurrency (closed loop), a request rate (open loop, Poisson arrivals) or a finite number of
requests queued at once (docs/model.md §10).

Each step is one forward pass over the decode tokens of the requests in flight plus prefill chunks,
at most M = max_num_tokens tokens. At b requests in flight per replica, a request of S̄ prompt and
T̄ output tokens spends (§10.1)

    N = max(n₀ + T̄ − 1, b·(S̄ + T̄ − 1)/M)  steps,  n₀ = max(1, ⌈S̄/M⌉),

n = N − (T̄ − 1) of them prefilling (more than n₀ where the budget binds: it waits for room). The
other b − 1 requests add, per step, (b − 1)(T̄ − 1)/N decode tokens, and their prompt chunks in
lumps: a step holds none with probability P₀ = (1 − n/N)^(b−1), else their mean load given some.
TTFT = n steps that carry the request's own chunk S/n; TPOT = a step carrying its own decode token
(each the mean over P₀); e2e = TTFT + (T̄ − 1)·TPOT.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from tensorperf.engine.physics import balance, ops, pipeline
from tensorperf.engine.physics import speculative as spec_physics
from tensorperf.engine.physics.attention import mean_chunked_keys, mean_decode_keys, mean_prefill_pairs
from tensorperf.engine.roofline import collectives, layer, overlap, speculative, stages
from tensorperf.engine.roofline.per_op import PerOp, each, left_sum
from tensorperf.engine.roofline.values import Deployment, Rates, Shortcuts, Workload

# the open loop's node batches (§10.2): closed loops at 1, 8, 64, ... requests in flight per replica
NODE_RATIO = 8
LOAD_NODES = 5  # up to 4,096 before the cap


@dataclass(frozen=True)
class Load:
    """What a request sees at the point's operating load, and what the deployment delivers."""

    ttft: torch.Tensor  # mean arrival -> first token, queueing included
    tpot: torch.Tensor  # mean time between a request's output tokens
    e2e: torch.Tensor  # mean arrival -> last token
    requests_per_s: torch.Tensor  # completed requests per second on the deployment
    output_per_s: torch.Tensor  # output tokens per second on the deployment
    step: torch.Tensor  # mean step time at the operating load
    per_op: Callable[[], PerOp]  # the mean step's per-op quantities, evaluated when asked (power)
    busy: torch.Tensor | None  # share of time a step runs (open loop; None: always)
    overloaded: torch.Tensor | None  # the request rate reaches the capacity (open loop only)

    @functools.cached_property
    def ops(self) -> PerOp:
        """Per-op quantities of the mean step (one layer of one replica-microbatch): only the power
        metrics read them, so a sweep of latencies does not pay for their interpolation."""
        return self.per_op()


@dataclass(frozen=True)
class _Loop:
    """A closed loop at b requests in flight per replica."""

    ttft: torch.Tensor
    tpot: torch.Tensor
    e2e: torch.Tensor
    step: torch.Tensor  # mean step time over a request's life: its passes' time / its steps
    steps: torch.Tensor  # the steps of a request's life
    ops: PerOp  # the mean step's per-op quantities
    admitted: torch.Tensor | float = 0.0  # the wait for the scheduler's check, in ttft and e2e (§10.1)

    def arriving_at_random(self) -> _Loop:
        """The same loop for requests that do not arrive just after a step boundary (an open loop's,
        or a queue the server already holds): without the closed loop's admission wait."""
        return dataclasses.replace(self, ttft=self.ttft - self.admitted, e2e=self.e2e - self.admitted, admitted=0.0)


def _prompt_phase(
    m: object, tokens: torch.Tensor, S: torch.Tensor, chunks: torch.Tensor, cp: torch.Tensor
) -> ops.Phase:
    """Prompt tokens (already per cp rank) of prompts of S tokens prefilled in ``chunks`` chunks: each
    attends causally, pairs(S)/S on average, and re-reads its prompt's cache (chunks + 1)/2 times."""
    return ops.Phase(
        tokens=tokens,
        pairs=tokens * mean_prefill_pairs(m, S) / S,
        kv_read=tokens * cp * (chunks + 1) / 2,
        sequences=tokens,  # (the attention core does not use it)
        absorbed=False,
    )


def _step(
    w: Workload,
    r: Rates,
    d: Deployment,
    s: Shortcuts,
    decoding: torch.Tensor,
    prompts: tuple[tuple[torch.Tensor, torch.Tensor, torch.Tensor], ...],
    completing: torch.Tensor,
) -> tuple[torch.Tensor, PerOp]:
    """(time, per-op quantities) of one step of one replica-microbatch: ``decoding`` sequences add a
    token each at the mean context S̄ + T̄/2; ``prompts`` = (tokens, prompt length, chunks) of
    prompt chunks; ``completing`` prompts end in the step (their first token's logits)."""
    m, cp, tr, spec = w.model, d.layout.cp, w.serving, w.speculation
    S, T = tr.mean_prompt, tr.mean_output
    keys = decoding * mean_decode_keys(m, S + T / 2, mean_chunked_keys(m, S, torch.clamp(T - 1, min=1))) / cp
    parts = [ops.Phase(tokens=decoding, pairs=keys, kv_read=keys, sequences=decoding, absorbed=True)]
    if spec is not None:  # each decoding sequence verifies k + 1 positions (docs/model.md §3.14)
        parts = [speculative.verify_phase(spec, decoding, keys)]
    parts += [_prompt_phase(m, tokens / cp, length, chunks, cp) for tokens, length, chunks in prompts]
    tokens = left_sum(p.tokens for p in parts)
    mixed = ops.Phase(tokens=tokens, pairs=keys, kv_read=keys, sequences=parts[0].sequences + completing, absorbed=True)
    per_op = layer.phase_ops(w, r, d, s, mixed, attention_parts=tuple(parts))
    coll = collectives.phase_comm(w, r, d, s, tokens)
    for part in parts:
        coll = collectives.with_context_parallel(w, r, d, s, coll, part, per_op["attn"][2])
    halves = overlap.halves(w, r, d, s, mixed, tuple(parts))
    _, total, slowest = stages.compose(w, d, s, per_op, coll, False, halves)
    t = pipeline.decode_step(total, slowest, d.layout.micro)
    if spec is not None:  # k draft steps on the decoding sequences (none where no sequence decodes)
        draft = speculative.draft_time(
            w, r, d, s, speculative.drafter(w, r, d, s, decoding, keys), decoding, keys, S + T / 2
        )
        t = spec_physics.step_time(t, torch.where(decoding > 0, draft, torch.zeros_like(draft)), spec.k)
    return (t + r.efficiency.step_overhead if s.overhead else t), per_op


def _life_counts(w: Workload) -> tuple[Any, Any, torch.Tensor]:
    """(Ts, Tw, n₀) of a request's life (module docstring): its decode steps' count Ts − 1 and their
    budget tokens Tw − 1 (both T̄ − 1 without speculation; docs/model.md §3.14: (T̄ − 1)/E steps of
    k + 1 budget tokens each), and its fewest prefill steps n₀ = max(1, ⌈S̄/M⌉)."""
    tr, spec = w.serving, w.speculation
    T = tr.mean_output
    Ts = Tw = T
    if spec is not None:
        Ts = 1 + (T - 1) / spec.tokens_per_step
        Tw = 1 + (T - 1) * (spec.k + 1) / spec.tokens_per_step
    return Ts, Tw, torch.clamp(torch.ceil(tr.mean_prompt / tr.budget), min=1)


def closed_loop(w: Workload, r: Rates, d: Deployment, s: Shortcuts, b: torch.Tensor) -> _Loop:
    """TTFT, TPOT and e2e of a request at b requests in flight per replica (module docstring). The
    own prompt's TTFT is averaged over its length (Simpson's rule where lengths span a range); its
    chunks: ⌈S/M⌉, or the population's n scaled by S/S̄ where the budget binds."""
    tr, spec = w.serving, w.speculation
    S, T, M = tr.mean_prompt, tr.mean_output, tr.budget
    Ts, Tw, n0 = _life_counts(w)
    # each of the m pipeline microbatches carries 1/m of the others' load, and the request's own
    # token or chunk: every microbatch is taken as heavy as the request's own (exact at m = 1)
    share = 1 / d.layout.micro
    steps = torch.maximum(n0 + Ts - 1, b * (S + Tw - 1) / M)
    n = steps - (Ts - 1)
    others = torch.clamp(b - 1, min=0)  # (b < 1 only where the batch does not split: masked)
    decoding = others * (Ts - 1) / steps  # the others' decode steps: one sequence per step each, evenly spread
    # the others' prompt chunks come in lumps: each other request prefills in a given step with
    # probability n/N (random phases), so a step holds none of them with probability (1 − n/N)^(b−1)
    # and, otherwise, their mean load over the steps that hold some
    idle = torch.pow(1 - n / steps, others)
    busy = 1 - idle
    lumped = torch.where(busy > 0, 1 / torch.where(busy > 0, busy, 1), 0)  # 1 / P(some chunk)
    population = (others * S / steps * lumped * share, S, n)
    done = others / steps * lumped * share

    def expected(
        dec: torch.Tensor, own: tuple[tuple[torch.Tensor, torch.Tensor, torch.Tensor], ...], own_done: torch.Tensor
    ) -> tuple[torch.Tensor, PerOp]:
        """A step's mean time and per-op quantities: without the others' chunks, or with them."""
        t_idle, o_idle = _step(w, r, d, s, dec, own, own_done)
        t_busy, o_busy = _step(w, r, d, s, dec, (*own, population), own_done + done)
        mix = lambda a, b: idle * a + busy * b
        return mix(t_idle, t_busy), {k: each(mix, o_idle[k], o_busy[k]) for k in o_busy}

    tpot, dec_ops = expected(1 + decoding * share, (), torch.zeros_like(done))
    decode_step = tpot  # the steps that run while an arrival waits for the scheduler (below)
    if spec is not None:  # a step yields E of the request's tokens
        tpot = tpot / spec.tokens_per_step

    def prefilling(length: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, PerOp]:
        """(TTFT, prefill steps, their summed per-op quantities) of a prompt of ``length`` tokens."""
        own_n = torch.maximum(torch.clamp(torch.ceil(length / M), min=1), n * (length / S))
        own = (length / own_n, length, own_n)
        t, o = expected(decoding * share, (own,), 1 / own_n)
        return own_n * t, own_n, {k: each(lambda x: own_n * x, v) for k, v in o.items()}

    ttft, prefills, pre_ops = prefilling(S)  # the mean length: the fixed length itself at r = 1
    if tr.prompt_range is not None:  # Simpson's rule over [r·L, L] where r < 1, the mean node kept at r = 1
        low, high = prefilling(tr.prompt_range[0]), prefilling(tr.prompt_range[1])
        fixed = tr.prompt_range[2]
        rule = lambda a, m, b: torch.where(fixed, m, (a + 4 * m + b) / 6)
        ttft, prefills = rule(low[0], ttft, high[0]), rule(low[1], prefills, high[1])
        pre_ops = {k: each(rule, low[2][k], pre_ops[k], high[2][k]) for k in pre_ops}
    e2e = ttft + (T - 1) * tpot
    life = prefills + (Ts - 1)  # steps of a request's life
    mean_ops = {k: each(lambda p, q: (p + (Ts - 1) * q) / life, pre_ops[k], dec_ops[k]) for k in dec_ops}
    step = e2e / life
    # admission (§10.1): the loop's next request arrives just after a step boundary (its predecessor's
    # last token ends a step; the engine starts the next one at once, without it), and the scheduler
    # checks for arrivals every R decode steps at a phase of its own: it joins after j steps, j uniform
    # in 1..R, (R + 1)/2 on average; none where it is alone (the engine idles, and checks at once)
    polls = 1 if tr.admission is None else tr.admission
    admitted = torch.clamp(others, max=1) * (polls + 1) / 2 * decode_step
    ttft, e2e = ttft + admitted, e2e + admitted
    if tr.adp_balance is not None:  # attention-DP balancing (§10.5): the prefill waits for every rank
        wait = balance.balance_wait(b / e2e, d.layout.dp, tr.adp_balance * step)
        ttft, e2e = ttft + wait, e2e + wait
    if tr.request_overhead is not None:  # the stack's time outside the passes, before the first token
        ttft, e2e = ttft + tr.request_overhead, e2e + tr.request_overhead
    return _Loop(ttft=ttft, tpot=tpot, e2e=e2e, step=step, steps=life, ops=mean_ops, admitted=admitted)


def _sakasegawa_queue(rho: torch.Tensor, servers: torch.Tensor, cv2: torch.Tensor) -> torch.Tensor:
    """Mean number waiting in an M/G/c queue (Sakasegawa 1977, with the Allen–Cunneen factor
    (1 + c_s²)/2 for Poisson arrivals): ρ^√(2(c+1)) / (1 − ρ) · (1 + c_s²)/2; exact for M/M/1 and,
    at c = 1, the Pollaczek–Khinchine mean."""
    return rho ** torch.sqrt(2 * (servers + 1)) / (1 - rho) * (1 + cv2) / 2


@dataclass(frozen=True)
class _Burst:
    """k requests arriving together (per replica), their prompts prefilled first come, first served."""

    ttft: torch.Tensor  # mean over the k
    tpot: torch.Tensor  # mean over the k
    first_done: torch.Tensor  # when the first of them ends
    duration: torch.Tensor  # when the last of them ends
    ops: PerOp  # per-op quantities of the mean step of the burst
    steps: torch.Tensor  # its steps
    steps_time: torch.Tensor  # their time


def burst(w: Workload, r: Rates, d: Deployment, s: Shortcuts, k: torch.Tensor) -> _Burst:
    """k requests that arrive at once (docs/model.md §10.3). Their k·S̄ prompt tokens are prefilled in
    order at the budget M, less the decode tokens of those already prefilled (k/2 on average over
    the n_b prefill steps, none when they fit in one step): request i gets its first token after
    ⌈(i + 1)·S̄/P⌉ steps of t_b (P prompt tokens per step), then all decode, T̄ − 1 steps each at
    batch k without prefill (t_d); request i shares n_b·(1 − (i + 1)/k) of its decode steps with the
    later prompts."""
    tr, share, spec = w.serving, 1 / d.layout.micro, w.speculation
    S, T, M = tr.mean_prompt, tr.mean_output, tr.budget
    Td = T - 1  # the decode steps of a request (speculative: (T̄ − 1)/E, docs/model.md §3.14)
    if spec is not None:
        Td = Td / spec.tokens_per_step
    work = k * S
    first = torch.clamp(work / M, min=1)  # prefill steps without decode tokens
    decoders = k / 2 * (1 - 1 / first)
    busy = decoders if spec is None else decoders * (spec.k + 1)  # (their budget tokens)
    per_step = torch.minimum(torch.clamp(M - busy, min=M / 2), work)  # (decode gets at most half)
    n_b = work / per_step
    chunks = torch.clamp(S / per_step, min=1)
    t_b, o_b = _step(w, r, d, s, decoders * share, ((per_step * share, S, chunks),), k / n_b * share)
    t_d, o_d = _step(w, r, d, s, k * share, (), torch.zeros_like(k))
    ttft = torch.clamp((k + 1) / (2 * k) * n_b, min=1) * t_b
    shared = torch.minimum(n_b * (k - 1) / (2 * k), Td)  # decode steps in the prefill, on average
    last = t_d if spec is None else t_d / spec.tokens_per_step
    tpot = torch.where(T > 1, (shared * t_b + (Td - shared) * t_d) / torch.clamp(T - 1, min=1), last)
    steps = n_b + T - 1 if spec is None else n_b + Td
    ops = {key: each(lambda a, b: (n_b * a + Td * b) / steps, o_b[key], o_d[key]) for key in o_d}
    first_done = torch.clamp(S / per_step, min=1) * t_b + Td * t_d
    duration = n_b * t_b + Td * t_d
    if tr.request_overhead is not None:  # the stack's time outside the passes, before the first token
        ro = tr.request_overhead
        ttft, first_done, duration = ttft + ro, first_done + ro, duration + ro
    return _Burst(ttft, tpot, first_done, duration, ops, steps, n_b * t_b + Td * t_d)


def serving_load(w: Workload, r: Rates, d: Deployment, s: Shortcuts) -> Load:
    """The serving metrics at the point's load: the closed loop at ``batch`` (steady state), an open
    loop at ``request_rate`` (``batch``: the cap on requests in flight; between one request in
    flight and the cap, a request's times are affine in the others in flight, §10.2), or
    ``num_requests`` queued at once (a burst of the first ``batch``, then the steady state, §10.3)."""
    tr, dp = w.serving, d.layout.dp
    T = tr.mean_output
    cap_b = d.replica_batch
    cap = closed_loop(w, r, d, s, cap_b)
    if tr.request_rate is None and tr.num_requests is None:
        rps = w.batch / cap.e2e  # Little's law over the closed loop's B requests
        return Load(cap.ttft, cap.tpot, cap.e2e, rps, rps * T, cap.step, lambda: cap.ops, None, None)
    if tr.request_rate is None:
        return _offline(w, r, d, s, cap, cap_b)
    # Poisson arrivals come at random times: their wait for the scheduler's check is the one below
    cap = cap.arriving_at_random()
    one = closed_loop(w, r, d, s, torch.ones_like(cap_b)).arriving_at_random()
    lam = tr.request_rate / dp  # Poisson arrivals split evenly over the replicas
    # a request's times are convex in the others in flight (and kink where the token budget starts to
    # bind, §10.1): a chord from one request to the cap reads them high between its ends, the more the
    # farther the cap. They are read on the chords between closed loops at 1, 8, 64, ... requests in
    # flight, up to the cap (§10.2): a few loops that do not depend on the rate
    loops, nodes = [one], [torch.ones_like(cap_b)]
    top = float(cap_b.max())
    for j in range(1, LOAD_NODES):  # a loop over a handful of node batches, not grid points
        if NODE_RATIO**j >= top:
            break
        b_j = torch.clamp(cap_b, max=NODE_RATIO**j)
        loops.append(closed_loop(w, r, d, s, b_j).arriving_at_random())
        nodes.append(b_j)
    loops.append(cap)
    nodes.append(cap_b)
    # the others an arrival sees, L = λ·e(L) (PASTA + Little), on the chord whose range holds it: on
    # chord j, e(L) = e_j + (L − l_j)·g_j ⇒ L = λ(e_j − l_j·g_j)/(1 − λg_j); the first chord that holds
    # its own solution (e is increasing and convex, so λ·e(L) − L changes sign once); the cap's b_c − 1
    # where none does
    others = cap_b - 1
    found = torch.zeros_like(others, dtype=torch.bool)
    chord = torch.zeros_like(others)
    for j in range(len(loops) - 1):
        l_a, l_b = nodes[j] - 1, nodes[j + 1] - 1
        g = (loops[j + 1].e2e - loops[j].e2e) / torch.clamp(l_b - l_a, min=1e-9)
        fits = lam * g < 1
        cand = lam * (loops[j].e2e - l_a * g) / torch.where(fits, 1 - lam * g, 1)
        hit = ~found & fits & (cand <= l_b) & (l_b > l_a)
        others = torch.where(hit, torch.clamp(cand, min=0), others)
        chord = torch.where(hit, float(j), chord)
        found = found | hit
    others = torch.minimum(others, cap_b - 1)
    chord = torch.where(found, chord, float(len(loops) - 2))

    # where on its chord each point lies, computed once; the chords no point uses are skipped
    used = [j for j in range(len(loops) - 1) if bool((chord == j).any())]
    masks = {j: chord == j for j in used}
    theta = torch.zeros_like(others)
    for j in used:
        l_a, l_b = nodes[j] - 1, nodes[j + 1] - 1
        theta = torch.where(masks[j], torch.clamp((others - l_a) / torch.clamp(l_b - l_a, min=1e-9), 0, 1), theta)

    def at(values: list[torch.Tensor]) -> torch.Tensor:
        """A quantity at the operating point's others, on its chord between the node loops' values."""
        out = None
        for j in used:  # (the few chords in use)
            v = values[j] + theta * (values[j + 1] - values[j])
            out = v if out is None else torch.where(masks[j], v, out)
        return out

    rho = lam * cap.e2e / cap_b  # occupancy of the cap's slots
    overloaded = rho >= 1
    if tr.num_requests is not None:
        # a finite run of N arrivals reaches the steady-state queue only where its relaxation time,
        # ~1/(1 − ρ)² arrivals in heavy traffic, is shorter than the run: occupancy at most 1 − 1/√N
        n_r = tr.num_requests / dp
        rho_ok = torch.minimum(rho, 1 - 1 / torch.sqrt(n_r))
    else:
        rho_ok = torch.where(overloaded, 0.5, rho)  # finite values where masked
    wait = _sakasegawa_queue(rho_ok, cap_b, tr.output_cv2) / lam
    if tr.client_queue is not None:  # a client-held queue: TTFT starts when the request is sent
        wait = wait * (1 - tr.client_queue)
    e_service = at([p.e2e for p in loops])
    step = at([p.step for p in loops])
    busy = 1 - torch.exp(-lam * e_service)  # P(some request in flight): Poisson occupancy (M/G/∞)
    # + the time to the scheduler's next check, R/2 steps at a random arrival (the running step's
    # rest at R = 1), where a step runs
    polls = 1 if tr.admission is None else tr.admission
    ttft = busy * step * polls / 2 + wait + at([p.ttft for p in loops])
    tpot = at([p.tpot for p in loops])
    ops = lambda: {k: each(lambda *v: at(list(v)), *(p.ops[k] for p in loops)) for k in cap.ops}  # noqa: E731
    if tr.num_requests is None:
        e2e = ttft + (T - 1) * tpot
        return Load(ttft, tpot, e2e, tr.request_rate, tr.request_rate * T, step, ops, busy, overloaded)
    # a finite run: the last of N arrivals comes (N − 1)/λ after the first. Above the capacity
    # μ = b_c/e_c the queue also grows through the run (a fluid queue, §10.2): the first b_c requests
    # fill the slots, then request j waits (j − b_c)·(1/μ − 1/λ) more, and the run ends
    # (N − b_c)/μ + e_c after it began. A finite run is never overloaded.
    mu = cap_b / cap.e2e
    behind = torch.clamp(1 / mu - 1 / lam, min=0)
    late = torch.clamp(n_r - cap_b, min=0)
    queued = behind / 2 * late**2 / n_r
    ttft = ttft + (queued if tr.client_queue is None else queued * (1 - tr.client_queue))
    e2e = ttft + (T - 1) * tpot
    total = torch.maximum((n_r - 1) / lam + e2e, late / mu + cap.e2e)
    rps = tr.num_requests / total
    return Load(ttft, tpot, e2e, rps, rps * T, step, ops, busy, None)


def _offline(w: Workload, r: Rates, d: Deployment, s: Shortcuts, cap: _Loop, cap_b: torch.Tensor) -> Load:
    """N requests queued at once, N/dp per replica (trtllm-bench, vLLM's offline throughput): the first
    k = min(N/dp, b_c) arrive together (a burst), the rest enter as slots free, at the closed loop's
    steady rate b_c/e_c (the burst's first-come prefill staggers their ends, §10.3). Request j > b_c
    waits for a slot: from the first end, j − b_c slots at that rate; its TTFT counts that wait where
    the server holds the queue, not where a client does (``queue="client"``: benchmark_serving's
    ``--num-prompts N --max-concurrency b``, a closed loop of N requests whose first b start together)."""
    tr, T = w.serving, w.serving.mean_output
    if tr.client_queue is None:  # the server holds the queue: a freed slot takes a waiting request at once
        cap = cap.arriving_at_random()
    else:  # a client sends one as a slot frees: the closed loop's admission wait where it does
        server = cap.arriving_at_random()
        q = tr.client_queue
        cap = dataclasses.replace(
            cap, ttft=q * cap.ttft + (1 - q) * server.ttft, e2e=q * cap.e2e + (1 - q) * server.e2e
        )
    n_r = tr.num_requests / d.layout.dp
    k = torch.minimum(n_r, cap_b)
    b = burst(w, r, d, s, k)
    later = n_r - k
    # a slot is held from admission to the last token: a server-held queue admits a request once the
    # stack's work before its first pass (request_overhead) is done, so a slot's life is e_c less that;
    # a client holding the queue holds its slot through it (it sends the next request on a response)
    life = cap.e2e
    if tr.request_overhead is not None:
        life = life - tr.request_overhead * (1 if tr.client_queue is None else 1 - tr.client_queue)
    rate = cap_b / life
    # the later requests run in waves of b_c, each a slot's life; a last, partial wave of
    # the p left over takes the life of its own p requests (a burst of p: its prompts, then T̄ − 1
    # steps at batch p), not p/b_c of a full wave's, since its last request still decodes every
    # token (§10.3)
    full = torch.floor(later / cap_b)
    part = later - full * cap_b
    tail = burst(w, r, d, s, torch.clamp(part, min=1))
    total = b.duration + full * life + torch.where(part > 0, tail.duration, 0.0)
    waited = b.first_done + later / (2 * rate)  # (from the run's start: the server-side queue)
    if tr.client_queue is not None:  # sent as a slot frees: no wait counted (§10.3)
        waited = waited * (1 - tr.client_queue)
    ttft = (k * b.ttft + later * (waited + cap.ttft)) / n_r
    # the partial wave decodes at its own batch p
    tpot = (k * b.tpot + full * cap_b * cap.tpot + part * tail.tpot) / n_r
    rps = tr.num_requests / total
    # the mean step over the run: the burst's steps, then the closed loop's
    w_burst = k * b.steps / (k * b.steps + later * cap.steps)
    ops = lambda: {  # noqa: E731
        key: each(lambda a, c: w_burst * a + (1 - w_burst) * c, b.ops[key], cap.ops[key]) for key in cap.ops
    }
    step = w_burst * (b.steps_time / b.steps) + (1 - w_burst) * cap.step
    return Load(ttft, tpot, ttft + (T - 1) * tpot, rps, rps * T, step, ops, None, None)
