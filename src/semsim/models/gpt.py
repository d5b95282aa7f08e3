"""The attention baseline: a standard pre-LN GPT decoder (nanoGPT-shaped), tied embeddings."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from semsim.models import register
from semsim.models.base import LanguageModel
from semsim.models.cache import DecodeState


@dataclass
class GPTConfig:
    vocab_size: int = 50257
    block_size: int = 512
    d_model: int = 256
    n_layer: int = 8
    n_head: int = 8
    mlp_ratio: int = 4
    dropout: float = 0.0
    bias: bool = True
    n_positions: int | None = None  # rows of the position table (None: block_size); published: 1024


_DECODE_BACKENDS = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]
# Training attention, first usable backend first. PyTorch would take cuDNN's on an H100; at d_head 32 flash took
# 0.03-0.30 ms less per step in all ten side-by-side comparisons (benchmarks/results/gpt-step/gpt-step-sdpa*.json,
# gpt-step-combo.json, gpt-step-final.json). A module global so a benchmark can set another order.
TRAIN_BACKENDS = [SDPBackend.FLASH_ATTENTION, SDPBackend.CUDNN_ATTENTION, SDPBackend.EFFICIENT_ATTENTION,
                  SDPBackend.MATH]


class CausalSelfAttention(nn.Module):
    def __init__(self, d: int, n_head: int, dropout: float, bias: bool):
        super().__init__()
        self.qkv = nn.Linear(d, 3 * d, bias=bias)
        self.proj = nn.Linear(d, d, bias=bias)
        self.n_head, self.dropout = n_head, dropout

    def forward(self, x: torch.Tensor, cache: tuple[DecodeState, int] | None = None) -> torch.Tensor:
        """``cache`` = (decoding state, this block's index): attend to the cached keys/values too."""
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        if cache is None:
            with sdpa_kernel(TRAIN_BACKENDS, set_priority=True):
                y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                                   dropout_p=self.dropout if self.training else 0.0)
        else:
            state, block = cache
            past = state.pos
            k, v = state.keys_values(block, k, v)
            mask = None
            if past > 0 and T > 1:  # query i (absolute past + i) sees keys s ≤ past + i
                mask = torch.ones(T, past + T, dtype=torch.bool, device=x.device).tril(past)
            # Decoding changes the key length every call; cuDNN's attention builds a plan per shape
            # (~50 ms each on an H100), so decoding keeps to the shape-agnostic kernels.
            with sdpa_kernel(_DECODE_BACKENDS):
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=past == 0 and T > 1)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        d = cfg.d_model
        self.ln1 = nn.LayerNorm(d, bias=cfg.bias)
        self.attn = CausalSelfAttention(d, cfg.n_head, cfg.dropout, cfg.bias)
        self.ln2 = nn.LayerNorm(d, bias=cfg.bias)
        self.mlp = nn.Sequential(
            nn.Linear(d, cfg.mlp_ratio * d, bias=cfg.bias),
            nn.GELU(),
            nn.Linear(cfg.mlp_ratio * d, d, bias=cfg.bias),
            nn.Dropout(cfg.dropout),
        )

    def forward(self, x: torch.Tensor, cache: tuple[DecodeState, int] | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), cache)
        return x + self.mlp(self.ln2(x))


@register("gpt", GPTConfig)
class GPT(LanguageModel):
    def __init__(self, config: GPTConfig, **_context):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.d_model)
        self.wpe = nn.Embedding(config.n_positions or config.block_size, config.d_model)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.d_model, bias=config.bias)
        self.apply(self._init)
        # GPT-2's scaled init of residual projections: keeps the residual stream's variance flat in depth.
        for name, p in self.named_parameters():
            if name.endswith("proj.weight") or name.endswith("mlp.2.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """Training FLOPs per token: 6N (forward + backward matmuls; the tied head counted once, the
        position table not) plus 6·L·T·d for causal attention scores (12·L·T·d halved by the mask).
        The convention of the PaLM appendix and nanoGPT's MFU estimate."""
        c, T = self.config, seq_len or self.config.block_size
        return 6 * self.num_params(exclude_embeddings=True) + 6 * c.n_layer * T * c.d_model

    def compile_for_training(self, scope: str = "whole", mode: str | None = None) -> nn.Module:
        """One graph of the whole model (``scope`` aside: there is no repeated region to compile alone), with
        Inductor's combo kernels, which launch independent small kernels (LayerNorm, GELU, casts) as one, and
        programmatic dependent launch (Hopper and later: a kernel starts while the one before it drains).
        On an H100, compiled + graphed, side by side in one process: combo kernels 5.13 → 4.94 ms per step
        (benchmarks/results/fused-kernels/fused_kernels_combo.json), then launch overlap 4.93 → 4.81 ms
        (benchmarks/results/gpt-step/gpt-step-combo.json). Both lengthen the build: a cold compile took 31.5 s
        instead of 19.6 s, repaid after ~40,000 steps. The SPLM family leaves combo kernels off: they slowed its
        SQ3 whole graph from 7.95 to 9.87 ms."""
        from torch._inductor import list_mode_options

        options = {**list_mode_options(mode or "default"), "combo_kernels": True, "triton.enable_pdl": True}
        return torch.compile(self, options=options)

    @property
    def max_positions(self) -> int:
        return self.config.n_positions or self.config.block_size

    def embed(self, idx: torch.Tensor, start: int = 0) -> torch.Tensor:
        pos = torch.arange(start, start + idx.size(1), device=idx.device)
        return self.drop(self.wte(idx) + self.wpe(pos))

    def decode(self, idx: torch.Tensor, state: DecodeState) -> torch.Tensor:
        """KV-cached decoding (see :meth:`LanguageModel.decode`)."""
        self.check_positions(state.pos + idx.shape[1])
        x = self.embed(idx, state.pos)
        for i, block in enumerate(self.blocks):
            x = block(x, (state, i))
        state.pos += idx.shape[1]
        return self.ln_f(x) @ self.wte.weight.T

    tied_head = True
    graph_safe = True

    def final_states(self, x, idx, return_extras=False):
        hidden = [x] if return_extras else None
        for block in self.blocks:
            x = block(x)
            if hidden is not None:
                hidden.append(x)
        return self.ln_f(x), None, ({"hidden": hidden} if hidden is not None else {})

    def forward_embeddings(self, x, idx, return_extras=False):
        h, aux, extras = self.final_states(x, idx, return_extras)
        return h @ self.wte.weight.T, aux, extras  # tied embeddings
