"""Acceleration decomposition of consecutive triplets and the STP (straight-trajectory) loss.

For a triplet (x₀, x₁, x₂) — three consecutive layers of one token, or three consecutive tokens
of one layer — d₁ = x₁ − x₀, d₂ = x₂ − x₁, and the acceleration a = d₂ − d₁.

Choice written down: a is split along the *incoming* direction d̂₁ (the particle's velocity when
the force acts): a_∥ = (a·d̂₁) d̂₁, a_⊥ = a − a_∥. Then a_⊥ = d₂ − (d₂·d̂₁)d̂₁, so |a_⊥|/|d₂| = sin θ
and the identity  STP = 1 − cos θ = 1 − sgn(cos θ)·√(1 − |a_⊥|²/|d₂|²)  holds exactly
(for cos θ ≥ 0 it is the form 1 − √(1 − |a_⊥|²/|d₂|²)). ``along="d2"`` splits along d̂₂ instead.
A triplet decelerates when a·d̂₁ < 0 (the speed along the motion falls).
"""

from __future__ import annotations

import torch

from semsim.diagnostics.trajectories import Trajectories


def triplets(tr: Trajectories, axis: str = "layer") -> torch.Tensor:
    """(n, 3, d) float64 triplets along layers (every token) or along the sequence (every layer)."""
    h = tr.h.double()
    if axis == "layer":
        x = torch.stack([h[:, :-2], h[:, 1:-1], h[:, 2:]], 2)  # (N, L-1, 3, d)
        return x.reshape(-1, 3, h.shape[-1])
    if axis == "sequence":
        seq = h.view(-1, tr.seq_len, *h.shape[1:])  # (S, T, L+1, d)
        x = torch.stack([seq[:, :-2], seq[:, 1:-1], seq[:, 2:]], 3)  # (S, T-2, L+1, 3, d)
        return x.reshape(-1, 3, h.shape[-1])
    raise ValueError("axis must be 'layer' or 'sequence'")


def decompose(x: torch.Tensor, along: str = "d1", eps: float = 1e-12) -> dict:
    d1, d2 = x[:, 1] - x[:, 0], x[:, 2] - x[:, 1]
    a = d2 - d1
    ref = d1 if along == "d1" else d2
    u = ref / ref.norm(dim=-1, keepdim=True).clamp_min(eps)
    a_par = (a * u).sum(-1)
    a_perp = a - a_par.unsqueeze(-1) * u
    n1, n2 = d1.norm(dim=-1).clamp_min(eps), d2.norm(dim=-1).clamp_min(eps)
    cos = (d1 * d2).sum(-1) / (n1 * n2)
    stp = 1 - cos
    out = {"d1": d1, "d2": d2, "a_par": a_par, "a_perp_norm": a_perp.norm(dim=-1), "cos": cos, "stp": stp,
           "decelerating": (a * (d1 / n1.unsqueeze(-1))).sum(-1) < 0}
    if along == "d1":
        sin2 = (a_perp.norm(dim=-1) / n2) ** 2
        out["stp_identity"] = 1 - torch.sign(cos) * torch.sqrt((1 - sin2).clamp_min(0))
    return out


def stp_stats(tr: Trajectories, axis: str = "layer", along: str = "d1", n_perm: int = 200, seed: int = 0) -> dict:
    x = triplets(tr, axis)
    dec = decompose(x, along)
    identity_err = (dec["stp"] - dec["stp_identity"]).abs().max().item() if "stp_identity" in dec else None
    observed = dec["stp"].mean().item()
    null = _permutation_null(tr, axis, n_perm, seed)
    mu, sd = null.mean().item(), null.std().item()
    return {
        "axis": axis,
        "along": along,
        "n_triplets": int(x.shape[0]),
        "stp_mean": observed,
        "identity_max_abs_error": identity_err,
        "frac_decelerating": dec["decelerating"].double().mean().item(),
        "tangential_over_normal": (dec["a_par"].abs().mean() / dec["a_perp_norm"].mean()).item(),
        "null_mean": mu,
        "null_std": sd,
        "z": (observed - mu) / max(sd, 1e-30),
        "n_perm": n_perm,
        "published": {"frac_decelerating_gpt2": 0.979, "tangential_over_normal_gpt2": 2.0, "z_gpt2": "< -11"},
        "published_note": "GPT-2 figures as reported in the Semantic Simulation publication",
    }


def mean_stp(h: torch.Tensor, axis_dim: int) -> torch.Tensor:
    """Mean of 1 − cos(d₁, d₂) over consecutive steps along ``axis_dim`` (no triplet tensor built)."""
    d = h.diff(dim=axis_dim)
    n = d.shape[axis_dim] - 1
    return (1 - torch.nn.functional.cosine_similarity(d.narrow(axis_dim, 0, n), d.narrow(axis_dim, 1, n), dim=-1)).mean()


def _permutation_null(tr: Trajectories, axis: str, n_perm: int, seed: int) -> torch.Tensor:
    """Mean STP after shuffling the order of states along the axis, independently per trajectory."""
    g = torch.Generator().manual_seed(seed)
    h = tr.h.float()
    seq = h.view(-1, tr.seq_len, *h.shape[1:])  # (S, T, L+1, d)
    out = []
    for _ in range(n_perm):
        if axis == "layer":  # each token's layer order shuffled on its own
            perm = torch.rand(h.shape[:2], generator=g).argsort(1)
            out.append(mean_stp(h.gather(1, perm.unsqueeze(-1).expand_as(h)), 1))
        else:  # each sequence's token order shuffled on its own (same order at every layer)
            perm = torch.rand(seq.shape[:2], generator=g).argsort(1)
            out.append(mean_stp(seq.gather(1, perm[..., None, None].expand_as(seq)), 1))
    return torch.stack(out).double()
