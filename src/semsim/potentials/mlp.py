"""V_θ(ξ, h) as an MLP, with its input-gradient written out as an explicit backward pass.

For V = w_L · σ(z_{L-1}), z_ℓ = W_ℓ a_{ℓ-1} + b_ℓ, a_0 = [ξ, h]:
    g_{L-1} = w_L ⊙ σ'(z_{L-1}),  g_{ℓ-1} = (W_ℓᵀ g_ℓ) ⊙ σ'(z_{ℓ-1}),  ∇_h V = W_{1,h}ᵀ g_1,
where W_{1,h} are the first layer's h-columns. These are ordinary tensor ops, so the parameter
gradient of a loss through f is plain first-order backprop (no create_graph).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from semsim import kernels
from semsim.potentials.base import Potential

_SQRT_2PI = math.sqrt(2 * math.pi)


def act_and_grad(z: torch.Tensor, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """σ(z) and σ'(z) together."""
    if kind == "gelu":  # exact (erf) GELU: σ = zΦ(z), σ' = Φ(z) + zφ(z)
        cdf = 0.5 * (1 + torch.erf(z * (1 / math.sqrt(2))))
        pdf = torch.exp(-0.5 * z * z) / _SQRT_2PI
        return z * cdf, cdf + z * pdf
    if kind == "silu":
        s = torch.sigmoid(z)
        return z * s, s * (1 + z * (1 - s))
    if kind == "tanh":
        t = torch.tanh(z)
        return t, 1 - t * t
    if kind == "softplus":
        return F.softplus(z), torch.sigmoid(z)
    raise ValueError(f"unknown activation {kind!r} (gelu, silu, tanh, softplus)")


class MLPPotential(Potential):
    """``depth`` hidden layers, as published: [ξ, h] → hidden (→ hidden)×(depth−1) → scalar, so
    depth + 1 linear layers (the published multi-ξ V_θ, depth 3: 1280→1024→1024→1024→1)."""

    def __init__(self, d_xi: int, d: int, hidden: int = 1024, depth: int = 3, act: str = "gelu"):
        super().__init__()
        if depth < 1:
            raise ValueError(f"an MLP potential needs at least one hidden layer (depth={depth})")
        self.in_xi = nn.Linear(d_xi, hidden, bias=True) if d_xi > 0 else None
        self.in_h = nn.Linear(d, hidden, bias=self.in_xi is None)  # [ξ, h] @ W1ᵀ split in two
        self.hidden = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(depth - 1))
        self.out = nn.Linear(hidden, 1)
        self.act = act

    def _first(self, xi: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        z = self.in_h(h)
        return z if self.in_xi is None else z + self.in_xi(xi)

    def energy(self, xi, h):
        z = self._first(xi, h)
        for layer in self.hidden:
            z = layer(act_and_grad(z, self.act)[0])
        return self.out(act_and_grad(z, self.act)[0]).squeeze(-1)

    def force(self, xi, h):
        if kernels.fused() and self.in_xi is not None and self.in_h.bias is None:
            from semsim.kernels.mlp_force import mlp_force  # the hand-written backward (same numbers)

            return mlp_force(self, xi, h)
        z = self._first(xi, h)
        dacts = []
        for layer in self.hidden:
            a, da = act_and_grad(z, self.act)
            dacts.append(da)
            z = layer(a)
        a, da = act_and_grad(z, self.act)
        V = self.out(a).squeeze(-1)
        g = self.out.weight.view(-1) * da  # ∂V/∂z_last
        for layer, da_prev in zip(reversed(self.hidden), reversed(dacts)):
            g = (g @ layer.weight) * da_prev  # W_ℓᵀ g ⊙ σ'(z_{ℓ-1})
        return -(g @ self.in_h.weight), V
