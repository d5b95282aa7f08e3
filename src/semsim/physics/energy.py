"""Energy bookkeeping of one integration step (means over tokens).

With E = T + V (kinetic ½m|v|², potential V(ξ, h)), one step splits as
    E_{ℓ+1} − E_ℓ = −D + W_ξ + R
D: kinetic energy removed by damping, ½m(|v_kick|² − |v_new|²) ≥ 0;
W_ξ: work done on the particle by the moving context, V(ξ_{ℓ+1}, h_{ℓ+1}) − V(ξ_ℓ, h_{ℓ+1});
R: the integrator's discretisation error, ΔT + [V(ξ_ℓ, h_{ℓ+1}) − V(ξ_ℓ, h_ℓ)] + D, which → 0 as dt → 0
   (O(dt²) per step). LayerNorm, when on, is a projection outside this balance.
"""

from __future__ import annotations

import torch


def kinetic(m: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return 0.5 * m.squeeze(-1) * (v * v).sum(-1)


def step_energy(m, v_old, v_kick, v_new, V_old, V_new_same_xi, V_new) -> dict[str, torch.Tensor]:
    """Per-token terms of one step; every entry has shape (B, T)."""
    T_old, T_new = kinetic(m, v_old), kinetic(m, v_new)
    D = kinetic(m, v_kick) - T_new
    return {
        "kinetic": T_new,
        "potential": V_new,
        "total": T_new + V_new,
        "dissipated": D,
        "context_work": V_new - V_new_same_xi,
        "residual": (T_new - T_old) + (V_new_same_xi - V_old) + D,
    }
