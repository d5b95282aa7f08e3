"""Autoregressive sampling by incremental decoding, with temperature, top-k and nucleus (top-p).

Every new token costs one :meth:`LanguageModel.decode` call on the carried state (the SPLM's
context recurrences, KV caches for attention), not a forward pass over the whole window.

Prompts of different lengths are batched in lockstep: all rows stand at the same position, a row
still inside its prompt is fed its next prompt token (the sample is discarded), a row past it is fed
its sample. No padding enters any state, so every row decodes exactly as it would alone.

Models with a learned position table cannot go past ``max_positions``; there generation slides:
the state is rebuilt from the last half-window of tokens (positions restarting at 0) and decoding
continues, so the context seen is between half and all of the window.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from semsim.errors import SemsimError


def filter_logits(logits: torch.Tensor, top_k: int | None = None, top_p: float | None = None) -> torch.Tensor:
    if top_k is not None and 0 < top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and 0 < top_p < 1:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cum = torch.softmax(sorted_logits, dim=-1).cumsum(-1)
        drop = cum - torch.softmax(sorted_logits, dim=-1) > top_p  # keep the smallest set reaching top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    return logits


def check_sampling(max_new_tokens: int, temperature: float, top_k: int | None, top_p: float | None) -> None:
    if max_new_tokens < 0:
        raise SemsimError(f"max new tokens must be ≥ 0, got {max_new_tokens}")
    if not math.isfinite(temperature) or temperature < 0:
        raise SemsimError(f"temperature must be a finite number ≥ 0 (0 = greedy), got {temperature}")
    if top_k is not None and top_k < 0:
        raise SemsimError(f"top-k must be ≥ 0 (0 = off), got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise SemsimError(f"top-p must be in (0, 1], got {top_p}")


def _sample(logits, temperature, top_k, top_p, generator):
    logits = logits.float()
    if temperature <= 0:
        return logits.argmax(-1)
    probs = torch.softmax(filter_logits(logits / temperature, top_k, top_p), dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


@torch.no_grad()
def generate_batch(
    model: torch.nn.Module,
    prompts: list[list[int]],
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
    on_token: Callable[[int, int], None] | None = None,
    info: dict | None = None,
) -> list[list[int]]:
    """Extend each prompt by ``max_new_tokens``; temperature 0 is greedy decoding.

    ``on_token(row, token)`` is called for every generated token as soon as it is chosen (streaming).
    ``info``, if given, receives the final decoding state's size (``state_bytes``, whole batch) and
    position.
    """
    check_sampling(max_new_tokens, temperature, top_k, top_p)
    if not prompts or any(len(p) == 0 for p in prompts):
        raise SemsimError("every prompt needs at least one token")
    model.eval()
    device = next(model.parameters()).device
    lens = [len(p) for p in prompts]
    start, end = min(lens), max(lens) + max_new_tokens
    seqs = [list(p) for p in prompts]
    limit = model.max_positions
    # tokens fed so far, kept only where a sliding window may need to rebuild the state from them
    history = [list(p[:start]) for p in prompts] if limit is not None else None
    first = torch.tensor([p[:start] for p in prompts], device=device)
    state = model.new_decode_state()
    logits = model.decode(first if limit is None else first[:, -limit:], state)[:, -1]
    for pos in range(start, end):
        nxt = _sample(logits, temperature, top_k, top_p, generator).tolist()
        col = []
        for b, p in enumerate(prompts):
            tok = p[pos] if pos < lens[b] else nxt[b]
            col.append(tok)
            if lens[b] <= pos < lens[b] + max_new_tokens:
                seqs[b].append(tok)
                if on_token is not None:
                    on_token(b, tok)
        if pos + 1 == end:
            break
        col_t = torch.tensor(col, device=device).view(-1, 1)
        if history is not None:
            for row, tok in zip(history, col):
                row.append(tok)
        if limit is not None and state.pos + 1 > limit:  # slide: rebuild from the last half-window
            state = model.new_decode_state()
            window = torch.tensor([row[-max(1, limit // 2):] for row in history], device=device)
            logits = model.decode(window, state)[:, -1]
            for row in history:
                del row[:-limit]
        else:
            logits = model.decode(col_t, state)[:, -1]
    if info is not None:
        info.update(state_bytes=state.nbytes, position=state.pos)
    return seqs


def generate(
    model: torch.nn.Module,
    idx: torch.Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Extend ``idx`` (B, T) by ``max_new_tokens`` (all rows the same length)."""
    out = generate_batch(model, idx.tolist(), max_new_tokens, temperature, top_k, top_p, generator)
    return torch.tensor(out, device=idx.device, dtype=idx.dtype)
