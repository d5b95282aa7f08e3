"""SPLM — the scalar-potential language model of Semantic Simulation.

Each token's hidden state h is a particle of mass m(x) with velocity v (v = 0 at layer 0).
Every layer is one damped Euler step (:mod:`semsim.physics.integrator`) on a single learned
potential V_θ(ξ, h) shared by all layers, where ξ is a causal summary of h_{≤t}
(:mod:`semsim.context`). Logits are h·Eᵀ with the token embedding E tied.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn as nn

from semsim.context import make_channel
from semsim.models import register
from semsim.models.base import LanguageModel
from semsim.models.cache import DecodeState
from semsim.per_forward import one_forward
from semsim.physics import TokenMass, attention_energy, damped_euler_step, stack_layers, step_energy
from semsim.potentials import make_potential


class Step(NamedTuple):
    """What one integration step did, for the energy book: v before and after the kick, h after the
    drift (before LayerNorm), the context ξ, V and f_θ at the start, and the other forces by name."""

    v: torch.Tensor
    v_kick: torch.Tensor
    h_drift: torch.Tensor
    xi: torch.Tensor
    V: torch.Tensor
    f_theta: torch.Tensor
    forces: dict[str, torch.Tensor]


@dataclass
class SPLMConfig:
    vocab_size: int = 50257
    block_size: int = 512
    d_model: int = 256
    n_layer: int = 8  # integration steps (weights shared across steps)
    dt: float = 1.0
    gamma: float = 0.30  # damping; fixed in the published setting
    learn_gamma: bool = False
    mass: str = "logfreq"  # logfreq (needs the corpus's surprisal table) | learned | uniform
    mass_scale: float = 1.0
    context: str = "ema"  # cummean | ema | legt | s4d
    ema_alphas: tuple[float, ...] = (0.25, 0.5, 0.75, 0.95)
    ema_debias: bool = True
    context_channels: int = 4  # legt: Legendre coefficients; s4d: output channels
    legt_theta: float = 32.0
    s4d_modes: int = 16
    # Where ξ is cut from the graph: "input" = ξ(h.detach()) (decay rates still learn),
    # "output" = ξ(h).detach() (no gradient at all), "none" = fully differentiable.
    detach_context: str = "input"
    potential: str = "mlp"  # mlp | sq1 | sq2 | sq3 | sq4
    hidden: int = 1024
    depth: int = 3
    act: str = "gelu"
    wells: int = 8  # SQ3
    rank: int = 4  # SQ2 / SQ4
    tau: float = 1.0  # SQ3 temperature
    residual_hidden: int = 128  # SQ4
    force: str = "closed"  # closed | autograd (the published create_graph reference)
    layer_norm: bool = True  # LayerNorm(h) after every step
    v_reg: float = 0.01  # λ_V · mean(V²)
    pos: str = "learned"  # learned | sinusoidal | none
    # rows of the learned position table (None: block_size); the published models train on 512-token
    # windows with a 1024-row table, which decoding may then use
    n_positions: int | None = None


def sinusoidal(T: int, d: int, start: int = 0) -> torch.Tensor:
    """Rows start … start+T−1 of the sinusoidal position table."""
    pos = torch.arange(start, start + T, dtype=torch.float32).unsqueeze(1)
    freq = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))
    pe = torch.zeros(T, d)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq[: d // 2])
    return pe


@register("splm", SPLMConfig)
class SPLM(LanguageModel):
    def __init__(self, config: SPLMConfig, surprisal: torch.Tensor | None = None, from_weights: bool = False,
                 **_context):
        """``surprisal``: the corpus's unigram table for a ``logfreq`` mass; ``from_weights``: a checkpoint
        about to be loaded brings it."""
        super().__init__()
        c = self.config = config
        d = c.d_model
        self.wte = nn.Embedding(c.vocab_size, d)
        nn.init.normal_(self.wte.weight, 0.0, 0.02)
        if c.pos == "learned":
            self.wpe = nn.Embedding(c.n_positions or c.block_size, d)
            nn.init.normal_(self.wpe.weight, 0.0, 0.02)
        elif c.pos == "sinusoidal":
            self.register_buffer("pe", 0.02 * sinusoidal(c.block_size, d), persistent=False)
        self.mass = TokenMass(c.mass, c.vocab_size, c.mass_scale, surprisal, from_weights)
        self.channel = make_channel(
            c.context,
            alphas=c.ema_alphas,
            debias=c.ema_debias,
            n=c.context_channels,
            theta=c.legt_theta,
            modes=c.s4d_modes,
        )
        self.d_xi = self.channel.n_channels * d
        self.potential = make_potential(
            c.potential,
            self.d_xi,
            d,
            hidden=c.hidden,
            depth=c.depth,
            act=c.act,
            wells=c.wells,
            rank=c.rank,
            tau=c.tau,
            residual_hidden=c.residual_hidden,
        )
        if c.learn_gamma:
            self.log_gamma = nn.Parameter(torch.tensor(math.log(c.gamma)))
        self._compiled_layer = None  # set by compile_for_training
        self.ln = nn.LayerNorm(d) if c.layer_norm else nn.Identity()

    # ------------------------------------------------------------------ pieces
    @property
    def gamma(self) -> float | torch.Tensor:
        return torch.exp(self.log_gamma) if self.config.learn_gamma else self.config.gamma

    def embed(self, idx: torch.Tensor, start: int = 0) -> torch.Tensor:
        x = self.wte(idx)
        T = idx.shape[1]
        if self.config.pos == "learned":
            x = x + self.wpe(start + torch.arange(T, device=idx.device))  # start: int or device counter
        elif self.config.pos == "sinusoidal":
            if start + T <= len(self.pe):
                x = x + self.pe[start : start + T]
            else:  # past the block: the table continues by its formula
                x = x + 0.02 * sinusoidal(T, self.config.d_model, start).to(x)
        return x

    @property
    def max_positions(self) -> int | None:
        return (self.config.n_positions or self.config.block_size) if self.config.pos == "learned" else None

    def context(self, h: torch.Tensor, layer: int = 0, state: DecodeState | None = None) -> torch.Tensor:
        """ξ flattened to (B, T, C·d), cut from the graph as ``detach_context`` says. With a decoding
        ``state``, the channel continues from that step's carried state (and updates it)."""
        mode = self.config.detach_context
        h_in = h.detach() if mode == "input" else h
        if state is None:
            xi = self.channel(h_in)
        else:
            xi, state.context[layer] = self.channel.stream(h_in, state.context.get(layer), state.pos)
        if mode == "output":
            xi = xi.detach()
        return xi.flatten(-2)

    def force(self, xi: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.config.force == "autograd":
            return self.potential.force_autograd(xi, h)
        return self.potential.force(xi, h)

    # ------------------------------------------------------------------ dynamics
    tied_head = True
    graph_safe = True

    def final_states(self, x, idx):
        return self.integrate(x, idx)

    def forward_embeddings(self, x, idx, return_extras=False, state: DecodeState | None = None):
        h, aux, extras = self.integrate(x, idx, return_extras, state)
        return h @ self.wte.weight.T, aux, extras

    def decode(self, idx: torch.Tensor, state: DecodeState) -> torch.Tensor:
        """Incremental decoding (see :meth:`LanguageModel.decode`): each new token runs the L steps
        against the carried context state, so its cost does not grow with the context (a hybrid's
        attention layers read their KV caches from the same state)."""
        self.check_positions(state.pos + idx.shape[1])
        logits = self.forward_embeddings(self.embed(idx, state.pos), idx, state=state)[0]
        state.pos += idx.shape[1]
        return logits

    def layer_kinds(self) -> str:
        """The stack, one letter a layer: S = an integration step on the shared V_θ (hybrids add
        A = a causal attention block, see :meth:`attention_layer`)."""
        return "S" * self.config.n_layer

    def attention_layer(self, i: int, h: torch.Tensor, state: DecodeState | None = None) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no attention layers")

    def integrate(self, x, idx, return_extras=False, state: DecodeState | None = None):
        """Run the stack from layer-0 states x: (h_L, aux_loss, extras). v starts at 0, is carried
        through attention layers unchanged, and updated by every integration step."""
        c = self.config
        m = self.mass(idx)
        h, v = x, torch.zeros_like(x)
        reg = x.new_zeros(())
        steps: list[Step | None] = []  # per layer: the step's record, None for an attention layer
        traj = [(h, v)]
        self.begin_forward(h, idx, state)
        # the compiled region serves training steps only: the probe, validation and generation run other
        # shapes, and recompiling for each would cost more than it saves
        layer_fn = self._compiled_layer if self._compiled_layer and self.training and state is None else self._layer
        if layer_fn is not self._layer and x.requires_grad:
            v = x * 0  # v needing grad at every layer, as after the first: one compiled graph, not two
        n_steps = n_attn = 0
        with one_forward(self, h, streaming=state is not None):  # V_θ's and ξ's weights, built once
            for kind in self.layer_kinds():
                if kind == "A":
                    h, rec = self.attention_layer(n_attn, h, state), None
                    n_attn += 1
                else:
                    h, v, rec = layer_fn(h, v, m, n_steps, state)
                    n_steps += 1
                    if state is None:  # the regulariser is a training term: decoding skips it
                        reg = reg + rec.V.float().pow(2).mean()
                if return_extras:
                    steps.append(rec)
                    traj.append((h, v))
        self.end_forward()
        aux = c.v_reg * reg / n_steps if c.v_reg > 0 else None
        extras = self._bookkeeping(m, steps, traj) if return_extras else {}
        return h, aux, extras

    def _layer(self, h, v, m, layer: int, state: DecodeState | None = None):
        """One integration step: f = f_θ + Σ interactions, damped Euler, LayerNorm → (h_next, v_new, Step)."""
        xi = self.context(h, layer, state)
        f_theta, V = self.force(xi, h)
        f, others = f_theta, {}
        # the states earlier tokens had at this step (detached: sources never feel the reader)
        past, t0 = h.detach(), 0
        if state is not None and self.reads_past_states:
            past, t0 = state.past_states(layer, h.detach()), state.pos
        for name, f_extra in self.interaction_forces(h, v, layer, past, t0).items():
            f = f + f_extra  # f = f_θ + f_φ + f_fock
            others[name] = f_extra
        step = damped_euler_step(h, v, f, m, self.config.dt, self.gamma)
        return self.ln(step.h), step.v, Step(v, step.v_kick, step.h, xi, V, f_theta, others)

    def compile_for_training(self, scope: str = "whole", mode: str | None = None):
        """``regional``: the L steps repeat one layer, so compile that region once.

        Measured on an H100 for splm-multixi-sq3 (benchmarks/results/compile-scope): whole graph 118.5 s to
        compile, 18.97 ms/step; regional 27.6 s, 32.79 ms/step (eager 62.51). Regional wins for runs
        shorter than ~6,600 steps, the whole graph beyond.
        """
        if scope == "whole":
            return super().compile_for_training(mode=mode)
        self._compiled_layer = torch.compile(self._layer, mode=mode)
        return self

    # ------------------------------------------------------------------ hooks for richer family members
    reads_past_states = False  # interactions read earlier tokens' states (decoding must keep them)

    def begin_forward(self, h0: torch.Tensor, idx: torch.Tensor, state: DecodeState | None = None) -> None:
        """Called once per forward with the layer-0 states (e.g. to schedule register pushes)."""

    def end_forward(self) -> None:
        """Called once per forward after the last layer: drop what ``begin_forward`` kept. A tensor left on
        the module would keep this step's autograd graph alive into the next (and a CUDA-graph capture
        fails on the stale gradient-accumulation nodes such a graph holds)."""

    def interaction_forces(
        self, h: torch.Tensor, v: torch.Tensor, layer: int, past: torch.Tensor, t0: int = 0
    ) -> dict[str, torch.Tensor]:
        """Extra forces beside f_θ, by name, each (B, T, d); the energy book carries each one's work.

        ``past`` (B, t0 + T, d) holds the detached states of every position so far at this step, the
        T current ones last; ``t0`` is the absolute position of h's first token."""
        return {}

    @torch.no_grad()
    def _bookkeeping(self, m, steps: list[Step | None], traj) -> dict:
        """Per-layer energy book (:mod:`semsim.physics.energy`), V at every layer boundary, the trajectory."""
        energy = self.potential.energy
        V = [energy(self.context(h), h) for h, _ in traj]  # V(ξ_ℓ, h_ℓ) at each boundary
        per_layer = []
        for i, rec in enumerate(steps):
            (h_next, v_next) = traj[i + 1]
            if rec is None:
                per_layer.append(attention_energy(m, v_next, V[i], V[i + 1]))
                continue
            per_layer.append(step_energy(
                m, self.config.dt, rec.v, rec.v_kick, v_next, V[i], energy(rec.xi, rec.h_drift),
                energy(rec.xi, h_next), V[i + 1], rec.f_theta, rec.forces))
        return {
            "energy": stack_layers(per_layer),  # name -> (L,) means over tokens
            "potential": V,  # V at every layer boundary, (B, T) each
            "hidden": [h for h, _ in traj],
            "velocity": [v for _, v in traj],
            "mass": m,
        }

    @torch.no_grad()
    def attractors(self, idx: torch.Tensor, layer: int = -1, top: int = 5) -> dict:
        """SQ models: well centres μ_k(ξ) at a layer, their weights, and nearest tokens through Eᵀ."""
        if not hasattr(self.potential, "centres"):
            raise ValueError(f"potential {self.config.potential!r} has no explicit centres")
        out = self.forward(idx, return_extras=True)
        h = out.extras["hidden"][layer]
        xi = self.context(h)
        mu, w = self.potential.centres(xi, h)
        tokens = (mu @ self.wte.weight.T).topk(top, dim=-1).indices
        return {"centres": mu, "weights": w, "nearest_tokens": tokens, "context": xi}
