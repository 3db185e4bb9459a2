"""Collectives in the alpha-beta model, over a scale-up tier and a scale-out tier.

Conventions of nccl-tests doc/PERFORMANCE.md: ``nbytes`` is the full buffer for all-reduce, the
total gathered/scattered size for all-gather/reduce-scatter, and the per-rank send buffer (self
chunk included) for all-to-all. ``bw`` is the achievable per-GPU per-direction bandwidth
(peak · efficiency). Every formula carries an (n − 1) factor, so a group of 1 costs exactly 0
with no branch. Sources: docs/model.md §3.9 and §8.7-8.8; GenZ collective_times.py; calculon network.py.

Placement (docs/model.md §8.11): a group of n ranks laid out innermost-first on domains of G GPUs has
n_in = min(n, G) ranks per domain and n_out = n / n_in domains.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from types import MappingProxyType

import torch


@dataclass(frozen=True)
class Tiers:
    """Per-GPU achievable bandwidth (B/s, per direction) and per-step latency (s) of each tier."""

    bw_in: torch.Tensor
    lat_in: torch.Tensor
    bw_out: torch.Tensor
    lat_out: torch.Tensor
    domain: torch.Tensor  # GPUs per scale-up domain
    mesh: torch.Tensor | float = 0.0  # 1 where the domain is a full mesh of point-to-point links

    def bw_within(self, n_in: torch.Tensor) -> torch.Tensor:
        """Per-GPU bandwidth a group of n_in GPUs of one domain can use. Behind a switch, all of it;
        in a full mesh of G GPUs each GPU has one link to each peer, so (n_in − 1)/(G − 1) of it
        (at least one link)."""
        share = torch.clamp(n_in - 1, min=1) / self._peers
        return self.bw_in * torch.where(self._meshed, share, 1.0)

    @functools.cached_property
    def _peers(self) -> torch.Tensor:
        return torch.clamp(self.domain - 1, min=1)

    @functools.cached_property
    def _meshed(self) -> torch.Tensor:
        return torch.as_tensor(self.mesh, device=self.domain.device) > 0


def ring_all_reduce(
    nbytes: torch.Tensor, n: torch.Tensor, bw: torch.Tensor | float, lat: torch.Tensor | float
) -> torch.Tensor:
    """2(n−1)·α + 2(n−1)/n · S / W (reduce-scatter + all-gather; NCCL busbw factor 2(n−1)/n)."""
    return nbytes * (2 * (n - 1) / (n * bw)) + 2 * (n - 1) * lat  # (group factors first: few axes)


def tree_all_reduce(
    nbytes: torch.Tensor, n: torch.Tensor, bw: torch.Tensor | float, lat: torch.Tensor | float
) -> torch.Tensor:
    """Double binary tree: 2·⌈log2 n⌉·α + 2(n−1)/n · S / W (bandwidth term as the ring's; NCCL #545)."""
    return nbytes * (2 * (n - 1) / (n * bw)) + 2 * torch.ceil(torch.log2(n)) * lat


def all_gather(
    nbytes: torch.Tensor, n: torch.Tensor, bw: torch.Tensor | float, lat: torch.Tensor | float
) -> torch.Tensor:
    """Ring all-gather (or reduce-scatter) of a total of S bytes: (n−1)·α + (n−1)/n · S / W."""
    return nbytes * ((n - 1) / (n * bw)) + (n - 1) * lat


reduce_scatter = all_gather


def point_to_point(nbytes: torch.Tensor, bw: torch.Tensor, lat: torch.Tensor) -> torch.Tensor:
    """One message: α + S / W."""
    return lat + nbytes / bw


def one_shot_all_reduce(
    nbytes: torch.Tensor, n: torch.Tensor, bw: torch.Tensor | float, lat: torch.Tensor | float
) -> torch.Tensor:
    """Peer-memory one-shot all-reduce: every rank reads the other n − 1 ranks' whole buffers over
    the scale-up links and reduces them itself, behind one barrier: α_os + (n−1)·S/W.
    Sources: TensorRT-LLM cpp/tensorrt_llm/kernels/customAllReduceKernels.cu (oneShotAllReduceKernel,
    strategy ONESHOT); vLLM csrc/custom_all_reduce.cuh (cross_device_reduce_1stage). A group of one
    costs 0 (min(n − 1, 1) on α: the runtime calls no kernel)."""
    return nbytes * ((n - 1) / bw) + torch.clamp(n - 1, max=1) * lat


def two_shot_all_reduce(
    nbytes: torch.Tensor, n: torch.Tensor, bw: torch.Tensor | float, lat: torch.Tensor | float
) -> torch.Tensor:
    """Peer-memory two-shot all-reduce: a reduce-scatter (each rank reads its 1/n slice from the n − 1
    peers and reduces it) then an all-gather of the reduced slices, two phases behind a barrier
    each: 2·α_ts + 2(n−1)/n·S/W. Sources: TensorRT-LLM customAllReduceKernels.cu
    (twoShotAllReduceKernel, strategy TWOSHOT); vLLM csrc/custom_all_reduce.cuh
    (cross_device_reduce_2stage). A group of one costs 0."""
    return nbytes * (2 * (n - 1) / (n * bw)) + 2 * torch.clamp(n - 1, max=1) * lat


@dataclass(frozen=True)
class CustomAllReduce:
    """A serving stack's peer-memory all-reduce kernels on each point's device (docs/model.md §10.4):
    the per-GPU bandwidth they reach (η·W_scale-up, B/s per direction), their latencies (s) and where
    they run (the stack has them and the device has measured parameters)."""

    bw: torch.Tensor
    lat_one_shot: torch.Tensor
    lat_two_shot: torch.Tensor
    enabled: torch.Tensor  # bool

    def time(self, nbytes: torch.Tensor, n: torch.Tensor, tiers: Tiers) -> tuple[torch.Tensor, torch.Tensor]:
        """(time of the faster of one-shot and two-shot, whether they may run): only where the stack
        has them and the group lies inside one scale-up domain (peer memory does not cross it). On a
        full mesh a group of n GPUs uses the links to its n − 1 peers (Tiers.bw_within)."""
        bw = dataclasses.replace(tiers, bw_in=self.bw).bw_within(n)
        t = torch.minimum(
            one_shot_all_reduce(nbytes, n, bw, self.lat_one_shot), two_shot_all_reduce(nbytes, n, bw, self.lat_two_shot)
        )
        return t, self.enabled & (n <= tiers.domain)


def split(n: torch.Tensor, domain: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(ranks per domain, domains) of a group of n ranks placed innermost-first."""
    n_in = torch.minimum(n, domain)
    return n_in, n / n_in


def flat_link(n: torch.Tensor, tiers: Tiers) -> tuple[torch.Tensor, torch.Tensor]:
    """(bandwidth, latency) seen by a flat algorithm over a group of n ranks (docs/model.md §8.7): the
    domain's links, or once the group leaves the domain the inner rings share its egress,
    W = min(W_in, n_in · W_out), at the scale-out latency."""
    n_in, n_out = split(n, tiers.domain)
    crosses = n_out > 1
    bw_in = tiers.bw_within(n_in)
    bw = torch.where(crosses, torch.minimum(bw_in, n_in * tiers.bw_out), bw_in)
    return bw, torch.where(crosses, tiers.lat_out, tiers.lat_in)


def group_all_reduce(nbytes: torch.Tensor, n: torch.Tensor, tiers: Tiers) -> torch.Tensor:
    """Flat ring all-reduce over a group that may span domains."""
    return ring_all_reduce(nbytes, n, *flat_link(n, tiers))


def group_tree_all_reduce(nbytes: torch.Tensor, n: torch.Tensor, tiers: Tiers) -> torch.Tensor:
    """Double binary tree over a group that may span domains: the ring's bandwidth term with
    2·⌈log2 n⌉ latency steps."""
    return tree_all_reduce(nbytes, n, *flat_link(n, tiers))


def hierarchical_all_reduce(nbytes: torch.Tensor, n: torch.Tensor, tiers: Tiers) -> torch.Tensor:
    """Reduce-scatter inside the domain, all-reduce of S/n_in across domains, all-gather inside."""
    n_in, n_out = split(n, tiers.domain)
    inner = ring_all_reduce(nbytes, n_in, tiers.bw_within(n_in), tiers.lat_in)
    return inner + ring_all_reduce(nbytes / n_in, n_out, tiers.bw_out, tiers.lat_out)


def group_all_to_all(
    send_bytes: torch.Tensor, n: torch.Tensor, tiers: Tiers, dedup: torch.Tensor | None = None
) -> torch.Tensor:
    """All-to-all of a per-rank send buffer over a group that may span domains (§8.8): the intra
    part (n_in−1)/n·S/W_in and the inter part (n−n_in)/n·S/W_out overlap (max), latency
    (n_in−1)·α_in + (n−n_in)·α_out. ``dedup``: the inter part's bytes over a plain all-to-all's for a
    runtime that sends a token once per remote domain (physics.routing.dedup_factor, §3.5.1); None:
    every copy crosses (NCCL's all-to-all, DeepEP's low-latency mode)."""
    n_in, _ = split(n, tiers.domain)
    # per-byte times of the two parts (they depend on few axes), then the message
    intra = send_bytes * ((n_in - 1) / (n * tiers.bw_within(n_in)))
    remote = n - n_in if dedup is None else (n - n_in) * dedup  # (remote copies per n)
    inter = send_bytes * (remote / (n * tiers.bw_out))
    return torch.maximum(intra, inter) + ((n_in - 1) * tiers.lat_in + (n - n_in) * tiers.lat_out)


def domain_crossings(pp: torch.Tensor, stage_gpus: torch.Tensor, domain: torch.Tensor) -> torch.Tensor:
    """How many of the pp − 1 stage boundaries cross a domain when stages of `stage_gpus` GPUs are
    laid out in rank order (docs/model.md §8.11): about one every domain/stage_gpus stages."""
    return torch.minimum(pp - 1, torch.floor((pp - 1) * stage_gpus / domain))


def pipeline_hop(nbytes: torch.Tensor, inside_domain: torch.Tensor, tiers: Tiers) -> torch.Tensor:
    """p2p between consecutive pipeline stages, on the tier the boundary crosses."""
    bw = torch.where(inside_domain, tiers.bw_within(torch.full_like(tiers.domain, 2.0)), tiers.bw_out)
    lat = torch.where(inside_domain, tiers.lat_in, tiers.lat_out)
    return point_to_point(nbytes, bw, lat)


# The all-reduce algorithms, by the name the ``allreduce`` sweep input takes.
ALL_REDUCE = MappingProxyType(
    {"ring": group_all_reduce, "tree": group_tree_all_reduce, "hierarchical": hierarchical_all_reduce}
)
