"""Splat attractors on the unit hypersphere: a store of von Mises–Fisher-like bumps and their energy.

Splat k has a centre μ_k ∈ S^{d−1}, an amplitude α_k > 0 and a concentration κ_k ∈ [κ_min, κ_max].
A query x ∈ S^{d−1} feels only its k nearest splats (by μ·x), with energy

    E_s(x) = −T · log Σ_{k ∈ kNN(x)} α_k · exp(κ_k (μ_k·x − 1) / T)

and Riemannian gradient (the neighbour set held fixed, as it is almost everywhere)

    grad E_s(x) = −(I − x xᵀ) Σ_k w_k κ_k μ_k,   w = softmax_k(log α_k + κ_k (μ_k·x − 1)/T).

The neighbours are found exactly by one matmul and a top-k (batched on the GPU; no index to rebuild
when splats move). Only the first ``n_active`` slots take part (a capacity curriculum grows it).
Usage counts and ages are kept per splat; :meth:`SplatStore.consolidate` merges near-duplicate
centres and prunes dead splats, re-seeding the freed slots where queries are least covered.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from semsim.geometry.sphere import project_tangent


class SplatStore(nn.Module):
    def __init__(self, dim: int, capacity: int, k: int = 64, kappa_min: float = 1.0, kappa_max: float = 50.0,
                 init: torch.Tensor | None = None):
        """``init``: (n, dim) vectors to place the first centres at (e.g. token embeddings), else random."""
        super().__init__()
        if not 0 < kappa_min < kappa_max:
            raise ValueError(f"κ bounds must satisfy 0 < kappa_min < kappa_max (got {kappa_min}, {kappa_max})")
        if not 1 <= k <= capacity:
            raise ValueError(f"k = {k} nearest splats needs 1 ≤ k ≤ capacity = {capacity}")
        self.k, self.kappa_min, self.kappa_max = k, kappa_min, kappa_max
        mu = torch.randn(capacity, dim)
        if init is not None:
            if init.shape[-1] != dim:
                raise ValueError(f"initial centres have dimension {init.shape[-1]}, the splats {dim}")
            mu[: len(init)] = init[:capacity]
        self.mu = nn.Parameter(F.normalize(mu, dim=-1))
        self.log_alpha = nn.Parameter(torch.zeros(capacity))
        self.kappa_raw = nn.Parameter(torch.zeros(capacity))  # κ at the middle of its range
        self.register_buffer("usage", torch.zeros(capacity))
        self.register_buffer("age", torch.zeros(capacity))
        self.register_buffer("n_active", torch.tensor(capacity))
        self._active = capacity  # n_active mirrored on the host: reading the buffer would sync the GPU

    def _load_from_state_dict(self, *args, **kwargs):
        super()._load_from_state_dict(*args, **kwargs)
        self._active = int(self.n_active)

    @property
    def capacity(self) -> int:
        return self.mu.shape[0]

    @property
    def active(self) -> int:
        return self._active

    @property
    def kappa(self) -> torch.Tensor:
        return self.kappa_min + (self.kappa_max - self.kappa_min) * torch.sigmoid(self.kappa_raw)

    def centres(self) -> torch.Tensor:
        return F.normalize(self.mu, dim=-1)

    def neighbours(self, x: torch.Tensor) -> torch.Tensor:
        """Indices (…, k) of the k splats nearest each query x (…, d), by cosine."""
        with torch.no_grad():
            mu = self.centres()[: self.active]
            return (x @ mu.to(x.dtype).T).topk(self.k, dim=-1).indices

    def _terms(self, x: torch.Tensor, T: float, idx: torch.Tensor | None):
        idx = self.neighbours(x) if idx is None else idx
        mu = self.centres()[idx]  # (…, k, d)
        kappa = self.kappa[idx]
        cos = (mu * x.unsqueeze(-2)).sum(-1)
        a = self.log_alpha[idx] + kappa * (cos - 1) / T
        return a, mu, kappa, idx

    def energy(self, x: torch.Tensor, T: float = 1.0, idx: torch.Tensor | None = None) -> torch.Tensor:
        """E_s per query, (…)."""
        a, *_ = self._terms(x, T, idx)
        return -T * torch.logsumexp(a, dim=-1)

    def grad(self, x: torch.Tensor, T: float = 1.0, idx: torch.Tensor | None = None):
        """(Riemannian gradient (…, d), E_s (…), responsibilities w (…, k), neighbour indices (…, k))."""
        a, mu, kappa, idx = self._terms(x, T, idx)
        w = torch.softmax(a, dim=-1)
        g = -((w * kappa).unsqueeze(-1) * mu).sum(-2)  # Euclidean ∂E/∂x
        return project_tangent(x, g), -T * torch.logsumexp(a, dim=-1), w, idx

    @torch.no_grad()
    def record_use(self, w: torch.Tensor, idx: torch.Tensor) -> None:
        """Usage: responsibility mass each splat received; age: steps since it last received any."""
        used = torch.zeros_like(self.usage).index_add_(0, idx.reshape(-1), w.reshape(-1).to(self.usage.dtype))
        self.usage.mul_(0.99).add_(used)
        self.age.add_(1).masked_fill_(used > 0, 0)

    def active_share(self, threshold: float = 1e-3) -> float:
        """Share of the in-use slots whose usage is above ``threshold``."""
        return float((self.usage[: self.active] > threshold).float().mean())

    @torch.no_grad()
    def reseed(self, slots: torch.Tensor, seeds: torch.Tensor) -> None:
        """Put fresh splats (amplitude 1, mid-range κ, usage 0, age 0) in ``slots`` at the points ``seeds``;
        with more slots than seeds the seeds are reused, jittered by ~0.25 rad (outside any merge radius) so no two splats coincide."""
        if len(slots) == 0:
            return
        n = len(slots)
        pick = seeds[torch.arange(n, device=seeds.device) % len(seeds)].to(self.mu.dtype)
        if n > len(seeds):
            jitter = torch.randn(n - len(seeds), pick.shape[-1], device=pick.device, dtype=pick.dtype)
            pick[len(seeds):] += 0.25 * project_tangent(F.normalize(pick[len(seeds):], dim=-1), jitter) \
                / pick.shape[-1] ** 0.5
        self.mu[slots] = F.normalize(pick, dim=-1)
        self.log_alpha[slots] = 0.0
        self.kappa_raw[slots] = 0.0
        self.usage[slots] = 0.0
        self.age[slots] = 0.0

    @torch.no_grad()
    def grow(self, n: int, seeds: torch.Tensor | None = None) -> int:
        """Bring the first ``n`` slots into use; the new ones start at ``seeds`` (cycled) if given, else
        at their initial centres. Returns how many were added."""
        if not self.k <= n <= self.capacity:
            raise ValueError(f"cannot use {n} splats: needs k = {self.k} ≤ n ≤ capacity = {self.capacity}")
        old = self.active
        if n > old and seeds is not None and len(seeds):
            self.reseed(torch.arange(old, n, device=self.mu.device), seeds)
        self.n_active.fill_(n)
        self._active = n
        return max(0, n - old)

    @torch.no_grad()
    def consolidate(self, merge_cos: float, dead_age: float, seeds: torch.Tensor) -> tuple[int, int]:
        """Merge near-duplicate splats (centres with cosine ≥ ``merge_cos``) and prune dead ones (unused
        for ``dead_age`` steps); freed slots are re-seeded at ``seeds`` (cycled; the caller passes the
        worst-covered queries). Returns (merged, pruned).

        A merge keeps the more used splat of a pair, moved to the usage-weighted mean direction, with
        the pair's summed amplitude and the larger κ, so the merged bump carries both bumps' mass."""
        n = self.active
        mu = self.centres()[:n]
        best, partner = nearest_other(mu)
        close = torch.nonzero(best >= merge_cos).flatten()
        close = close[best[close].argsort(descending=True)]  # closest pairs first
        usage = self.usage[:n].tolist()
        taken: set[int] = set()
        pairs = []  # (absorber, absorbed); each splat in at most one pair per call
        for a, b in zip(close.tolist(), partner[close].tolist()):
            if a in taken or b in taken:
                continue
            taken.update((a, b))
            pairs.append((a, b) if (usage[a], -a) >= (usage[b], -b) else (b, a))
        merged_slots = torch.tensor([b for _, b in pairs], dtype=torch.long, device=mu.device)
        if pairs:
            a = torch.tensor([a for a, _ in pairs], dtype=torch.long, device=mu.device)
            b = merged_slots
            ua, ub = self.usage[a].clamp_min(1e-6), self.usage[b].clamp_min(1e-6)
            self.mu[a] = F.normalize(ua[:, None] * mu[a] + ub[:, None] * mu[b], dim=-1).to(self.mu.dtype)
            self.log_alpha[a] = torch.logaddexp(self.log_alpha[a], self.log_alpha[b])
            self.kappa_raw[a] = torch.maximum(self.kappa_raw[a], self.kappa_raw[b])
            self.usage[a] += self.usage[b]
        dead = torch.nonzero(self.age[:n] >= dead_age).flatten()
        dead = dead[~torch.isin(dead, merged_slots)]
        self.reseed(torch.cat([merged_slots, dead]), seeds)
        return len(merged_slots), len(dead)


def nearest_other(mu: torch.Tensor, chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """For each unit row of ``mu``: the largest cosine to another row and that row's index, in row
    chunks (50,000 splats would need a 10 GB cosine matrix at once)."""
    best, partner = [], []
    for s in range(0, len(mu), chunk):
        cos = mu[s : s + chunk] @ mu.T
        rows = torch.arange(cos.shape[0], device=mu.device)
        cos[rows, rows + s] = -2.0  # not itself
        b, p = cos.max(dim=-1)
        best.append(b)
        partner.append(p)
    return torch.cat(best), torch.cat(partner)
