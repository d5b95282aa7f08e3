"""Learning-rate schedules: linear warm-up, then cosine decay to ``min_ratio`` of the peak; or cosine to
``min_ratio`` over a first stretch, a hold, and a linear warm-down to zero."""

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


def cosine_hold_multiplier(progress: float, steps: int, warmup_steps: int, decay_steps: int, hold_steps: int,
                           min_ratio: float) -> float:
    """At step s = progress · steps: linear warm-up to 1 over ``warmup_steps``; cosine to ``min_ratio`` at
    ``decay_steps``; ``min_ratio`` until ``hold_steps``; then linear to 0 at ``steps``. In a run of fewer
    than ``hold_steps`` steps both marks shrink in proportion so that the hold ends at 90% of the run."""
    scale = 0.9 * steps / hold_steps if steps < hold_steps else 1.0
    decay, hold = decay_steps * scale, hold_steps * scale
    s = progress * steps
    if s < warmup_steps:
        return (s + 1e-9) / warmup_steps
    if s < decay:
        frac = (s - warmup_steps) / max(1e-9, decay - warmup_steps)
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * frac))
    if s < hold:
        return min_ratio
    return min_ratio * max(0.0, (steps - s) / max(1e-9, steps - hold))
