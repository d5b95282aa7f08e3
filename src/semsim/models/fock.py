"""Fock-PARFLM v2.1: PARFLM plus a pool of register particles on a LIFO stack.

Choices written down (the description leaves them open):
* **Creation.** At layer 0 each token t computes a creation gate g_t = σ(τ_r · (w_c·LN(x_t) + b_c)),
  where r = t mod M is the physical register it would write (a ring of M registers) and τ_r is that
  register's learnable creation temperature (initialised at 8.0). The token pushes a register iff
  g_t > 0.5; the push schedule is fixed for the forward pass, the gate value g_t scales the
  register's force so that creation still receives gradient (straight-through).
* **LIFO discipline.** Scanning positions in order: a push puts a new register on top (salience 1;
  a full stack of M drops its bottom). Each position reads the *top* live register — the newest
  first — and reading halves that register's salience; below 0.01 it is destroyed (popped), and the
  register beneath is read next. A register written at t is therefore read only at positions ≥ t.
  The scan runs in :mod:`semsim.kernels.lifo` (a Triton kernel on CUDA, NumPy on the CPU).
* **Contents and exchange.** At every layer the register written by token s holds key k = W_k h_s,
  value u = W_v h_s of the writer's current state (detached: causality), read through gated Q/K:
  the reader t receives the exchange force f_fock = sal · g_s · σ(q_t·k/√d_k) · W_o u. It is not the
  gradient of any energy (non-conservative); the energy book carries its work as ``fock_work``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from semsim.kernels.lifo import LifoStack, lifo_schedule, salience_table
from semsim.models import register
from semsim.models.cache import DecodeState
from semsim.models.parflm import PARFLM, PARFLMConfig


@dataclass
class FockConfig(PARFLMConfig):
    registers: int = 16  # M, the stack capacity
    register_key_dim: int = 64
    creation_temp: float = 8.0
    salience_decay: float = 0.5  # per read
    salience_floor: float = 0.01  # destroyed below


@register("fock-parflm", FockConfig)
class FockPARFLM(PARFLM):
    def __init__(self, config: FockConfig, **context):
        super().__init__(config, **context)
        d, dk, M = config.d_model, config.register_key_dim, config.registers
        self.create = nn.Linear(d, 1)
        self.create_temp = nn.Parameter(torch.full((M,), config.creation_temp))
        self.W_q = nn.Linear(d, dk, bias=False)
        self.W_k = nn.Linear(d, dk, bias=False)
        self.W_v = nn.Linear(d, dk, bias=False)
        self.W_o = nn.Linear(dk, d, bias=False)
        nn.init.normal_(self.W_o.weight, 0.0, 0.02)
        # salience of a register at its k-th read; the schedule kernel returns k
        table = salience_table(config.salience_decay, config.salience_floor, config.block_size)
        self.register_buffer("salience", torch.tensor(table), persistent=False)
        self._schedule = None

    def compile_for_training(self, scope: str = "whole", mode: str | None = None):
        # CUDA graphs made the regional-compiled Fock step 19× slower on an H100 (982 vs 52 ms;
        # benchmarks/results/cuda-graphs), so they are left out here.
        if mode in ("reduce-overhead", "max-autotune"):  # the two modes that capture CUDA graphs
            warnings.warn(f"fock: compile mode {mode!r} uses CUDA graphs, measured 19x slower for this model; "
                          "compiling without them", stacklevel=2)
            mode = None if mode == "reduce-overhead" else "max-autotune-no-cudagraphs"
        return super().compile_for_training(scope, mode)

    def creation_gates(self, x: torch.Tensor, t0: int = 0) -> torch.Tensor:
        T = x.shape[1]
        temp = self.create_temp[torch.arange(t0, t0 + T, device=x.device) % self.config.registers]
        return torch.sigmoid(temp * self.create(F.layer_norm(x, x.shape[-1:])).squeeze(-1))

    def begin_forward(self, h0, idx, state: DecodeState | None = None):
        super().begin_forward(h0, idx, state)
        c = self.config
        t0 = 0 if state is None else state.pos
        gates = self.creation_gates(h0, t0)
        push = (gates > 0.5).detach()
        if state is None:
            top, reads = lifo_schedule(push, c.registers, len(self.salience))
            all_gates = gates
        else:  # decoding: the stack and the writers' gates carry over from the earlier tokens
            stack = state.extra.setdefault("registers", LifoStack(h0.shape[0], c.registers, len(self.salience)))
            top, reads = (torch.from_numpy(a).to(h0.device) for a in stack.run(push.cpu().numpy(), t0))
            all_gates = state.past_states("gates", gates)
        has = top >= 0
        src = top.clamp_min(0)
        g_src = all_gates.gather(1, src) * has  # the writer's gate (0 where the stack is empty)
        self._schedule = (src, g_src * self.salience[reads].to(gates.dtype))

    def end_forward(self) -> None:
        self._schedule = None

    def interaction_forces(self, h, v, layer, past, t0=0):
        forces = super().interaction_forces(h, v, layer, past, t0)
        src, weight = self._schedule
        hs = past.gather(1, src.unsqueeze(-1).expand_as(h))  # the register writer's state (detached)
        k, u = self.W_k(hs), self.W_v(hs)
        match = torch.sigmoid((self.W_q(h) * k).sum(-1) / math.sqrt(k.shape[-1]))
        f = (weight * match).unsqueeze(-1) * self.W_o(u)
        forces["fock"] = f  # not the gradient of any energy: its work is booked apart
        return forces
