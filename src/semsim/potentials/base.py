"""The scalar potential V(ξ, h) interface: an energy and its force f = -∇_h V.

Every potential writes its force in closed form (:meth:`Potential.force`), so training needs only
first-order backprop; :meth:`Potential.force_autograd` is the published reference, which builds
a second-order graph (``create_graph=True``) and is kept for tests and benchmarks.
"""

from __future__ import annotations

import torch
import torch.nn as nn


def autograd_force(energy_fn, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(−∇_h Σ E, E) for ``E = energy_fn(h)`` through autograd, create_graph when grad is on.

    The gradient is taken w.r.t. an alias of h that only ``energy_fn`` sees, so quantities computed
    from h outside it (e.g. PARFLM's routing weights) are held fixed, as in the closed forms.
    """
    outer_grad = torch.is_grad_enabled()
    with torch.enable_grad():
        h_ = h.view_as(h) if h.requires_grad else h.detach().requires_grad_(True)
        E = energy_fn(h_)
        (g,) = torch.autograd.grad(E.sum(), h_, create_graph=outer_grad)
    return -g, E


class Potential(nn.Module):
    def energy(self, xi: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """V per token: ξ (B, T, D_ξ), h (B, T, d) → (B, T)."""
        raise NotImplementedError

    def force(self, xi: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(f = -∇_h V, V) in closed form."""
        raise NotImplementedError

    def force_autograd(self, xi: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(f, V) through autograd; differentiable w.r.t. parameters (create_graph) when grad is on."""
        return autograd_force(lambda x: self.energy(xi, x), h)
