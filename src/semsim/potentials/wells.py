"""Structured potentials SQ1–SQ4: quadratic wells whose shape is read off the context ξ.

Centres μ(ξ), precisions and weights are linear functions of ξ (for multi-ξ, of the K channels
flattened into one K·d vector). Forces are closed form, and the attractor centres of every token
are available at zero cost through :meth:`centres`.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from semsim import kernels
from semsim.kernels.dispatch import compute_dtype
from semsim.per_forward import PerForward
from semsim.potentials.base import Potential
from semsim.potentials.mlp import MLPPotential

# Precisions are softplus(·) + A_MIN: strictly positive wells, so every well has a true minimum.
A_MIN = 1e-3


class DiagonalWell(Potential):
    """SQ1: V = ½ a(ξ)ᵀ (h − μ(ξ))² + b(ξ), a > 0; f = −a ⊙ (h − μ)."""

    def __init__(self, d_xi: int, d: int):
        super().__init__()
        self.mu = nn.Linear(d_xi, d)
        self.prec = nn.Linear(d_xi, d)
        self.bias = nn.Linear(d_xi, 1)

    def _shape(self, xi):
        return self.mu(xi), F.softplus(self.prec(xi)) + A_MIN, self.bias(xi).squeeze(-1)

    def energy(self, xi, h):
        mu, a, b = self._shape(xi)
        return 0.5 * (a * (h - mu) ** 2).sum(-1) + b

    def force(self, xi, h):
        mu, a, b = self._shape(xi)
        delta = h - mu
        return -a * delta, 0.5 * (a * delta * delta).sum(-1) + b

    def centres(self, xi, h=None):
        return self.mu(xi).unsqueeze(-2), torch.ones(*xi.shape[:-1], 1, device=xi.device)


class LowRankWell(Potential):
    """SQ2: V = ½ (h − μ)ᵀ A (h − μ) + b with A = U Uᵀ + diag(λ), λ > 0; f = −A (h − μ).

    ``u_from_context``: U(ξ) is a linear function of ξ (default) or one learned d×r matrix.
    """

    def __init__(self, d_xi: int, d: int, rank: int = 4, u_from_context: bool = True):
        super().__init__()
        self.d, self.rank = d, rank
        self.mu = nn.Linear(d_xi, d)
        self.lam = nn.Linear(d_xi, d)
        self.bias = nn.Linear(d_xi, 1)
        if u_from_context:
            self.U = nn.Linear(d_xi, d * rank)
            nn.init.normal_(self.U.weight, 0.0, 0.02 / rank**0.5)
        else:
            self.U_static = nn.Parameter(torch.randn(d, rank) * 0.02)
        self.u_from_context = u_from_context

    def _U(self, xi):
        if self.u_from_context:
            return self.U(xi).view(*xi.shape[:-1], self.d, self.rank)
        return self.U_static

    def _terms(self, xi, h):
        mu, lam, b = self.mu(xi), F.softplus(self.lam(xi)) + A_MIN, self.bias(xi).squeeze(-1)
        delta = h - mu
        U = self._U(xi)
        proj = (delta.unsqueeze(-1) * U).sum(-2)  # Uᵀδ, (..., r)
        V = 0.5 * ((proj * proj).sum(-1) + (lam * delta * delta).sum(-1)) + b
        return delta, lam, U, proj, V

    def energy(self, xi, h):
        return self._terms(xi, h)[-1]

    def force(self, xi, h):
        delta, lam, U, proj, V = self._terms(xi, h)
        Aδ = (U * proj.unsqueeze(-2)).sum(-1) + lam * delta  # U (Uᵀδ) + λ ⊙ δ
        return -Aδ, V

    def centres(self, xi, h=None):
        return self.mu(xi).unsqueeze(-2), torch.ones(*xi.shape[:-1], 1, device=xi.device)


class MixtureWells(Potential, PerForward):
    """SQ3: K diagonal wells, E_k = ½ a_kᵀ (h − μ_k)²,  V = −τ logsumexp_k(−E_k/τ + log π_k) + b.

    Force f = −Σ_k q_k a_k ⊙ (h − μ_k), q = softmax_k(−E_k/τ + log π_k) the responsibilities.
    """

    def __init__(self, d_xi: int, d: int, n_wells: int = 8, tau: float = 1.0):
        super().__init__()
        self.K, self.d, self.tau = n_wells, d, tau
        self.mu = nn.Linear(d_xi, n_wells * d)
        self.prec = nn.Linear(d_xi, n_wells * d)
        self.logit_pi = nn.Linear(d_xi, n_wells)
        self.bias = nn.Linear(d_xi, 1)

    def _terms(self, xi, h):
        shape = (*xi.shape[:-1], self.K, self.d)
        mu = self.mu(xi).view(shape)
        a = (F.softplus(self.prec(xi)) + A_MIN).view(shape)
        delta = h.unsqueeze(-2) - mu
        E = 0.5 * (a * delta * delta).sum(-1)  # (..., K)
        s = -E / self.tau + F.log_softmax(self.logit_pi(xi), dim=-1)
        V = -self.tau * torch.logsumexp(s, dim=-1) + self.bias(xi).squeeze(-1)
        return a, delta, s, V

    def energy(self, xi, h):
        return self._terms(xi, h)[-1]

    def _packed_weights(self, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """The four maps side by side: [μ | precision | π-logits | b | 0…], in the matmul dtype.

        Zero rows pad the width to a multiple of 64: unaligned output rows (2·8·256 + 9 = 4,105) made
        cuBLAS fall back to slow kernels on an H100."""
        maps = (self.mu, self.prec, self.logit_pi, self.bias)
        W, b = torch.cat([m.weight for m in maps]), torch.cat([m.bias for m in maps])
        pad = -W.shape[0] % 64
        if pad:
            W, b = torch.cat([W, W.new_zeros(pad, W.shape[1])]), torch.cat([b, b.new_zeros(pad)])
        return W.to(dtype), b.to(dtype)

    def build_per_forward(self, h0: torch.Tensor, streaming: bool) -> dict[str, torch.Tensor]:
        if not kernels.fused():
            return {}
        W, b = self._packed_weights(compute_dtype(h0))
        return {"W": W, "b": b}

    def packed(self, xi):
        """The four maps in one matmul, (…, 2Kd + K + 1 + pad); the weights built once per forward
        (:mod:`semsim.per_forward`) or, outside one, here."""
        W, b = self.per_forward("W"), self.per_forward("b")
        if W is None:
            W, b = self._packed_weights(compute_dtype(xi))
        return F.linear(xi, W, b)

    def force(self, xi, h):
        if kernels.fused():  # one matmul, then one pass each way (semsim.kernels.wells_force)
            from semsim.kernels.wells_force import WellsForce

            f, V = WellsForce.apply(self.packed(xi), h, self.K, self.tau, A_MIN)
            return f.to(torch.promote_types(h.dtype, xi.dtype)), V
        a, delta, s, V = self._terms(xi, h)
        q = torch.softmax(s, dim=-1)
        return -(q.unsqueeze(-1) * a * delta).sum(-2), V

    def centres(self, xi, h=None):
        """(μ_k (…, K, d), mixture weights π_k or, given h, responsibilities q_k)."""
        mu = self.mu(xi).view(*xi.shape[:-1], self.K, self.d)
        if h is None:
            return mu, torch.softmax(self.logit_pi(xi), dim=-1)
        return mu, torch.softmax(self._terms(xi, h)[2], dim=-1)


class HybridWell(Potential):
    """SQ4: the SQ2 well plus a small MLP residual; V and f are the sums of the two."""

    def __init__(self, d_xi: int, d: int, rank: int = 4, hidden: int = 128, act: str = "gelu"):
        super().__init__()
        self.well = LowRankWell(d_xi, d, rank)
        self.residual = MLPPotential(d_xi, d, hidden=hidden, depth=1, act=act)

    def energy(self, xi, h):
        return self.well.energy(xi, h) + self.residual.energy(xi, h)

    def force(self, xi, h):
        f1, V1 = self.well.force(xi, h)
        f2, V2 = self.residual.force(xi, h)
        return f1 + f2, V1 + V2

    def centres(self, xi, h=None):
        return self.well.centres(xi)
