"""One layer of an SPLM: a damped (semi-implicit) Euler step of m ḧ = f − m γ ḣ.

    v ← v + dt·f/m          kick by the force
    v ← v / (1 + dt·γ)      implicit damping: stable for any dt·γ ≥ 0
    h ← h + dt·v            drift with the new velocity (symplectic-Euler ordering)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class StepResult:
    h: torch.Tensor
    v: torch.Tensor
    v_kick: torch.Tensor  # velocity after the kick, before damping (for energy bookkeeping)


def damped_euler_step(
    h: torch.Tensor, v: torch.Tensor, f: torch.Tensor, m: torch.Tensor, dt: float, gamma: float | torch.Tensor
) -> StepResult:
    v_kick = v + dt * f / m
    v_new = v_kick / (1 + dt * gamma)
    return StepResult(h + dt * v_new, v_new, v_kick)
