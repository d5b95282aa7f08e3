"""The unit hypersphere S^{d−1} ⊂ ℝ^d: tangent projection, exponential / logarithm maps, transport.

Points are unit vectors x (…, d); tangent vectors v satisfy x·v = 0. Geodesics are great circles:
exp_x(v) = cos|v| x + sin|v| v/|v|, and the velocity a geodesic carries, transported to its end, is
−|v| sin|v| x + cos|v| v. Small-angle branches keep every map finite (and differentiable) at v = 0.
"""

from __future__ import annotations

import torch

_EPS = 1e-12


def project_tangent(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """(I − x xᵀ) g: the Riemannian gradient of a function whose Euclidean gradient at x is g."""
    return g - (g * x).sum(-1, keepdim=True) * x


def _sin_over(s: torch.Tensor) -> torch.Tensor:
    """sin(s)/s, with its series below 1e-4 (exact to float64 rounding there)."""
    small = s < 1e-4
    safe = torch.where(small, torch.ones_like(s), s)
    return torch.where(small, 1 - s * s / 6, torch.sin(safe) / safe)


def exp_map(x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Follow the great circle from x with initial velocity v for unit time."""
    s = v.norm(dim=-1, keepdim=True)
    y = torch.cos(s) * x + _sin_over(s) * v
    return y / y.norm(dim=-1, keepdim=True)  # renormalise: rounding must not drift off the sphere


def transport_along(x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The velocity v of the geodesic exp_x(t v), at t = 1 (parallel transport of v along itself)."""
    s = v.norm(dim=-1, keepdim=True)
    return -s * s * _sin_over(s) * x + torch.cos(s) * v


def log_map(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The tangent vector at x whose geodesic reaches y at unit time (y ≠ −x)."""
    c = (x * y).sum(-1, keepdim=True)
    u = y - c * x  # direction of y seen from x, of length sin θ
    theta = torch.atan2(u.norm(dim=-1, keepdim=True), c)  # accurate at small angles, where arccos is not
    return u / _sin_over(theta).clamp_min(_EPS)
