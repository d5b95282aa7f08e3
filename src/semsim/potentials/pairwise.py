"""PARFLM's pairwise potential V_φ over the top-k earlier tokens, with a closed-form force.

For token t and a chosen earlier token s ≤ t (the k best by a small score network, picked with a
straight-through Gumbel top-k), the published "structural" form is

    V_φ(h_t, h_s) = Φ(‖l_t − l_s‖²/n_l) · Θ(θ_t · θ_s/n_θ),   l = LN(W_l h) (type),  θ = W_θ h (angle),

with Φ, Θ scalar MLPs. The "competitive" variant adds a repulsive per-type-dimension term
Σ_i ρ_i exp(−(l_ti − l_si)²), ρ_i = softplus(·) ≥ 0, so that nearby types push apart and specialise.
U_t = scale_ℓ · Σ_s w_ts V_φ(h_t, h_s). The source h_s is detached (that keeps the model causal),
and the force on h_t is −∂U_t/∂h_t, written out below.

Memory: selecting the top-k among s ≤ t needs the scores of all pairs. We materialise one (B, T, T)
score matrix and, transiently, fp32 copies of it for the Gumbel noise and the causal mask, all under
no_grad — the k chosen scores are then recomputed with gradient from the gathered keys, so no T²
tensor is kept for the backward and none of its gradients is ever formed. The structural force itself
runs through :mod:`semsim.kernels.pair_force` (Φ and Θ's hidden units never reach memory) unless
``SEMSIM_KERNELS=reference``; the competitive variant keeps the PyTorch form below.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from semsim import kernels
from semsim.potentials.mlp import act_and_grad


class ScalarMLP(nn.Module):
    """g: ℝ → ℝ, one hidden layer; returns g(x) and g'(x) together (closed form)."""

    def __init__(self, hidden: int = 128, act: str = "gelu"):
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(hidden) * 0.5)
        self.b1 = nn.Parameter(torch.randn(hidden) * 0.5)
        self.w2 = nn.Parameter(torch.randn(hidden) / math.sqrt(hidden))
        self.b2 = nn.Parameter(torch.zeros(()))
        self.act = act

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, da = act_and_grad(x.unsqueeze(-1) * self.w1 + self.b1, self.act)
        return a @ self.w2 + self.b2, (da * self.w1) @ self.w2


def layer_norm_backward(xhat: torch.Tensor, inv_std: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """∂/∂x of an affine-free LayerNorm x̂ = (x − μ)/σ, given upstream g = ∂/∂x̂."""
    return inv_std * (g - g.mean(-1, keepdim=True) - xhat * (g * xhat).mean(-1, keepdim=True))


class PairPotential(nn.Module):
    def __init__(self, d: int, n_layers: int, k: int = 8, score_dim: int = 32, type_dim: int = 32,
                 angle_dim: int = 32, hidden: int = 128, type_ln: bool = True, competitive: bool = False,
                 include_self: bool = True, scale_init: float = 0.1):
        super().__init__()
        self.k, self.type_ln, self.include_self = k, type_ln, include_self
        self.score_q = nn.Linear(d, score_dim, bias=False)
        self.score_k = nn.Linear(d, score_dim, bias=False)
        self.W_l = nn.Linear(d, type_dim, bias=False)
        self.W_th = nn.Linear(d, angle_dim, bias=False)
        for lin in (self.W_l, self.W_th):
            nn.init.normal_(lin.weight, 0.0, 1.0 / math.sqrt(d))
        self.phi = ScalarMLP(hidden)
        self.theta = ScalarMLP(hidden)
        self.layer_scale = nn.Parameter(torch.full((n_layers,), scale_init))
        self.rep = nn.Parameter(torch.full((type_dim,), -2.0)) if competitive else None

    # ------------------------------------------------------------------ routing
    def select(self, h: torch.Tensor, tau: float, noise: bool, generator=None,
               past: torch.Tensor | None = None, t0: int = 0):
        """Top-k earlier tokens per position: (idx (B,T,k), weights w (B,T,k), valid (B,T,k)).

        Candidates are the rows of ``past`` (default: h itself, detached); h's first token sits at
        absolute position ``t0`` of ``past``, so token i may pick s ≤ t0 + i. ``idx`` indexes ``past``."""
        B, T, _ = h.shape
        src = h.detach() if past is None else past
        S = src.shape[1]
        q, kk = self.score_q(h), self.score_k(src)
        k = min(self.k, S)
        # The choice itself carries no gradient: pick under no_grad over the one (B, T, S) score matrix,
        # then recompute the k chosen scores with grad. Same values and gradients as differentiating
        # through the full matrix, but the backward never touches a T² tensor (and none is kept).
        with torch.no_grad():
            scores = (q @ kk.transpose(1, 2)) / math.sqrt(q.shape[-1])
            allowed = torch.ones(T, S, dtype=torch.bool, device=h.device).tril(t0 + (0 if self.include_self else -1))
            wide = torch.promote_types(scores.dtype, torch.float32)
            if noise:  # Gumbel(0, 1) noise: sampling without replacement ∝ softmax(score)
                u = (torch.rand(scores.shape, device=h.device, generator=generator) if generator is not None
                     else torch.rand_like(scores, dtype=torch.float32)).clamp_(1e-9, 1 - 1e-9)  # rand_like: traceable
                gumbel = -torch.log(-torch.log(u)).to(wide)
                scores = scores.to(wide) + gumbel
            scores = scores.to(wide).masked_fill(~allowed, float("-inf"))
            top, idx = scores.topk(k, dim=-1)
            valid = torch.isfinite(top)
        if kernels.fused():
            k_sel = self._gather(kk, idx)  # (B, T, k, score_dim)
            chosen = (q.unsqueeze(2).to(wide) * k_sel.to(wide)).sum(-1) / math.sqrt(q.shape[-1])
        else:  # the reference: the gradient flows back through the full (B, T, S) matrix
            chosen = ((q @ kk.transpose(1, 2)) / math.sqrt(q.shape[-1])).to(wide).gather(-1, idx)
        if noise:
            chosen = chosen + gumbel.gather(-1, idx)
        top = chosen / tau
        soft = torch.softmax(top.masked_fill(~valid, -1e9), dim=-1) * valid
        w = valid.to(soft.dtype) + (soft - soft.detach())  # straight-through: exactly 1 forward, softmax gradient
        idx = torch.where(valid, idx, t0 + torch.arange(T, device=h.device).view(1, T, 1))  # invalid → self, w = 0
        return idx, w, valid

    # ------------------------------------------------------------------ energy and force
    def _features(self, h: torch.Tensor):
        l = self.W_l(h)
        if self.type_ln:
            mu, var = l.mean(-1, keepdim=True), l.var(-1, keepdim=True, unbiased=False)
            inv = torch.rsqrt(var + 1e-5)
            l = (l - mu) * inv
        else:
            inv = None
        return l, inv, self.W_th(h)

    @staticmethod
    def _gather(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        B, T, k = idx.shape
        return x.gather(1, idx.reshape(B, T * k, 1).expand(-1, -1, x.shape[-1])).view(B, T, k, x.shape[-1])

    def _pair_terms(self, h, idx, past=None):
        l_t, inv, th_t = self._features(h)
        l_src, _, th_src = self._features(h.detach() if past is None else past)  # sources h_s are detached
        l_s, th_s = self._gather(l_src, idx), self._gather(th_src, idx)
        u = l_t.unsqueeze(2) - l_s  # (B, T, k, type_dim)
        # Φ and Θ read per-dimension means, ‖u‖²/n_l and θ_t·θ_s/n_θ: O(1) at any width, so the
        # scalar MLPs start in their useful range (a constant rescale of the published arguments).
        r = (u * u).mean(-1)
        c = (th_t.unsqueeze(2) * th_s).mean(-1)
        return l_t, inv, u, r, c, th_s

    def energy(self, h: torch.Tensor, idx: torch.Tensor, w: torch.Tensor, layer: int,
               past: torch.Tensor | None = None) -> torch.Tensor:
        """U_t per token (B, T); differentiable reference for the closed-form force."""
        _, _, u, r, c, _ = self._pair_terms(h, idx, past)
        V = self.phi(r)[0] * self.theta(c)[0]
        if self.rep is not None:
            V = V + (F.softplus(self.rep) * torch.exp(-u * u)).sum(-1)
        return self.layer_scale[layer] * (w * V).sum(-1)

    def force(self, h: torch.Tensor, idx: torch.Tensor, w: torch.Tensor, layer: int,
              past: torch.Tensor | None = None):
        """(f = −∂U_t/∂h_t, U_t); sources are rows of ``past`` (default h, detached)."""
        if kernels.fused() and self.rep is None and self.phi.act == self.theta.act:
            return self._force_fused(h, idx, w, layer, past)
        l_t, inv, u, r, c, th_s = self._pair_terms(h, idx, past)
        P, dP = self.phi(r)
        Q, dQ = self.theta(c)
        V = P * Q
        s = self.layer_scale[layer]
        ws = s * w  # (B, T, k)
        n_l, n_th = u.shape[-1], th_s.shape[-1]
        g_l = ((ws * dP * Q).unsqueeze(-1) * (2 / n_l) * u).sum(2)  # ∂U/∂l_t
        if self.rep is not None:
            rho = F.softplus(self.rep)
            e = torch.exp(-u * u)
            V = V + (rho * e).sum(-1)
            g_l = g_l + (ws.unsqueeze(-1) * rho * e * (-2 * u)).sum(2)
        g_th = ((ws * P * dQ).unsqueeze(-1) * th_s).sum(2) / n_th  # ∂U/∂θ_t
        if inv is not None:
            g_l = layer_norm_backward(l_t, inv, g_l)
        grad = g_l @ self.W_l.weight + g_th @ self.W_th.weight
        return -grad, (ws * V).sum(-1)

    def _force_fused(self, h, idx, w, layer, past):
        """The structural form through :class:`semsim.kernels.pair_force.PairForce`: the same numbers,
        without the (B, T, k, hidden) tensors of Φ and Θ."""
        from semsim.kernels.pair_force import pair_force

        B, T, k = idx.shape
        l_t, inv, th_t = self._features(h)
        l_src, _, th_src = self._features(h.detach() if past is None else past)
        g_l, g_th, U = pair_force(l_t.reshape(B * T, -1), self._gather(l_src, idx).reshape(B * T, k, -1),
                                  th_t.reshape(B * T, -1), self._gather(th_src, idx).reshape(B * T, k, -1),
                                  (self.layer_scale[layer] * w).reshape(B * T, k), self.phi, self.theta)
        g_l, g_th = g_l.view(B, T, -1), g_th.view(B, T, -1)
        if inv is not None:
            g_l = layer_norm_backward(l_t, inv, g_l)
        return -(g_l @ self.W_l.weight + g_th @ self.W_th.weight), U.view(B, T)
