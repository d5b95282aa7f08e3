"""Manifold-guided graph LM: token states pass messages over a frozen token graph (see
:mod:`semsim.manifold`) in ``hops`` rounds, each round

    h += Wo · (σ(Ws·f(x_t)) ⊙ R(θ_t) Σ_{s≤t, t−s<W} π_ts R(−θ_s) Wv·LN(h)_s)     graph message passing
    h += MHA(LN(h); bias_h(t, s) = −β_h |z(x_t) − z(x_s)|² / 64)                  manifold-conditioned attention
    h += MLP(LN(h))

- f(x) ∈ R^320: the token's frozen spectral features (Hessian modes + SVD coordinates); z(x) ∈ R^64 the SVD
  coordinates alone. σ(Ws·f) is the spectral modulation (a per-channel gate set by the token's place).
- π_t = sparsemax over the earlier positions s of q_t·k_s/√d + g(x_t, x_s): g is log w when x_s is one of
  x_t's manifold neighbours (or x_t itself), a learned penalty otherwise. Sparsemax routes each message to
  few edges, exactly zero elsewhere.
- R(θ) rotates channel pairs by angles θ(x) = Θ·z(x): moving a message from s to t applies R(θ_t − θ_s),
  the parallel transport of a flat connection on the manifold (path-independent), computed per position
  as R(θ_t)·Σ π R(−θ_s)(·) so it costs no T × T × d tensor.
Strictly causal: position t reads positions s ≤ t only (the probe checks it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from semsim.models import register
from semsim.models.base import LanguageModel


@dataclass
class ManifoldLMConfig:
    vocab_size: int = 1024
    block_size: int = 512
    d_model: int = 500
    hops: int = 4
    n_head: int = 2
    window: int = 128  # W: how far back a graph message may come from
    mlp_ratio: int = 3
    # the frozen manifold (built from the corpus's training tokens; see semsim.manifold.ManifoldSpec)
    manifold_steps: int = 5000
    manifold_dim: int = 16
    spectral_modes: int = 256
    svd_dims: int = 64
    graph_k: int = 16
    manifold_seed: int = 0

    def manifold_spec(self):
        from semsim.manifold import ManifoldSpec

        return ManifoldSpec(steps=self.manifold_steps, dim=self.manifold_dim, modes=self.spectral_modes,
                            svd_dims=self.svd_dims, graph_k=self.graph_k, seed=self.manifold_seed)


def sparsemax(z: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Euclidean projection of z onto the simplex (Martins & Astudillo, 2016): softmax's sparse
    counterpart. Not in PyTorch; autograd through this form gives its exact Jacobian
    ∂p_i/∂z_j = [i,j ∈ S](δ_ij − 1/|S|)."""
    z = z - z.max(dim=dim, keepdim=True).values
    zs = z.sort(dim=dim, descending=True).values
    k = torch.arange(1, z.shape[dim] + 1, device=z.device, dtype=z.dtype)
    k = k.view([-1 if i == (dim % z.dim()) else 1 for i in range(z.dim())])
    cs = zs.cumsum(dim)
    support = (1 + k * zs > cs).sum(dim=dim, keepdim=True)
    tau = (cs.gather(dim, support - 1) - 1) / support.to(z.dtype)
    return (z - tau).clamp_min(0)


def rotate(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """R(θ) on channel pairs (2i, 2i+1); θ has one angle per pair (broadcast over x's leading dims)."""
    a, b = x[..., 0::2], x[..., 1::2]
    c, s = torch.cos(theta), torch.sin(theta)
    return torch.stack((a * c - b * s, a * s + b * c), dim=-1).flatten(-2)


class GraphHop(nn.Module):
    def __init__(self, c: ManifoldLMConfig, n_features: int):
        super().__init__()
        d = c.d_model
        self.ln_mp, self.ln_att, self.ln_mlp = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.out = nn.Linear(d, d, bias=False)
        self.spectral_gate = nn.Linear(n_features, d)
        self.theta = nn.Linear(c.svd_dims, d // 2, bias=False)
        self.off_graph = nn.Parameter(torch.tensor(-2.0))  # score of an edge to a non-neighbour token
        self.att_qkv = nn.Linear(d, 3 * d, bias=False)
        self.att_out = nn.Linear(d, d, bias=False)
        self.metric = nn.Parameter(torch.full((c.n_head,), -2.0))  # β_h = softplus(·) ≥ 0, 0.13 at the start
        self.mlp = nn.Sequential(nn.Linear(d, c.mlp_ratio * d), nn.GELU(), nn.Linear(c.mlp_ratio * d, d))
        self.n_head, self.window = c.n_head, c.window

    def forward(self, h, feats, z, graph_bias, window_mask, causal, dist):
        """``dist``: (B, 1, T, T) squared manifold distances |z_t − z_s|² / dims (the same for every hop)."""
        B, T, d = h.shape
        q, k, v = self.qkv(self.ln_mp(h)).split(d, dim=-1)
        scores = (q @ k.transpose(1, 2)).float() / math.sqrt(d) + torch.where(graph_bias > -1e30, graph_bias,
                                                                              self.off_graph.float())
        pi = sparsemax(scores.masked_fill(~window_mask, -1e4), dim=-1).to(v.dtype)
        theta = self.theta(z)
        msg = rotate(pi @ rotate(v, -theta), theta)
        h = h + self.out(torch.sigmoid(self.spectral_gate(feats)) * msg)

        q, k, v = (t.view(B, T, self.n_head, d // self.n_head).transpose(1, 2)
                   for t in self.att_qkv(self.ln_att(h)).split(d, dim=-1))
        bias = -F.softplus(self.metric).view(1, -1, 1, 1) * dist
        bias = bias.masked_fill(~causal.view(1, 1, T, T), float("-inf")).to(q.dtype)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        h = h + self.att_out(y.transpose(1, 2).reshape(B, T, d))
        return h + self.mlp(self.ln_mlp(h))


@register("manifold-lm", ManifoldLMConfig)
class ManifoldLM(LanguageModel):
    def __init__(self, config: ManifoldLMConfig, manifold=None, from_weights: bool = False, **_context):
        super().__init__()
        c = self.config = config
        if c.d_model % 2 or c.d_model % c.n_head:
            raise ValueError(f"d_model = {c.d_model} must be even and divisible by n_head = {c.n_head}")
        if manifold is None and not from_weights:
            raise ValueError("the manifold LM needs its token manifold: build it with the corpus "
                             "(semsim.manifold.manifold_for_corpus; the trainer does) or load a checkpoint")
        n_feat = c.spectral_modes + c.svd_dims
        V = c.vocab_size
        # frozen: persistent buffers travel in the checkpoint and the artifact
        self.register_buffer("features", torch.zeros(V, n_feat))
        self.register_buffer("coords", torch.zeros(V, c.svd_dims))
        self.register_buffer("neighbours", torch.zeros(V, c.graph_k, dtype=torch.long))
        self.register_buffer("edge_weights", torch.ones(V, c.graph_k))
        if manifold is not None:
            nv = len(manifold.features)
            if nv > V or manifold.features.shape[1] != n_feat or manifold.neighbours.shape[1] != c.graph_k:
                raise ValueError(f"the manifold ({nv} tokens × {manifold.features.shape[1]} features, "
                                 f"{manifold.neighbours.shape[1]} neighbours) does not fit the config "
                                 f"({V} tokens × {n_feat}, {c.graph_k})")
            self.features[:nv] = torch.from_numpy(manifold.features)
            self.coords[:nv] = torch.from_numpy(manifold.coords)
            self.neighbours[:nv] = torch.from_numpy(manifold.neighbours)
            self.edge_weights[:nv] = torch.from_numpy(manifold.weights)
        self.wte = nn.Embedding(V, c.d_model)
        nn.init.normal_(self.wte.weight, 0.0, 0.02)
        self.feat_in = nn.Linear(n_feat, c.d_model, bias=False)
        self.hops = nn.ModuleList(GraphHop(c, n_feat) for _ in range(c.hops))
        self.ln_f = nn.LayerNorm(c.d_model)

    @property
    def max_positions(self) -> int | None:
        return None  # no position table; the message window and the manifold carry order

    def embed(self, idx: torch.Tensor, start: int = 0) -> torch.Tensor:
        return self.wte(idx) + self.feat_in(self.features[idx])

    def graph_bias(self, idx: torch.Tensor) -> torch.Tensor:
        """(B, T, T): log w(x_t, x_s) where x_s is x_t's manifold neighbour, 0 where x_s = x_t, −inf else,
        read from the V × V table of the token graph."""
        V = self.config.vocab_size
        logw = torch.log(self.edge_weights.clamp_min(1e-6))
        table = torch.full((V, V), -math.inf, device=idx.device, dtype=logw.dtype)
        table.scatter_(1, self.neighbours, logw)
        table.fill_diagonal_(0.0)
        return table[idx.unsqueeze(2), idx.unsqueeze(1)]

    def forward_embeddings(self, x, idx, return_extras=False):
        B, T = idx.shape
        pos = torch.arange(T, device=idx.device)
        gap = pos.view(T, 1) - pos.view(1, T)
        causal = gap >= 0
        window = causal & (gap < self.config.window)
        feats, z, gb = self.features[idx], self.coords[idx], self.graph_bias(idx)
        dist = torch.cdist(z.float(), z.float()).pow(2).unsqueeze(1) / z.shape[-1]  # (B, 1, T, T)
        h, hidden = x, [x]
        for hop in self.hops:
            h = hop(h, feats.to(h.dtype), z.to(h.dtype), gb, window, causal, dist)
            hidden.append(h)
        logits = self.ln_f(h) @ self.wte.weight.T
        return logits, None, ({"hidden": hidden} if return_extras else {})
