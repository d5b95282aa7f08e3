"""Hypersphere energy-based LM: a context query on the unit sphere settles among splat attractors,
and a mixture of experts reads the settled point out as next-token logits.

    q_t = normalize(W [e_t, mean_12(e), mean_64(e), mean_512(e)]_{≤t})     three causal scales
    E(x) = E_s(x) − λ·κ_c·(q_t·x)                                             splats + compositional pull to q_t
    x_t = damped gradient flow of E on the sphere from q_t (Langevin at T → 0), unrolled
    logits = LN(MoE_top2([x_t, q_t])) · Eᵀ

Training adds denoising score matching of the splat energy at the queries, on the sphere: for noise
level σ, x̃ = exp_q(σ·P_q ε) and the model score −grad E_s(x̃)/T is regressed on log_x̃(q)/σ² (the
small-noise score of the wrapped Gaussian), weighted by σ²; plus the experts' load-balancing loss.

Validation rows carry a ``monitor`` block: mean splat energy, the DSM loss, active splats (usage above
1e-3; usage decays by 0.99 a training step) and their mean age in steps. Not built yet: the splat-capacity
curriculum, merging and pruning by a criticality measure, warnings on those trends, diagnose verbs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from semsim.geometry.sphere import exp_map, log_map, project_tangent
from semsim.models import register
from semsim.models.base import LanguageModel
from semsim.physics.langevin import langevin_step
from semsim.potentials.splats import SplatStore


@dataclass
class SphereEBMConfig:
    vocab_size: int = 50257
    block_size: int = 512
    d_embed: int = 256  # token embedding width (tied with the output)
    latent: int = 640  # the sphere S^{latent−1}
    scales: tuple[int, ...] = (12, 64, 512)  # causal window lengths of the context encoder
    splats: int = 5000
    k: int = 64  # nearest splats a query feels
    kappa_min: float = 1.0
    kappa_max: float = 50.0
    temperature: float = 1.0
    settle_steps: int = 4  # unrolled deterministic steps in every forward
    settle_dt: float = 0.1
    settle_friction: float = 1.0
    pull: float = 1.0  # λ·κ_c of the compositional term
    dsm_sigmas: tuple[float, ...] = (0.01, 0.05, 0.1, 0.2, 0.5)
    dsm_weight: float = 0.1
    experts: int = 4
    top_experts: int = 2
    expert_hidden: int = 1024
    balance_weight: float = 0.01


def causal_window_means(e: torch.Tensor, window: int) -> torch.Tensor:
    """mean(e_{t−w+1..t}) at every t (fewer terms at the start), by cumulative sums: O(T)."""
    c = torch.cumsum(e, dim=1)
    T = e.shape[1]
    shifted = F.pad(c, (0, 0, window, 0))[:, :T]  # c_{t−w}, zero before the start
    n = torch.arange(1, T + 1, device=e.device).clamp(max=window).to(e.dtype).view(1, T, 1)
    return (c - shifted) / n


class TopKExperts(nn.Module):
    """Mixture of MLP experts with top-k routing; returns (output, Switch-style load-balancing loss)."""

    def __init__(self, d_in: int, d_out: int, hidden: int, experts: int, top: int):
        super().__init__()
        self.router = nn.Linear(d_in, experts, bias=False)
        self.up = nn.Parameter(torch.randn(experts, d_in, hidden) / d_in**0.5)
        self.down = nn.Parameter(torch.randn(experts, hidden, d_out) / hidden**0.5)
        self.top = top

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        probs = torch.softmax(self.router(z).float(), dim=-1)  # (…, E)
        gate, which = probs.topk(self.top, dim=-1)
        n_exp = probs.shape[-1]
        chosen = F.one_hot(which, n_exp).to(probs.dtype)  # (…, top, E)
        weight = (chosen * (gate / gate.sum(-1, keepdim=True)).unsqueeze(-1)).sum(-2)  # (…, E), 0 if unrouted
        # Every expert runs on every token and the gate zeroes the unrouted ones: with a few experts this
        # costs E/top times the routed work, and keeps each token's result independent of which other
        # tokens were routed where (a gathered batch changes its rounding with its size).
        h = F.gelu(torch.einsum("...i,eih->...eh", z, self.up))
        out = torch.einsum("...eh,eho,...e->...o", h, self.down, weight.to(h.dtype))
        dims = tuple(range(z.dim() - 1))
        balance = n_exp * ((chosen.sum(-2).mean(dims) / self.top) * probs.mean(dims)).sum()
        return out, balance


@register("sphere-ebm", SphereEBMConfig)
class SphereEBM(LanguageModel):
    def __init__(self, config: SphereEBMConfig, **_context):
        super().__init__()
        c = self.config = config
        if c.k > c.splats:
            raise ValueError(f"k = {c.k} nearest splats needs k ≤ splats = {c.splats}")
        if not 1 <= c.top_experts <= c.experts:
            raise ValueError(f"top_experts = {c.top_experts} must lie in 1..experts = {c.experts}")
        self.wte = nn.Embedding(c.vocab_size, c.d_embed)
        nn.init.normal_(self.wte.weight, 0.0, 0.02)
        self.encode = nn.Linear((1 + len(c.scales)) * c.d_embed, c.latent)
        self.splats = SplatStore(c.latent, c.splats, c.k, c.kappa_min, c.kappa_max)
        self.decoder = TopKExperts(2 * c.latent, c.d_embed, c.expert_hidden, c.experts, c.top_experts)
        self.ln = nn.LayerNorm(c.d_embed)

    @property
    def max_positions(self) -> int | None:
        return None  # no position table: the encoder's windows slide

    def embed(self, idx: torch.Tensor, start: int = 0) -> torch.Tensor:
        return self.wte(idx)

    def query(self, e: torch.Tensor) -> torch.Tensor:
        parts = [e] + [causal_window_means(e, w) for w in self.config.scales]
        z = self.encode(torch.cat(parts, -1))
        return F.normalize(z.to(torch.promote_types(z.dtype, torch.float32)), dim=-1)  # the sphere in ≥ fp32

    def settle(self, q: torch.Tensor, steps: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Deterministic damped flow of E from q: (settled x, splat energy there). In training, the
        splats' usage (responsibility received at the settled points) and age are recorded."""
        c = self.config
        x, v = q, torch.zeros_like(q)
        for _ in range(c.settle_steps if steps is None else steps):
            g, _, _, _ = self.splats.grad(x, c.temperature)
            g = g - c.pull * project_tangent(x, q)  # the compositional pull's gradient
            x, v = langevin_step(x, v, g, c.settle_dt, c.settle_friction)
        _, E, w, idx = self.splats.grad(x, c.temperature)
        if self.training:
            self.splats.record_use(w.detach(), idx)
        return x, E

    def dsm_loss(self, q: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Denoising score matching of E_s at the (detached) queries, over the noise levels."""
        c = self.config
        q = q.detach()
        total = q.new_zeros(())
        for sigma in c.dsm_sigmas:
            noise = torch.randn(q.shape, generator=generator, dtype=q.dtype, device=q.device)
            noisy = exp_map(q, sigma * project_tangent(q, noise))
            target = log_map(noisy, q) / sigma**2
            score = -self.splats.grad(noisy, c.temperature)[0] / c.temperature
            total = total + sigma**2 * (score - target).pow(2).sum(-1).mean()
        return total / len(c.dsm_sigmas)

    def forward_embeddings(self, x, idx, return_extras=False):
        c = self.config
        q = self.query(x)
        settled, E = self.settle(q)
        out, balance = self.decoder(torch.cat([settled, q], -1).to(x.dtype))
        logits = self.ln(out) @ self.wte.weight.T
        aux = None
        if self.training:
            aux = c.dsm_weight * self.dsm_loss(q) + c.balance_weight * balance
        extras = {}
        if return_extras:
            with torch.no_grad():
                splats = self.splats
                extras = {"hidden": [q, settled], "splat_energy": E.detach(), "monitor": {
                    # its own noise stream: monitoring must not move the training run's random state
                    "splat_energy": E.mean(), "dsm": self.dsm_loss(q, torch.Generator(q.device).manual_seed(0)),
                    "active_splats": (splats.usage > 1e-3).sum(), "mean_splat_age": splats.age.mean()}}
        return logits, aux, extras
