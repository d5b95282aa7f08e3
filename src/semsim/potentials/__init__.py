"""Scalar potentials V_θ(ξ, h) with closed-form forces: MLP and the structured wells SQ1–SQ4."""

from semsim.potentials.base import Potential
from semsim.potentials.mlp import MLPPotential, act_and_grad
from semsim.potentials.wells import DiagonalWell, HybridWell, LowRankWell, MixtureWells


def make_potential(kind: str, d_xi: int, d: int, **kw) -> Potential:
    if kind == "mlp":
        return MLPPotential(d_xi, d, kw.get("hidden", 1024), kw.get("depth", 3), kw.get("act", "gelu"))
    if kind == "sq1":
        return DiagonalWell(d_xi, d)
    if kind == "sq2":
        return LowRankWell(d_xi, d, kw.get("rank", 4), kw.get("u_from_context", True))
    if kind == "sq3":
        return MixtureWells(d_xi, d, kw.get("wells", 8), kw.get("tau", 1.0))
    if kind == "sq4":
        return HybridWell(d_xi, d, kw.get("rank", 4), kw.get("residual_hidden", 128), kw.get("act", "gelu"))
    raise ValueError(f"unknown potential {kind!r} (mlp, sq1, sq2, sq3, sq4)")


__all__ = [
    "DiagonalWell",
    "HybridWell",
    "LowRankWell",
    "MLPPotential",
    "MixtureWells",
    "Potential",
    "act_and_grad",
    "make_potential",
]
