"""One-token decode steps captured once and replayed as a CUDA graph.

A replay launches a whole decode step at once, instead of the few hundred small kernels whose
launch cost dominates small-batch decoding on a GPU. Graphs need static shapes:

* :class:`GraphedDecoder` — an SPLM's decoding state (the context channels' recurrent states) has a
  fixed size, so its step is graphed as it is.
* :class:`GraphedGPTDecoder` — the GPT's KV cache grows, so it is copied into buffers of a fixed
  capacity and every step attends over the whole buffer with the unwritten slots masked (the
  static-cache recipe of fast GPT decoders): the cost per step follows the capacity, not the context.

PARFLM / Fock (past states of every token) and the hybrid are not graphed here.
"""

from __future__ import annotations

import contextlib

import torch

from semsim.errors import SemsimError
from semsim.models.cache import DecodeState


def _autocast_for_capture():
    # autocast's cast cache would hold tensors created outside the graph's memory pool
    if torch.is_autocast_enabled("cuda"):
        return torch.autocast("cuda", torch.get_autocast_dtype("cuda"), cache_enabled=False)
    return contextlib.nullcontext()


def _capture(step, warmup: int):
    """Warm ``step`` up on a side stream, then record it: (graph, its output)."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side), torch.no_grad(), _autocast_for_capture():
        for _ in range(warmup):
            step(scratch=True)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph), torch.no_grad(), _autocast_for_capture():
        out = step(scratch=False)
    return graph, out


def _check_cuda(model):
    if not torch.cuda.is_available() or next(model.parameters()).device.type != "cuda":
        raise SemsimError("CUDA-graphed decoding needs a model on a CUDA device")


class GraphedDecoder:
    """``step(tokens (B, 1)) → logits (B, 1, V)``, continuing ``state`` (which it takes over)."""

    def __init__(self, model, state: DecodeState, warmup: int = 3):
        _check_cuda(model)
        if getattr(model, "reads_past_states", True) or getattr(model.config, "pos", None) == "sinusoidal" \
                or not hasattr(model, "channel") or hasattr(model, "blocks"):
            raise SemsimError(f"{type(model).__name__}: only constant-state SPLMs (learned or no positions) "
                              "are graphed by GraphedDecoder")
        if not state.context:
            raise SemsimError("prefill the state (model.decode on the prompt) before graphing its steps")
        self.model, self.state, self.limit = model, state, model.max_positions
        self.position = state.pos  # host copy, for the position limit
        batch = next(iter(state.context.values())).shape[0]
        self.tokens = torch.zeros(batch, 1, dtype=torch.long, device=next(model.parameters()).device)
        state.pos = torch.tensor(state.pos, device=self.tokens.device)  # advanced in place inside the graph
        static = dict(state.context)  # buffers the graph reads and writes back
        scratch_state = DecodeState(pos=state.pos.clone(), context={k: v.clone() for k, v in static.items()})

        def step(scratch: bool):
            if scratch:
                return model.decode(self.tokens, scratch_state)
            logits = model.decode(self.tokens, state)
            for layer, buf in static.items():
                buf.copy_(state.context[layer])
            return logits

        self.graph, self.logits = _capture(step, warmup)
        state.context.update(static)
        self._static = static  # read and written by the graph by address: kept alive with it

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """Decode one token per sequence; the returned logits are overwritten by the next step."""
        if self.limit is not None and self.position + 1 > self.limit:
            raise SemsimError(f"position {self.position + 1} is past this model's {self.limit} learned positions")
        self.tokens.copy_(tokens)
        self.graph.replay()
        self.position += 1
        return self.logits


class GraphedGPTDecoder:
    """``step(tokens (B, 1)) → logits (B, 1, V)`` for a GPT, over a static KV cache of ``capacity``
    positions filled from a prefilled ``state``."""

    def __init__(self, model, state: DecodeState, capacity: int, warmup: int = 3, capture: bool = True):
        """``capture=False`` runs the same static-cache step eagerly (any device): the graph's reference."""
        if capture:
            _check_cuda(model)
        if not hasattr(model, "blocks") or hasattr(model, "channel"):
            raise SemsimError(f"{type(model).__name__}: GraphedGPTDecoder graphs GPT decoders only")
        if not state.kv:
            raise SemsimError("prefill the state (model.decode on the prompt) before graphing its steps")
        capacity = min(capacity, model.max_positions)
        if state.pos >= capacity:
            raise SemsimError(f"the static cache ({capacity} positions) is full already at position {state.pos}")
        self.model, self.capacity, self.position = model, capacity, state.pos
        self.keys, self.values = [], []
        for i in range(len(model.blocks)):
            for buf, dst in zip(state.kv[i], (self.keys, self.values)):
                past = buf.view()
                static = past.new_zeros(*past.shape[:2], capacity, past.shape[3])
                static[:, :, : state.pos] = past
                dst.append(static)
        device = self.keys[0].device
        self.tokens = torch.zeros(self.keys[0].shape[0], 1, dtype=torch.long, device=device)
        self.pos = torch.tensor([state.pos], device=device)
        slots = torch.arange(capacity, device=device)
        keys_s, values_s = [k.clone() for k in self.keys], [v.clone() for v in self.values]
        pos_s = torch.zeros_like(self.pos)  # warm-up steps write slots from 0 of scratch buffers

        def step(scratch: bool):
            keys, values, pos = (keys_s, values_s, pos_s) if scratch else (self.keys, self.values, self.pos)
            x = model.wte(self.tokens) + model.wpe(pos).unsqueeze(0)
            visible = (slots <= pos).view(1, 1, 1, capacity)  # written slots only
            for block, k_all, v_all in zip(model.blocks, keys, values):
                att = block.attn
                B, _, C = x.shape
                q, k, v = att.qkv(block.ln1(x)).split(C, dim=2)
                q, k, v = (t.view(B, 1, att.n_head, C // att.n_head).transpose(1, 2) for t in (q, k, v))
                k_all.index_copy_(2, pos, k.to(k_all.dtype))
                v_all.index_copy_(2, pos, v.to(v_all.dtype))
                # one query row against the whole buffer: two matmuls and a masked softmax
                scores = (q @ k_all.transpose(-2, -1)) * (k.shape[-1] ** -0.5)
                y = scores.masked_fill(~visible, float("-inf")).softmax(-1).to(v_all.dtype) @ v_all
                x = x + att.proj(y.transpose(1, 2).reshape(B, 1, C))
                x = x + block.mlp(block.ln2(x))
            pos.add_(1)
            return model.ln_f(x) @ model.wte.weight.T

        # the graph reads these tensors by address: they must live as long as it does
        self._step, self._slots, self._scratch = step, slots, (keys_s, values_s, pos_s)
        self.graph, self.logits = _capture(step, warmup) if capture else (None, None)

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """Decode one token per sequence; the returned logits are overwritten by the next step."""
        if self.position + 1 > self.capacity:
            raise SemsimError(f"the static KV cache holds {self.capacity} positions; all are used")
        self.tokens.copy_(tokens)
        if self.graph is None:
            self.logits = self._step(scratch=False)
        else:
            self.graph.replay()
        self.position += 1
        return self.logits
