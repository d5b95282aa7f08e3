"""Underdamped Langevin dynamics on the unit hypersphere (unit mass), for sampling exp(−E(x)/T).

One step, with v tangent at x, friction γ and temperature T:

    v ← v − dt·grad E(x) − dt·γ·v + √(2γT·dt)·P_x ξ      ξ ~ N(0, I), P_x = I − x xᵀ
    x ← exp_x(dt·v),  v ← its velocity transported to the new x (exact along the great circle)

T = 0 is the deterministic mode (damped gradient flow), used for evaluation.
"""

from __future__ import annotations

from typing import Callable

import torch

from semsim.geometry.sphere import exp_map, project_tangent, transport_along


def langevin_step(x: torch.Tensor, v: torch.Tensor, grad: torch.Tensor, dt: float, friction: float,
                  temperature: float = 0.0, generator: torch.Generator | None = None):
    """One step from (x, v) given grad E(x): (x, v) after it. Differentiable (models unroll it)."""
    v = v - dt * grad - dt * friction * v
    if temperature > 0:
        xi = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        v = v + (2 * friction * temperature * dt) ** 0.5 * project_tangent(x, xi)
    step = dt * v
    x_new = exp_map(x, step)
    return x_new, project_tangent(x_new, transport_along(x, step) / dt)  # drop rounding's normal part


@torch.no_grad()
def sphere_langevin(x: torch.Tensor, grad_fn: Callable[[torch.Tensor], torch.Tensor], steps: int = 200,
                    dt: float = 1e-3, friction: float = 0.1, temperature: float = 1.0,
                    v: torch.Tensor | None = None, generator: torch.Generator | None = None,
                    trace: Callable[[int, torch.Tensor], None] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``steps`` steps from unit vectors x (…, d); returns (x, v). ``grad_fn(x)`` is the Riemannian
    gradient of E; ``trace(step, x)`` is called after every step (e.g. to record the energy)."""
    v = torch.zeros_like(x) if v is None else project_tangent(x, v)
    for i in range(steps):
        x, v = langevin_step(x, v, grad_fn(x), dt, friction, temperature, generator)
        if trace is not None:
            trace(i, x)
    return x, v
