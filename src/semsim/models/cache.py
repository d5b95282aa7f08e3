"""What incremental decoding carries from one call of ``LanguageModel.decode`` to the next.

* SPLM family: per integration step, the context channel's recurrent state (a few d-vectors per
  sequence, independent of the context length) — the SPLM's whole cache.
* PARFLM / Fock: per step also the past states h^ℓ_{≤t} (the pair routing and the registers read
  earlier tokens, as attention reads a KV cache), and for Fock the register stack itself.
* Attention blocks (GPT, hybrid): keys and values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


class GrowingBuffer:
    """Tensors appended along ``dim`` into preallocated storage that doubles when full, so each
    appended token costs O(1) amortised copies instead of a ``torch.cat`` of the whole past."""

    def __init__(self, dim: int = 1, initial: int = 64):
        self.dim, self.initial, self.length = dim, initial, 0
        self.data: torch.Tensor | None = None

    def append(self, x: torch.Tensor) -> torch.Tensor:
        """Append x and return a view of everything held so far."""
        n = x.shape[self.dim]
        if self.data is None or self.length + n > self.data.shape[self.dim]:
            capacity = max(self.initial, self.length + n, 2 * (0 if self.data is None else self.data.shape[self.dim]))
            shape = list(x.shape)
            shape[self.dim] = capacity
            grown = x.new_empty(shape)
            if self.data is not None:
                grown.narrow(self.dim, 0, self.length).copy_(self.data.narrow(self.dim, 0, self.length))
            self.data = grown
        self.data.narrow(self.dim, self.length, n).copy_(x)
        self.length += n
        return self.data.narrow(self.dim, 0, self.length)

    def view(self) -> torch.Tensor | None:
        return None if self.data is None else self.data.narrow(self.dim, 0, self.length)

    @property
    def nbytes(self) -> int:
        return 0 if self.data is None else self.data.numel() * self.data.element_size()


@dataclass
class DecodeState:
    """Decoding state of one batch of sequences that all stand at position ``pos``."""

    pos: int = 0  # tokens consumed so far
    context: dict = field(default_factory=dict)  # SPLM step ℓ -> channel state
    history: dict = field(default_factory=dict)  # SPLM step ℓ -> GrowingBuffer of past states (B, t, d)
    kv: dict = field(default_factory=dict)  # attention block i -> (GrowingBuffer keys, GrowingBuffer values)
    extra: dict = field(default_factory=dict)  # family-specific (Fock: register stack, gate history)

    def past_states(self, layer: int, h: torch.Tensor) -> torch.Tensor:
        """Append this step's states at layer ℓ; return h^ℓ for every position so far."""
        return self.history.setdefault(layer, GrowingBuffer(dim=1)).append(h)

    def keys_values(self, block: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        kb, vb = self.kv.setdefault(block, (GrowingBuffer(dim=2), GrowingBuffer(dim=2)))
        return kb.append(k), vb.append(v)

    @property
    def nbytes(self) -> int:
        """Memory held by the state (allocated buffers, including unused growth room)."""
        total = 0
        for x in [*self.context.values(), *self.history.values(), *(b for kv in self.kv.values() for b in kv),
                  *self.extra.values()]:
            if isinstance(x, torch.Tensor):
                total += x.numel() * x.element_size()
            elif hasattr(x, "nbytes"):
                total += int(x.nbytes)
        return total
