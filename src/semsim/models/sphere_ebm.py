"""Hypersphere energy-based LM: a context query on the unit sphere settles among splat attractors,
and a mixture of experts reads the settled point out as next-token logits.

    q_t = normalize(W [e_t, mean_12(e), mean_64(e), mean_512(e)]_{≤t})     three causal scales
    E(x) = E_s(x) − λ·κ_c·(q_t·x)                                             splats + compositional pull to q_t
    x_t = damped gradient flow of E on the sphere from q_t (Langevin at T → 0), unrolled
    logits = LN(MoE_top2([x_t, q_t])) · Eᵀ

Training adds denoising score matching of the splat energy at the queries, on the sphere: for noise
level σ, x̃ = exp_q(σ·P_q ε) and the model score −grad E_s(x̃)/T is regressed on log_x̃(q)/σ² (the
small-noise score of the wrapped Gaussian), weighted by σ²; plus the experts' load-balancing loss.

A geometric regulariser spreads the splat centres: the frame potential mean_{i≠j}(μ_i·μ_j)² over a
random sample of the in-use centres (lowest for well-spread centres), weighted by ``geometry_weight``.

Capacity curriculum: ``curriculum`` lists the splats in use in equal-length phases of the run (published:
5K → 30K → 50K) and ``curriculum_temperature`` the temperature T of each; a new phase's splats start at
the worst-covered recent queries (highest E_s).

Self-organised criticality: every ``soc_every`` steps the active share (splats with usage above 1e-3 among
those in use) goes into a history buffer; the criticality measure is its mean over the buffer. Past
``soc_threshold`` (0.8) the store is crowded: near-duplicate splats merge (cos ≥ ``merge_cos``), dead ones
(unused for ``dead_age`` steps) are pruned, and the freed slots re-seed at the worst-covered queries.
The consolidation rate (merged + pruned per 1,000 steps) is logged.

Validation rows carry a ``monitor`` block: mean splat energy, the DSM loss, active splats (usage above
1e-3; usage decays by 0.99 a training step), their mean age in steps, criticality, temperature.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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
    geometry_weight: float = 0.01
    curriculum: tuple[int, ...] = ()  # splats in use per equal phase; () = all ``splats`` from the start
    curriculum_temperature: tuple[float, ...] = ()  # T per phase; () = ``temperature`` throughout
    splat_init: str = "random"  # or a checkpoint folder whose token embeddings seed the centres
    soc_every: int = 50  # steps between criticality checks
    soc_history: int = 20  # checks the criticality measure averages over
    soc_threshold: float = 0.8
    merge_cos: float = 0.98
    dead_age: int = 2000


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
    def __init__(self, config: SphereEBMConfig, from_weights: bool = False, **_context):
        super().__init__()
        c = self.config = config
        if c.k > c.splats:
            raise ValueError(f"k = {c.k} nearest splats needs k ≤ splats = {c.splats}")
        if not 1 <= c.top_experts <= c.experts:
            raise ValueError(f"top_experts = {c.top_experts} must lie in 1..experts = {c.experts}")
        self.wte = nn.Embedding(c.vocab_size, c.d_embed)
        nn.init.normal_(self.wte.weight, 0.0, 0.02)
        self.encode = nn.Linear((1 + len(c.scales)) * c.d_embed, c.latent)
        init = None if from_weights or c.splat_init == "random" else embeddings_for_splats(c.splat_init, c)
        self.splats = SplatStore(c.latent, c.splats, c.k, c.kappa_min, c.kappa_max, init=init)
        if c.curriculum:
            self.splats.grow(c.curriculum[0])
        self.register_buffer("temperature", torch.tensor(float(c.temperature)))
        if c.curriculum_temperature:
            self.temperature.fill_(c.curriculum_temperature[0])
        self.register_buffer("criticality_history", torch.zeros(c.soc_history))
        self.register_buffer("soc_checks", torch.tensor(0))
        self.register_buffer("consolidated", torch.zeros(2))  # (merged, pruned) over the run
        self._progress, self._applied_phase = 0.0, None
        self._recent: torch.Tensor | None = None  # the last training batch's settled points and energies
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

    def field(self, x: torch.Tensor, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(Riemannian gradient, value) of the whole energy E(x) = E_s(x) − λκ_c·(q·x) given the query q."""
        g, E, _, _ = self.splats.grad(x, self.temperature)
        pull = self.config.pull
        return g - pull * project_tangent(x, q), E - pull * (q * x).sum(-1)

    def settle(self, q: torch.Tensor, steps: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Deterministic damped flow of E from q: (settled x, splat energy there). In training, the
        splats' usage (responsibility received at the settled points) and age are recorded."""
        c = self.config
        x, v = q, torch.zeros_like(q)
        for _ in range(c.settle_steps if steps is None else steps):
            x, v = langevin_step(x, v, self.field(x, q)[0], c.settle_dt, c.settle_friction)
        _, E, w, idx = self.splats.grad(x, self.temperature)
        if self.training:
            self.splats.record_use(w.detach(), idx)
            self._recent = (x.detach().reshape(-1, x.shape[-1]), E.detach().reshape(-1))
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
            score = -self.splats.grad(noisy, self.temperature)[0] / self.temperature
            total = total + sigma**2 * (score - target).pow(2).sum(-1).mean()
        return total / len(c.dsm_sigmas)

    def geometry_loss(self, sample: int = 1024) -> torch.Tensor:
        """Frame potential of a random sample of in-use centres: mean_{i≠j} (μ_i·μ_j)²."""
        n = self.splats.active
        pick = torch.randperm(n, device=self.splats.mu.device)[: min(sample, n)]
        mu = self.splats.centres()[pick]
        cos2 = (mu @ mu.T).pow(2)
        m = len(pick)
        return (cos2.sum() - cos2.diagonal().sum()) / max(m * (m - 1), 1)

    # ------------------------------------------------------------------ curriculum and consolidation
    def set_training_progress(self, fraction: float) -> None:
        self._progress = fraction

    def phase(self, fraction: float | None = None) -> int:
        c = self.config
        n = max(len(c.curriculum), len(c.curriculum_temperature), 1)
        return min(int((self._progress if fraction is None else fraction) * n), n - 1)

    def criticality(self) -> float:
        n = min(int(self.soc_checks), self.config.soc_history)
        return float(self.criticality_history[:n].mean()) if n else 0.0

    def worst_covered(self, n: int) -> torch.Tensor | None:
        """Up to ``n`` recent settled points where the splat energy is highest (least covered)."""
        if self._recent is None:
            return None
        x, E = self._recent
        return x[E.float().topk(min(n, len(E))).indices]

    @torch.no_grad()
    def after_step(self, step: int) -> dict | None:
        """Called by the trainer after every optimiser step; returns a row to log when the splat store
        changed (a curriculum phase began) or a criticality check ran, else None."""
        c = self.config
        event = {}
        ph = self.phase()
        if c.curriculum and c.curriculum[ph] > self.splats.active:
            added = self.splats.grow(c.curriculum[ph], self.worst_covered(c.curriculum[ph] - self.splats.active))
            event.update(phase=ph, added_splats=added)
        if c.curriculum_temperature and ph != self._applied_phase:
            self.temperature.fill_(c.curriculum_temperature[ph])
            if self._applied_phase is not None:  # None: first call of this object (a new or resumed run)
                event.update(phase=ph)
        self._applied_phase = ph
        if c.soc_every and step % c.soc_every == 0:
            i = int(self.soc_checks) % c.soc_history
            self.criticality_history[i] = self.splats.active_share()
            self.soc_checks += 1
            crit = self.criticality()
            merged = pruned = 0
            if crit > c.soc_threshold and self._recent is not None:
                merged, pruned = self.splats.consolidate(c.merge_cos, c.dead_age, self.worst_covered(4096))
                self.consolidated += torch.tensor([merged, pruned], dtype=self.consolidated.dtype,
                                                  device=self.consolidated.device)
            event.update(criticality=round(crit, 4), merged=merged, pruned=pruned,
                         consolidation_rate=(merged + pruned) * 1000.0 / c.soc_every)
        if not event:
            return None
        return {**event, "splats_in_use": self.splats.active, "active_splats": int((self.splats.usage > 1e-3).sum()),
                "temperature": round(float(self.temperature), 6)}

    def forward_embeddings(self, x, idx, return_extras=False):
        c = self.config
        q = self.query(x)
        settled, E = self.settle(q)
        out, balance = self.decoder(torch.cat([settled, q], -1).to(x.dtype))
        logits = self.ln(out) @ self.wte.weight.T
        aux = None
        if self.training:
            aux = c.dsm_weight * self.dsm_loss(q) + c.balance_weight * balance
            if c.geometry_weight:
                aux = aux + c.geometry_weight * self.geometry_loss()
        extras = {}
        if return_extras:
            with torch.no_grad():
                splats = self.splats
                extras = {"hidden": [q, settled], "splat_energy": E.detach(), "monitor": {
                    # its own noise stream: monitoring must not move the training run's random state
                    "splat_energy": E.mean(), "dsm": self.dsm_loss(q, torch.Generator(q.device).manual_seed(0)),
                    "active_splats": (splats.usage > 1e-3).sum(), "mean_splat_age": splats.age[: splats.active].mean(),
                    "splats_in_use": splats.n_active, "criticality": self.criticality(),
                    "temperature": self.temperature}}
        return logits, aux, extras


def embeddings_for_splats(path: str, c: SphereEBMConfig) -> torch.Tensor:
    """The first ``c.splats`` rows of a semsim checkpoint's token embedding ``wte.weight`` as centres.

    Narrower embeddings (d < latent) are placed on the sphere by a fixed orthonormal map R^d → R^latent,
    which keeps every cosine between them; wider ones cannot be, and are refused."""
    from safetensors import safe_open

    weights = Path(path) / "model.safetensors"
    if not weights.is_file():
        raise ValueError(f"model.splat_init = {path!r}: no semsim checkpoint there (no model.safetensors); "
                         "give a checkpoint folder or 'random'")
    with safe_open(str(weights), "pt") as f:
        if "wte.weight" not in f.keys():
            raise ValueError(f"model.splat_init = {path!r}: that checkpoint has no token embedding wte.weight")
        emb = f.get_tensor("wte.weight").float()[: c.splats]
    d = emb.shape[-1]
    if d > c.latent:
        raise ValueError(f"model.splat_init = {path!r}: its embeddings are {d}-d, wider than the {c.latent}-d "
                         "sphere (dims mismatched); use a checkpoint with d ≤ latent or raise model.latent")
    if d < c.latent:  # an isometry: orthonormal columns from a fixed-seed QR
        q, _ = torch.linalg.qr(torch.randn(c.latent, d, generator=torch.Generator().manual_seed(0)))
        emb = emb @ q.T
    return emb
