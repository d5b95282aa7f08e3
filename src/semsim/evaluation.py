"""Validation loss / perplexity on the fixed validation slice."""

from __future__ import annotations

import contextlib
import math

import torch


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    windows: torch.Tensor,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
    autocast: contextlib.AbstractContextManager | None = None,
) -> dict:
    """Mean next-token cross-entropy (nats) over every position of every window."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(windows), batch_size):
        w = windows[i : i + batch_size].to(device, non_blocking=True)
        with autocast or contextlib.nullcontext():
            out = model(w[:, :-1], targets=w[:, 1:])
        n = w[:, 1:].numel()
        total += out.loss.item() * n
        count += n
    model.train(was_training)
    loss = total / max(count, 1)
    # no cap: a perplexity too large for a float is reported as inf, never as a made-up ceiling
    return {"loss": loss, "ppl": math.exp(loss) if loss < 709.0 else math.inf, "tokens": count}
