"""Learning-rate schedule: linear warm-up, then cosine decay to ``min_ratio`` of the peak."""

from __future__ import annotations

import math


def lr_multiplier(progress: float, warmup: float, min_ratio: float) -> float:
    """Multiplier of the peak LR at ``progress`` ∈ [0, 1] of the run; ``warmup`` is a fraction too.

    Written on fractions so the same curve can be laid over a step count or a wall-clock budget.
    """
    if progress < warmup:
        return (progress + 1e-9) / warmup if warmup > 0 else 1.0
    frac = min(1.0, (progress - warmup) / max(1e-9, 1.0 - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * frac))
