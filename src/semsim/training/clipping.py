"""Gradient clipping by global norm, folded into a fused AdamW step where there is one.

``clip_grad_norm_`` computes the norm, then rewrites every gradient (one pass over all of them) before
the optimiser reads them again. PyTorch's fused Adam/AdamW kernels already divide each gradient by an
optional ``grad_scale`` tensor as they read it (the protocol ``torch.amp.GradScaler`` uses), so we set
that to the clip divisor instead and save the extra pass: on an H100 the GPT step lost its 0.064 ms clip
kernel and AdamW took 0.024 ms longer (``benchmarks/results/gpt-step/gpt-step-clip-profile.json``). Other
optimisers get the plain clip.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


def clip_and_step(optimizer: torch.optim.Optimizer, params: Iterable[torch.Tensor], max_norm: float) -> torch.Tensor:
    """Clip the gradients of ``params`` to global 2-norm ``max_norm``, then step ``optimizer``; returns the
    norm before clipping (a device tensor, no host sync). Same update as ``clip_grad_norm_`` + ``step()``:
    the gradients are divided by max(1, (‖g‖ + 1e-6) / max_norm) instead of multiplied by its inverse."""
    params = [p for p in params if p.grad is not None]
    norm = torch.nn.utils.get_total_norm([p.grad for p in params])
    if not optimizer.defaults.get("fused") or hasattr(optimizer, "grad_scale"):  # a scale set by someone else stays
        torch.nn.utils.clip_grads_with_norm_(params, max_norm, norm)
        optimizer.step()
        return norm
    optimizer.grad_scale = ((norm.float() + 1e-6) / max_norm).clamp_min(1.0)
    try:
        optimizer.step()
    finally:
        del optimizer.grad_scale
    return norm
