"""Values derived from parameters alone, built once per forward and read by every layer.

An SPLM's layers share one potential and one context filter, so what those derive from their
parameters (SQ3's four maps packed side by side, a context filter's (T·K, T) matrix) is the same at
every layer. Built at each layer it cost an L-layer step L builds, L casts and L gradient
accumulations into the parameters; built once, autograd sums the layers' gradients into the one copy
and the build's backward runs once.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn as nn


class PerForward:
    """Mixin for an ``nn.Module`` with such values: :meth:`build_per_forward` makes them, :meth:`per_forward`
    reads them (``None`` outside :func:`one_forward`, where the caller builds its own)."""

    _per_forward: dict[str, torch.Tensor] | None = None

    def build_per_forward(self, h0: torch.Tensor, streaming: bool) -> dict[str, torch.Tensor]:
        """The values for a forward whose layer-0 states are ``h0``; ``streaming``: incremental decoding."""
        return {}

    def per_forward(self, key: str) -> torch.Tensor | None:
        return None if self._per_forward is None else self._per_forward.get(key)


@contextmanager
def one_forward(model: nn.Module, h0: torch.Tensor, streaming: bool = False):
    """Build every :class:`PerForward` submodule's values before the layers run, and drop them after:
    kept on the module, a tensor would carry this step's autograd graph into the next. Built here,
    outside any compiled layer, so a regionally compiled layer sees the same inputs at every call."""
    mods = [m for m in model.modules() if isinstance(m, PerForward)]
    for m in mods:
        m._per_forward = m.build_per_forward(h0, streaming)
    try:
        yield
    finally:
        for m in mods:
            m._per_forward = None
