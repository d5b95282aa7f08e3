"""A whole training step — forward, backward, gradient clipping, AdamW — captured once as a CUDA graph.

Eager PyTorch launches each of a step's 1,000–4,000 kernels from Python; at 16 × 512 tokens and
d = 256 the GPU finishes them faster than the host issues them, so the step time is the host's.
Replaying a captured graph issues the whole step at once. Shapes must be static (a fixed batch and
block), nothing in the step may read a value back to the host, and the optimiser must be
``capturable`` with its learning rate a device tensor (``make_optimizer(..., capturable=True)``). The batch is
copied into static input buffers, and the loss and gradient norm come back as static outputs.
Random numbers (PARFLM's Gumbel noise) advance on every replay: PyTorch registers its CUDA
generator with the graph.
"""

from __future__ import annotations

import torch

from semsim.training.clipping import clip_and_step


class GraphedTrainStep:
    # (optimiser, parameters, max norm) -> norm: clip, then step; an attribute so a benchmark can time another
    clip_and_step = staticmethod(clip_and_step)

    def __init__(self, model: torch.nn.Module, fwd, optimizer: torch.optim.Optimizer, grad_clip: float,
                 autocast, warmup: int = 3):
        """``fwd`` is what the step calls (the model, or its compiled form); ``autocast`` a context
        manager factory (e.g. ``lambda: torch.autocast("cuda", torch.bfloat16)``). The first
        ``warmup`` calls run eagerly on a side stream (Triton JIT, cuBLAS workspaces, optimiser state);
        the next one captures the graph, and every call from then on replays it."""
        self.model, self.fwd, self.opt, self.clip, self.autocast = model, fwd, optimizer, grad_clip, autocast
        self.warmup, self.calls = warmup, 0
        self.graph = None
        self.x = self.y = self.loss = self.gnorm = None

    def _step(self):
        with self.autocast():
            out = self.fwd(self.x, targets=self.y)
        out.objective.backward()
        gnorm = self.clip_and_step(self.opt, self.model.parameters(), self.clip)
        return out.loss.detach(), gnorm

    def set_lr(self, lr: float) -> None:
        for group in self.opt.param_groups:
            group["lr"].fill_(lr)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One step on batch (x, y): returns (loss, gradient norm), device scalars."""
        if self.x is None:
            self.x, self.y = torch.empty_like(x), torch.empty_like(y)
        self.x.copy_(x, non_blocking=True)
        self.y.copy_(y, non_blocking=True)
        self.calls += 1
        if self.graph is not None:
            self.graph.replay()
            return self.loss, self.gnorm
        if self.calls <= self.warmup:  # eager, on a side stream as capture requires
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                self.opt.zero_grad(set_to_none=True)
                loss, gnorm = self._step()
            torch.cuda.current_stream().wait_stream(side)
            return loss, gnorm
        self.opt.zero_grad(set_to_none=True)  # the graph allocates the gradients it then reuses
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.loss, self.gnorm = self._step()
        self.graph.replay()
        return self.loss, self.gnorm
