"""Velocity-aware Jacobian symmetry of the per-layer update, in a PCA-16 subspace.

In PCA coordinates x (top-k components of all states), fit per layer by least squares
    Δx_ℓ ≈ J_ℓ x_ℓ + K_ℓ v_ℓ + b_ℓ,     v_ℓ = x_ℓ − x_{ℓ−1}
and report the asymmetry ‖J − Jᵀ‖_F / ‖J‖_F ∈ [0, 2]. A gradient field has a symmetric Jacobian
(a Hessian): 0. A pure rotation generator is antisymmetric: 2.
"""

from __future__ import annotations

import torch

from semsim.diagnostics.trajectories import Trajectories


def pca_basis(h: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    X = h.reshape(-1, h.shape[-1]).double()
    mean = X.mean(0)
    _, _, Vt = torch.linalg.svd(X - mean, full_matrices=False)
    return mean, Vt[:k].T  # (d,), (d, k)


def asymmetry(J: torch.Tensor) -> float:
    return ((J - J.T).norm() / J.norm().clamp_min(1e-30)).item()


def jacobian_symmetry(tr: Trajectories, k: int = 16) -> dict:
    mean, P = pca_basis(tr.h, k)
    x = (tr.h.double() - mean) @ P  # (N, L+1, k)
    per_layer = []
    for ell in range(1, x.shape[1] - 1):
        xl, vl, dx = x[:, ell], x[:, ell] - x[:, ell - 1], x[:, ell + 1] - x[:, ell]
        X = torch.cat([xl, vl, torch.ones(len(xl), 1, dtype=xl.dtype)], 1)
        W = torch.linalg.lstsq(X, dx).solution  # (2k+1, k): rows map regressors → Δx
        J = W[:k].T  # Δx = J x: the transpose of the regression block
        per_layer.append(asymmetry(J))
    s = sorted(per_layer)
    return {"k": k, "asymmetry_per_layer": per_layer, "median_asymmetry": s[len(s) // 2]}
