"""The scalar potential V(ξ, h) interface: an energy and its force f = -∇_h V.

Every potential writes its force in closed form (:meth:`Potential.force`), so training needs only
first-order backprop; :meth:`Potential.force_autograd` is the published reference, which builds
a second-order graph (``create_graph=True``) and is kept for tests and benchmarks.
"""

from __future__ import annotations

import torch
import torch.nn as nn


class Potential(nn.Module):
    def energy(self, xi: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """V per token: ξ (B, T, D_ξ), h (B, T, d) → (B, T)."""
        raise NotImplementedError

    def force(self, xi: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(f = -∇_h V, V) in closed form."""
        raise NotImplementedError

    def force_autograd(self, xi: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(f, V) through autograd; differentiable w.r.t. parameters (create_graph) when grad is on."""
        outer_grad = torch.is_grad_enabled()
        with torch.enable_grad():
            h_ = h if h.requires_grad else h.detach().requires_grad_(True)
            V = self.energy(xi, h_)
            (g,) = torch.autograd.grad(V.sum(), h_, create_graph=outer_grad)
        return -g, V
