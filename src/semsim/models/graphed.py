"""One-token decode steps of a constant-state model, captured once and replayed as a CUDA graph.

An SPLM's decoding state (the context channels' recurrent states) has a fixed size, so a decode
step has static shapes and can be recorded as one CUDA graph: a replay launches the whole step at
once, instead of the few hundred small kernels that dominate batch-1 decoding. Families whose state
grows with the context (PARFLM/Fock past states, KV caches) are not graphed here.
"""

from __future__ import annotations

import contextlib

import torch

from semsim.errors import SemsimError
from semsim.models.cache import DecodeState


class GraphedDecoder:
    """``step(tokens (B, 1)) → logits (B, 1, V)``, continuing ``state`` (which it takes over)."""

    def __init__(self, model, state: DecodeState, warmup: int = 3):
        if not torch.cuda.is_available() or next(model.parameters()).device.type != "cuda":
            raise SemsimError("CUDA-graphed decoding needs a model on a CUDA device")
        if getattr(model, "reads_past_states", True) or getattr(model.config, "pos", None) == "sinusoidal" \
                or not hasattr(model, "channel") or hasattr(model, "blocks"):
            raise SemsimError(f"{type(model).__name__}: only constant-state SPLMs (learned or no positions) "
                              "can be CUDA-graphed")
        if not state.context:
            raise SemsimError("prefill the state (model.decode on the prompt) before graphing its steps")
        self.model, self.state, self.limit = model, state, model.max_positions
        self.position = state.pos  # host copy, for the position limit
        batch = next(iter(state.context.values())).shape[0]
        device = next(model.parameters()).device
        self.tokens = torch.zeros(batch, 1, dtype=torch.long, device=device)
        state.pos = torch.tensor(state.pos, device=device)  # advanced in place inside the graph
        static = dict(state.context)  # buffers the graph reads and writes back
        amp = (torch.autocast("cuda", torch.get_autocast_dtype("cuda"), cache_enabled=False)
               if torch.is_autocast_enabled("cuda") else contextlib.nullcontext())
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side), torch.no_grad(), amp:  # warm-up on a scratch copy of the state
            scratch = DecodeState(pos=state.pos.clone(), context={k: v.clone() for k, v in static.items()})
            for _ in range(warmup):
                model.decode(self.tokens, scratch)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph), torch.no_grad(), amp:
            self.logits = model.decode(self.tokens, state)
            for layer, buf in static.items():
                buf.copy_(state.context[layer])
        state.context.update(static)

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """Decode one token per sequence; the returned logits are overwritten by the next step."""
        if self.limit is not None and self.position + 1 > self.limit:
            raise SemsimError(f"position {self.position + 1} is past this model's {self.limit} learned positions")
        self.tokens.copy_(tokens)
        self.graph.replay()
        self.position += 1
        return self.logits
