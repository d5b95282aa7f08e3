"""Energy bookkeeping of the integration, one layer at a time (per-token terms, shape (B, T)).

With E_ℓ = T(v_ℓ) + V(ξ_ℓ, h_ℓ), T = ½m|v|², one SPLM step ℓ → ℓ+1 (kick, damping, drift,
LayerNorm, new context) splits exactly as

    E_{ℓ+1} − E_ℓ = −D + R_dt + W_LN + W_ξ + Σ_i W_i          (W_attn for an attention layer)

D       ``dissipated``: ½m(|v_kick|² − |v_new|²) ≥ 0, the kinetic energy damping removes.
R_dt    ``discretisation``: the potential force's kick work plus V's change along the drift,
        dt·f_θ·v̄ + V(ξ_ℓ, h′) − V(ξ_ℓ, h_ℓ); the integrator's O(dt²) local error (0 for the exact flow).
W_LN    ``layernorm``: the projection's change of V, V(ξ_ℓ, LN(h′)) − V(ξ_ℓ, h′).
W_ξ     ``context_work``: work of the moving context, V(ξ_{ℓ+1}, h_{ℓ+1}) − V(ξ_ℓ, h_{ℓ+1}).
W_i     ``<name>_work``: work of each force beside f_θ (PARFLM's pair force, Fock's register
        exchange), dt·f_i·v̄ with v̄ = (v + v_kick)/2. The kick's ΔT is exactly dt·f·v̄, linear in f,
        so it splits over the forces without remainder.
W_attn  ``attention_work``: an attention block moves h and leaves v alone; ΔE is the change of V.

``residual`` is what ΔE leaves after every named term: rounding only, so a residual above it means
the step applied a force the books did not see.
"""

from __future__ import annotations

import torch


def kinetic(m: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return 0.5 * m.squeeze(-1) * (v * v).sum(-1)


def step_energy(m, dt: float, v_old, v_kick, v_new, V_start, V_drift, V_ln, V_end, f_theta,
                other_forces: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The terms of one integration step. V_start = V(ξ_ℓ, h_ℓ), V_drift = V(ξ_ℓ, h′) after the drift,
    V_ln = V(ξ_ℓ, LN(h′)), V_end = V(ξ_{ℓ+1}, h_{ℓ+1})."""
    v_bar = 0.5 * (v_old + v_kick)

    def work(f: torch.Tensor) -> torch.Tensor:
        return dt * (f * v_bar).sum(-1)

    T_new = kinetic(m, v_new)
    terms = {
        "dissipated": kinetic(m, v_kick) - T_new,
        "discretisation": work(f_theta) + V_drift - V_start,
        "layernorm": V_ln - V_drift,
        "context_work": V_end - V_ln,
        **{f"{name}_work": work(f) for name, f in other_forces.items()},
    }
    return _close(terms, kinetic(m, v_old) + V_start, T_new, V_end)


def attention_energy(m, v, V_start, V_end) -> dict[str, torch.Tensor]:
    """An attention layer of a hybrid: h moves, v is carried unchanged."""
    T = kinetic(m, v)
    return _close({"attention_work": V_end - V_start}, T + V_start, T, V_end)


def _close(terms: dict, E_old, T_new, V_end) -> dict[str, torch.Tensor]:
    E_new = T_new + V_end
    named = sum(-t if name == "dissipated" else t for name, t in terms.items())
    return {"kinetic": T_new, "potential": V_end, "total": E_new, **terms, "residual": (E_new - E_old) - named}


def stack_layers(per_layer: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """name → (L,) means over tokens; a term a layer does not have (attention work on a step) is 0.
    Means are taken in at least fp32, whatever precision the step ran in."""
    names = list(dict.fromkeys(k for terms in per_layer for k in terms))
    out = {}
    for name in names:
        means = []
        for terms in per_layer:
            t = terms.get(name)
            means.append(t.mean(dtype=torch.promote_types(t.dtype, torch.float32)) if t is not None else None)
        ref = next(x for x in means if x is not None)
        out[name] = torch.stack([x if x is not None else torch.zeros_like(ref) for x in means])
    return out
