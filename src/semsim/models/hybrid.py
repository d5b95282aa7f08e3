"""SPLM + attention hybrid: standard causal attention blocks and SPLM integration steps in one stack.

``layout="attn-first"`` (default): the attention blocks build contextual states, then the SPLM
refines them for ``n_layer`` steps on its potential; ``"splm-first"`` reverses the order.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn as nn

from semsim.models import register
from semsim.models.cache import DecodeState
from semsim.models.gpt import Block, GPTConfig
from semsim.models.splm import SPLM, SPLMConfig


@dataclass
class HybridConfig(SPLMConfig):
    n_attn_layers: int = 4
    n_head: int = 8
    mlp_ratio: int = 4
    layout: str = "attn-first"  # attn-first | splm-first


@register("hybrid", HybridConfig)
class HybridSPLMAttention(SPLM):
    def __init__(self, config: HybridConfig, **context):
        super().__init__(config, **context)
        if config.layout not in ("attn-first", "splm-first"):
            raise ValueError(f"unknown layout {config.layout!r} (attn-first, splm-first)")
        gcfg = GPTConfig(vocab_size=config.vocab_size, block_size=config.block_size, d_model=config.d_model,
                         n_layer=config.n_attn_layers, n_head=config.n_head, mlp_ratio=config.mlp_ratio)
        self.blocks = nn.ModuleList(Block(gcfg) for _ in range(config.n_attn_layers))
        self.ln_attn = nn.LayerNorm(config.d_model)

    def _attend(self, x, state: DecodeState | None = None):
        for i, block in enumerate(self.blocks):
            x = block(x, None if state is None else (state, i))
        return self.ln_attn(x)

    def forward_embeddings(self, x, idx, return_extras=False, state: DecodeState | None = None):
        if self.config.layout == "attn-first":
            h, aux, extras = self.integrate(self._attend(x, state), idx, return_extras, state)
        else:
            h, aux, extras = self.integrate(x, idx, return_extras, state)
            h = self._attend(h, state)
            if return_extras:
                extras["hidden"].append(h)
        return h @ self.wte.weight.T, aux, extras
