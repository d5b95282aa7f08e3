"""Layer-schedule hybrids: causal attention blocks (A) and SPLM integration steps (S) in one stack.

``schedule`` is any string over A and S, read bottom to top: ``AAAASSSS`` (attention builds
contextual states, the SPLM refines them), ``SASASASA``, ``SSAAAASS``, … Every S is a step on the
one shared V_θ; every A is its own pre-LN transformer block. The velocity is carried through the
attention blocks unchanged, and a LayerNorm (``ln_attn``, shared) closes every run of A blocks, so each
S step, like the plain SPLM's, starts from normalised states and the head reads normalised states.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from semsim.models import register
from semsim.models.cache import DecodeState
from semsim.models.gpt import Block, GPTConfig
from semsim.models.splm import SPLM, SPLMConfig


@dataclass
class HybridConfig(SPLMConfig):
    schedule: str = "AAAASSSS"  # one letter a layer, bottom first; n_layer must equal its count of S
    n_layer: int = 4
    n_head: int = 8
    mlp_ratio: int = 4


def check_schedule(schedule: str, n_layer: int) -> str | None:
    """Why a schedule cannot run (None when it can)."""
    if not schedule or set(schedule) - {"A", "S"}:
        return "must be a string of A (attention block) and S (SPLM step), e.g. AAAASSSS"
    if "S" not in schedule:
        return "needs at least one S (an all-attention stack is the gpt family)"
    if schedule.count("S") != n_layer:
        return f"has {schedule.count('S')} S steps but model.n_layer = {n_layer}; set them equal"
    return None


@register("hybrid", HybridConfig)
class HybridSPLMAttention(SPLM):
    def __init__(self, config: HybridConfig, **context):
        super().__init__(config, **context)
        why = check_schedule(config.schedule, config.n_layer)
        if why:
            raise ValueError(f"schedule {config.schedule!r} {why}")
        n_attn = config.schedule.count("A")
        gcfg = GPTConfig(vocab_size=config.vocab_size, block_size=config.block_size, d_model=config.d_model,
                         n_layer=n_attn, n_head=config.n_head, mlp_ratio=config.mlp_ratio)
        self.blocks = nn.ModuleList(Block(gcfg) for _ in range(n_attn))
        self.ln_attn = nn.LayerNorm(config.d_model)
        # the A blocks (by their index) after which a run of attention ends
        ends, i = set(), 0
        for pos, kind in enumerate(config.schedule):
            if kind == "A":
                if pos + 1 == len(config.schedule) or config.schedule[pos + 1] != "A":
                    ends.add(i)
                i += 1
        self._run_ends = ends

    def layer_kinds(self) -> str:
        return self.config.schedule

    def attention_layer(self, i: int, h: torch.Tensor, state: DecodeState | None = None) -> torch.Tensor:
        h = self.blocks[i](h, None if state is None else (state, i))
        return self.ln_attn(h) if i in self._run_ends else h
