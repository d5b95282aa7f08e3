"""Splat attractors on the unit hypersphere: a store of von Mises–Fisher-like bumps and their energy.

Splat k has a centre μ_k ∈ S^{d−1}, an amplitude α_k > 0 and a concentration κ_k ∈ [κ_min, κ_max].
A query x ∈ S^{d−1} feels only its k nearest splats (by μ·x), with energy

    E_s(x) = −T · log Σ_{k ∈ kNN(x)} α_k · exp(κ_k (μ_k·x − 1) / T)

and Riemannian gradient (the neighbour set held fixed, as it is almost everywhere)

    grad E_s(x) = −(I − x xᵀ) Σ_k w_k κ_k μ_k,   w = softmax_k(log α_k + κ_k (μ_k·x − 1)/T).

The neighbours are found exactly by one matmul and a top-k (batched on the GPU; no index to rebuild
when splats move). Usage counts and ages are kept per splat for consolidation.
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

    @property
    def kappa(self) -> torch.Tensor:
        return self.kappa_min + (self.kappa_max - self.kappa_min) * torch.sigmoid(self.kappa_raw)

    def centres(self) -> torch.Tensor:
        return F.normalize(self.mu, dim=-1)

    def neighbours(self, x: torch.Tensor) -> torch.Tensor:
        """Indices (…, k) of the k splats nearest each query x (…, d), by cosine."""
        with torch.no_grad():
            return (x @ self.centres().T).topk(self.k, dim=-1).indices

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
