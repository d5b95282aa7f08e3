"""PARFLM: an SPLM whose particles also feel a pairwise potential V_φ from their top-k earlier tokens.

Total force f = f_θ + f_φ (see :mod:`semsim.potentials.pairwise`). The top-k routing is a
straight-through Gumbel top-k whose temperature anneals linearly from ``gumbel_tau_start`` to
``gumbel_tau_end`` over training (noise on in training, off in evaluation).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from semsim.models import register
from semsim.models.splm import SPLM, SPLMConfig
from semsim.potentials.base import autograd_force
from semsim.potentials.pairwise import PairPotential


@dataclass
class PARFLMConfig(SPLMConfig):
    pair_k: int = 8
    pair_score_dim: int = 32  # the score network's width
    pair_type_dim: int = 32
    pair_angle_dim: int = 32
    pair_hidden: int = 128  # Φ and Θ
    pair_type_ln: bool = True  # LayerNorm on the type embedding before the distance
    pair_variant: str = "structural"  # structural | competitive
    pair_include_self: bool = True  # s ≤ t (the published range) or s < t
    pair_scale_init: float = 0.1
    gumbel_tau_start: float = 1.0
    gumbel_tau_end: float = 0.3


@register("parflm", PARFLMConfig)
class PARFLM(SPLM):
    def __init__(self, config: PARFLMConfig, **context):
        super().__init__(config, **context)
        c = config
        if c.pair_variant not in ("structural", "competitive"):
            raise ValueError(f"unknown pair_variant {c.pair_variant!r} (structural, competitive)")
        self.pair = PairPotential(
            c.d_model, c.n_layer, k=c.pair_k, score_dim=c.pair_score_dim, type_dim=c.pair_type_dim,
            angle_dim=c.pair_angle_dim, hidden=c.pair_hidden, type_ln=c.pair_type_ln,
            competitive=c.pair_variant == "competitive", include_self=c.pair_include_self,
            scale_init=c.pair_scale_init,
        )
        self.register_buffer("gumbel_tau", torch.tensor(c.gumbel_tau_start), persistent=False)

    reads_past_states = True

    def set_training_progress(self, fraction: float) -> None:
        c = self.config
        self.gumbel_tau.fill_(c.gumbel_tau_start + (c.gumbel_tau_end - c.gumbel_tau_start) * min(1.0, fraction))

    def interaction_forces(self, h, v, layer, past, t0=0):
        forces = super().interaction_forces(h, v, layer, past, t0)
        # the temperature is a tensor: no graph break
        idx, w, _ = self.pair.select(h, self.gumbel_tau, noise=self.training, past=past, t0=t0)
        if self.config.force == "autograd":
            f, _ = autograd_force(lambda x: self.pair.energy(x, idx, w, layer, past), h)
        else:
            f, _ = self.pair.force(h, idx, w, layer, past)
        forces["pair"] = f
        return forces

