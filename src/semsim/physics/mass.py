"""Per-token inertial mass m(x).

``logfreq``: m = 1 + s·u(x)/ū, with u(x) = −log p(x) the corpus unigram surprisal and ū its
mean over the vocabulary: rare, informative tokens are heavier and are deflected less by a force.
It needs the corpus's surprisal table: built without one it is an error, never a silent m = 2.
``learned``: m = softplus(w_x) + m_min per token, initialised at 1. ``uniform``: m = 1 (``constant``
is its older name).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

M_MIN = 0.05  # keeps a learned mass away from 0, where a = f/m would blow up


class TokenMass(nn.Module):
    def __init__(self, mode: str, vocab_size: int, scale: float = 1.0, surprisal: torch.Tensor | None = None,
                 from_weights: bool = False):
        """``from_weights``: the table comes with the checkpoint about to be loaded."""
        super().__init__()
        mode = "uniform" if mode == "constant" else mode
        if mode not in ("logfreq", "learned", "uniform"):
            raise ValueError(f"unknown mass mode {mode!r} (logfreq, learned, uniform)")
        self.mode = mode
        if mode == "logfreq":
            if surprisal is None and not from_weights:
                raise ValueError("mass 'logfreq' needs the corpus's unigram surprisal table (the trainer passes "
                                 "it; build_model(cfg, surprisal=...) otherwise), or set model.mass=uniform")
            u = surprisal if surprisal is not None else torch.ones(vocab_size)  # overwritten by the load
            u = torch.as_tensor(u, dtype=torch.float32)
            self.register_buffer("table", 1 + scale * u / u.mean())  # saved with the weights
        elif mode == "learned":
            init = math.log(math.expm1(1.0 - M_MIN))  # softplus⁻¹ so that m starts at 1
            self.raw = nn.Parameter(torch.full((vocab_size,), init))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Mass per token, shape (B, T, 1)."""
        if self.mode == "uniform":
            return torch.ones(*idx.shape, 1, device=idx.device)
        if self.mode == "logfreq":
            return self.table[idx].unsqueeze(-1)
        return (F.softplus(self.raw[idx]) + M_MIN).unsqueeze(-1)
