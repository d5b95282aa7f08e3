"""What every semsim model is: token ids → logits, plus optional auxiliary losses and extras.

A family implements :meth:`LanguageModel.embed` (ids → layer-0 states) and
:meth:`LanguageModel.forward_embeddings` (states → logits). Splitting the two is what lets one
causal-violation probe perturb the input of *any* model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from semsim import kernels
from semsim.errors import SemsimError
from semsim.models.cache import DecodeState


@dataclass
class LMOutput:
    logits: torch.Tensor | None  # None when the fused head computed the loss without them
    loss: torch.Tensor | None = None  # mean next-token cross-entropy (nats)
    aux_loss: torch.Tensor | None = None  # regularisers the trainer adds to the objective
    extras: dict = field(default_factory=dict)  # diagnostics (energies, potentials, ...)

    @property
    def objective(self) -> torch.Tensor:
        """What training minimises: the loss plus the regularisers, when there are any."""
        return self.loss if self.aux_loss is None else self.loss + self.aux_loss


class LanguageModel(nn.Module):
    family: str = "?"

    def embed(self, idx: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward_embeddings(
        self, x: torch.Tensor, idx: torch.Tensor, return_extras: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None, dict]:  # pragma: no cover - abstract
        """Layer-0 states (B, T, d) → (logits, aux_loss or None, extras)."""
        raise NotImplementedError

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None, return_extras: bool = False
    ) -> LMOutput:
        if targets is not None and not return_extras and self.tied_head and kernels.fused():
            from semsim.kernels.linear_ce import linear_cross_entropy  # chunked head: no full logits

            h, aux, extras = self.final_states(self.embed(idx), idx)
            return LMOutput(None, linear_cross_entropy(h, self.wte.weight, targets), aux, extras)
        logits, aux, extras = self.forward_embeddings(self.embed(idx), idx, return_extras)
        loss = None
        if targets is not None:
            wide = logits.to(torch.promote_types(logits.dtype, torch.float32))  # bf16 logits → fp32; float64 stays
            loss = F.cross_entropy(wide.reshape(-1, logits.size(-1)), targets.reshape(-1))
        return LMOutput(logits, loss, aux, extras)

    # A training step of this family can be captured once and replayed as a CUDA graph: static shapes,
    # no host reads, nothing changed between steps outside the optimiser (semsim.training.graphed_step).
    graph_safe = False

    # Families whose logits are final_states(x) @ wte.weightᵀ: with targets, ``forward`` then fuses
    # the head into the loss (semsim.kernels.linear_ce) and returns no logits.
    tied_head = False

    def final_states(self, x: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, dict]:
        """Layer-0 states → (states the tied head reads (B, T, d), aux_loss or None, extras)."""
        raise NotImplementedError

    def compile_for_training(self, scope: str = "whole", mode: str | None = None) -> nn.Module:
        """What the trainer runs when ``train.compile`` is on. ``whole``: one graph of the whole model;
        ``regional``: only the model's repeated region (families that have one), far faster to compile.
        ``mode`` is ``torch.compile``'s (``reduce-overhead``: replay the step as CUDA graphs)."""
        return torch.compile(self, mode=mode)

    def set_training_progress(self, fraction: float) -> None:
        """Called by the trainer before every step with the fraction of the run done (for annealing)."""

    def after_step(self, step: int) -> dict | None:
        """Called by the trainer after every optimiser step, for changes made outside the optimiser
        (e.g. a splat store's growth and consolidation). A dict is logged as an ``event`` row; on
        several ranks, a step that returns one is followed by rank 0's weights broadcast to all."""
        return None

    @property
    def block_size(self) -> int:
        return self.config.block_size

    # ------------------------------------------------------------------ incremental decoding
    @property
    def max_positions(self) -> int | None:
        """Longest sequence the model can take: ``block_size`` with a learned position table, else None."""
        return self.config.block_size

    def new_decode_state(self) -> DecodeState:
        return DecodeState()

    def decode(self, idx: torch.Tensor, state: DecodeState) -> torch.Tensor:
        """Logits (B, n, V) for n new tokens ``idx`` (B, n) that follow the ``state.pos`` tokens already
        consumed; advances ``state``. Equal to ``forward`` over the whole sequence at those positions.

        This default recomputes the whole sequence each call (the reference path); families with a
        recurrent or cached form override it."""
        self.check_positions(state.pos + idx.shape[1])
        past = state.extra.get("tokens")
        seq = idx if past is None else torch.cat([past, idx], dim=1)
        state.extra["tokens"], state.pos = seq, seq.shape[1]
        return self(seq).logits[:, -idx.shape[1]:]

    def check_positions(self, end: int | torch.Tensor) -> None:
        limit = self.max_positions
        if isinstance(end, torch.Tensor):  # a device counter (CUDA-graphed decoding checks on the host)
            return
        if limit is not None and end > limit:
            raise SemsimError(
                f"position {end} is past this model's {limit} learned positions; generation slides its "
                "window (see semsim.generation), a direct decode call cannot"
            )

    def num_params(self, exclude_embeddings: bool = False) -> int:
        """Parameter count, shared (tied) tensors counted once."""
        seen, n = set(), 0
        for name, p in self.named_parameters():
            if id(p) in seen or (exclude_embeddings and "wpe" in name):
                continue
            seen.add(id(p))
            n += p.numel()
        return n

    # ------------------------------------------------------------------ HF-style loading
    def save_pretrained(self, path: str | Path, run_config=None) -> None:
        from semsim.training.checkpoint import save_model

        save_model(path, self, run_config)

    @classmethod
    def from_pretrained(cls, path_or_preset: str | Path, device: str | torch.device = "cpu") -> "LanguageModel":
        """Load a checkpoint folder, or build a fresh model from a preset name."""
        from semsim.training.checkpoint import load_model

        return load_model(path_or_preset, device=device)[0]
