"""Training batches and the fixed validation slice.

A training batch is a pure function of (seed, step, micro-step): resuming at step k reads
exactly the batches an uninterrupted run would have read, with no sampler state to save.
Under data parallelism the step's *global* batch is drawn and rank r takes its r-th slice, so
N ranks of batch b see exactly the windows one process of batch N·b sees, at any world size.
"""

from __future__ import annotations

import numpy as np
import torch

from semsim.errors import SemsimError


def _check_length(tokens: np.ndarray, block_size: int, what: str) -> None:
    if len(tokens) < block_size + 1:
        raise SemsimError(
            f"block size {block_size} is longer than the {what} stream ({len(tokens)} tokens); "
            "use a smaller model.block_size or a larger corpus"
        )


class BatchSampler:
    """Random windows of ``block_size + 1`` tokens from a memory-mapped stream; ``batch_size`` per rank."""

    def __init__(self, tokens: np.ndarray, block_size: int, batch_size: int, seed: int,
                 rank: int = 0, world_size: int = 1):
        _check_length(tokens, block_size, "training")
        self.tokens, self.block_size, self.batch_size, self.seed = tokens, block_size, batch_size, seed
        self.rank, self.world_size = rank, world_size

    def get(self, step: int, micro: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + step * 1009 + micro) % (2**63))
        # a window needs block_size + 1 tokens: starts in [0, len − block_size); this rank's slice of
        # the global batch
        starts = torch.randint(0, len(self.tokens) - self.block_size, (self.batch_size * self.world_size,),
                               generator=g)[self.rank * self.batch_size : (self.rank + 1) * self.batch_size]
        rows = np.stack([self.tokens[s : s + self.block_size + 1] for s in starts.tolist()])
        t = torch.from_numpy(rows.astype(np.int64))
        return t[:, :-1], t[:, 1:]


def validation_windows(tokens: np.ndarray, block_size: int, max_tokens: int | None = None) -> torch.Tensor:
    """Non-overlapping ``block_size + 1`` windows over the (fixed) validation slice, as one tensor."""
    _check_length(tokens, block_size, "validation")
    if max_tokens is not None:
        tokens = tokens[: max(max_tokens, block_size + 1)]
    n = (len(tokens) - 1) // block_size
    rows = [tokens[i * block_size : i * block_size + block_size + 1] for i in range(n)]
    return torch.from_numpy(np.stack(rows).astype(np.int64))
