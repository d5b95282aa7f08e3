"""A frozen geometry of the vocabulary, computed once from the training tokens only, on the CPU, in
float64, deterministic under a fixed seed.

1. Statistics: co-occurrence counts C (window ``window``, weight 1/offset), directed bigram counts B, the
   positive PMI of C, and each token's successor entropy H_i.
2. Simulation (``steps`` damped Euler steps, every token a particle in R^``dim``), forces on x_i:
   - co-occurrence attraction: Σ_j A_ij (x_j − x_i), A = PPMI kept to each row's top ``top`` and symmetrised;
   - directed springs: bigram i→j pulls x_j towards x_i + δ·e₀ (order becomes a direction), weight
     p(j | i), doubled for the ``syntactic_share`` most frequent bigrams (syntactic-bigram forces);
   - directional torsion: τ Σ_j (P_ij − P_ji) R (x_j − x_i), R the quarter turn in the (e₁, e₂) plane
     (non-conservative: it circulates tokens whose bigrams run one way);
   - soft repulsion of all pairs, ρ (x_i − x_j) / (|x_i − x_j|² + ε), so the cloud does not collapse;
   - entropic mass m_i = 1 + H_i (tokens with unpredictable successors move slowly) and friction γ.
3. Spectra: the token Hessian of the conservative energy at the final positions (each d×d block traced,
   an N×N matrix with zero row sums) → its ``modes`` lowest non-constant eigenvectors; the SVD of the
   PPMI matrix → ``svd_dims`` coordinates. Features = [modes, svd] (256 + 64 = 320 per token).
4. Graph: each token's ``graph_k`` nearest tokens in the simulated positions, weights exp(−d²/σ²).

Cached beside the prepared corpus (``manifold-<hash>/``) with a plot of its 2-D projection.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch


@dataclass(frozen=True)
class ManifoldSpec:
    steps: int = 5000
    dim: int = 16
    window: int = 4
    top: int = 32  # PPMI neighbours kept per token for the attraction
    dt: float = 0.05
    friction: float = 0.5
    attraction: float = 1.0
    spring: float = 1.0
    offset: float = 0.5  # δ: rest offset of a directed spring along e₀
    torsion: float = 0.2
    repulsion: float = 0.05
    eps: float = 0.01
    syntactic_share: float = 0.05
    modes: int = 256
    svd_dims: int = 64
    graph_k: int = 16
    seed: int = 0

    def key(self) -> str:
        return hashlib.sha256(json.dumps(dataclasses.asdict(self), sort_keys=True).encode()).hexdigest()[:12]


@dataclass
class TokenManifold:
    positions: np.ndarray  # (V, dim) simulated positions
    features: np.ndarray  # (V, modes + svd_dims) spectral features, float32
    coords: np.ndarray  # (V, svd_dims) the SVD coordinates alone (attention's metric), float32
    neighbours: np.ndarray  # (V, graph_k) int64
    weights: np.ndarray  # (V, graph_k) float32
    eigenvalues: np.ndarray  # (modes,)

    def save(self, folder: Path) -> None:
        np.savez(folder / "manifold.npz", **dataclasses.asdict(self))

    @classmethod
    def load(cls, folder: Path) -> "TokenManifold":
        with np.load(folder / "manifold.npz") as z:
            return cls(**{f.name: z[f.name] for f in dataclasses.fields(cls)})


def statistics(tokens: np.ndarray, vocab: int, window: int) -> dict:
    t = tokens.astype(np.int64)
    C = np.zeros((vocab, vocab))
    for off in range(1, window + 1):
        np.add.at(C, (t[:-off], t[off:]), 1.0 / off)
    B = np.zeros((vocab, vocab))
    np.add.at(B, (t[:-1], t[1:]), 1.0)
    C = C + C.T
    total, row = C.sum(), C.sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        pmi = np.log(C * total / np.outer(row, row))
    ppmi = np.where(np.isfinite(pmi) & (pmi > 0), pmi, 0.0)
    succ = B / np.maximum(B.sum(1, keepdims=True), 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        H = -np.where(succ > 0, succ * np.log(succ), 0.0).sum(1)
    return {"ppmi": ppmi, "bigram": B, "succ": succ, "entropy": H}


def _top_rows(M: np.ndarray, k: int) -> np.ndarray:
    keep = np.zeros_like(M)
    idx = np.argsort(-M, axis=1, kind="stable")[:, :k]
    rows = np.arange(len(M))[:, None]
    keep[rows, idx] = M[rows, idx]
    return np.maximum(keep, keep.T)


def couplings(stats: dict, spec: ManifoldSpec) -> dict:
    """The simulation's coupling matrices (float64 tensors) and masses, from the statistics."""
    A = torch.from_numpy(_top_rows(stats["ppmi"], spec.top))
    A = spec.attraction * A / max(float(A.max()), 1e-12)
    P = torch.from_numpy(stats["succ"])
    counts = stats["bigram"]
    if counts.any():
        cut = np.quantile(counts[counts > 0], 1 - spec.syntactic_share)
        P = P * torch.from_numpy(1.0 + (counts >= cut))  # the most frequent bigrams pull twice as hard
    P = spec.spring * P
    Ps, Pt = P + P.T, P - P.T  # the springs' symmetric part; the bigram flow's one-way part (torsion)
    return {"A": A, "P": P, "mass": torch.from_numpy(1.0 + stats["entropy"]).unsqueeze(-1),
            "Ps": Ps, "Pt": Pt, "deg_A": A.sum(1, keepdim=True), "deg_P": Ps.sum(1, keepdim=True),
            "deg_T": Pt.sum(1, keepdim=True), "pull": (P.sum(0) - P.sum(1)).unsqueeze(-1)}


def forces(x: torch.Tensor, c: dict, spec: ManifoldSpec) -> torch.Tensor:
    """Force on every token, written with matrix products (V × V couplings times V × dim positions)."""
    e0 = torch.zeros(x.shape[1], dtype=x.dtype)
    e0[0] = spec.offset
    F = c["A"] @ x - c["deg_A"] * x  # Σ_j A_ij (x_j − x_i)
    # directed springs, energy Σ P_ij |x_j − x_i − δe₀|²/2: −∂/∂x_k = (P+Pᵀ)x − deg·x_k + δe₀(colsum − rowsum)
    F = F + c["Ps"] @ x - c["deg_P"] * x + c["pull"] * e0
    if x.shape[1] >= 3 and spec.torsion:
        t = c["Pt"] @ x - c["deg_T"] * x  # Σ_j Pt_ij (x_j − x_i), then the quarter turn in (e₁, e₂)
        turn = torch.zeros_like(F)
        turn[:, 1], turn[:, 2] = -t[:, 2], t[:, 1]
        F = F + spec.torsion * turn
    sq = (x * x).sum(1)
    K = 1.0 / ((sq[:, None] + sq[None, :] - 2 * x @ x.T).clamp_min(0) + spec.eps)
    K = K - torch.diag(torch.diagonal(K))
    return F + spec.repulsion * (K.sum(1, keepdim=True) * x - K @ x)  # Σ_j (x_i − x_j)/(r² + ε)


def conservative_energy(x: torch.Tensor, c: dict, spec: ManifoldSpec) -> torch.Tensor:
    """The energy whose −gradient is :func:`forces` without the torsion (which has no potential)."""
    diff = x.unsqueeze(0) - x.unsqueeze(1)  # diff[i, j] = x_j − x_i
    e0 = torch.zeros(x.shape[1], dtype=x.dtype)
    e0[0] = spec.offset
    r2 = (diff * diff).sum(-1)
    off = 1.0 - torch.eye(len(x), dtype=x.dtype)
    return (0.25 * (c["A"] * r2).sum() + 0.5 * (c["P"] * ((diff - e0) ** 2).sum(-1)).sum()
            - 0.25 * spec.repulsion * (off * torch.log(r2 + spec.eps)).sum())


def simulate(stats: dict, spec: ManifoldSpec, progress=None) -> tuple[np.ndarray, dict]:
    """The damped particle simulation of step 2; returns (positions, the conservative couplings)."""
    V = len(stats["ppmi"])
    g = torch.Generator().manual_seed(spec.seed)
    x = 0.1 * torch.randn(V, spec.dim, generator=g, dtype=torch.float64)
    v = torch.zeros_like(x)
    c = couplings(stats, spec)
    for step in range(spec.steps):
        v = v + spec.dt * (forces(x, c, spec) / c["mass"] - spec.friction * v)
        x = x + spec.dt * v
        if progress is not None:
            progress(step)
    return x.numpy(), {"A": c["A"].numpy(), "springs": c["Ps"].numpy()}


def token_hessian(x: np.ndarray, couplings: dict, spec: ManifoldSpec) -> np.ndarray:
    """The conservative energy's Hessian with each d×d block replaced by its trace: springs of constant
    k give k·d; the repulsion φ(r) = −(ρ/2) log(r² + ε) gives −ρ (d/(r²+ε) − 2r²/(r²+ε)²)."""
    d = x.shape[1]
    r2 = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    h = (couplings["A"] + couplings["springs"]) * d - spec.repulsion * (d / (r2 + spec.eps) - 2 * r2 / (r2 + spec.eps) ** 2)
    np.fill_diagonal(h, 0.0)
    H = -h
    np.fill_diagonal(H, h.sum(1))
    return H


def build_manifold(tokens: np.ndarray, vocab: int, spec: ManifoldSpec, progress=None) -> TokenManifold:
    stats = statistics(tokens, vocab, spec.window)
    x, couplings = simulate(stats, spec, progress)
    evals, evecs = np.linalg.eigh(token_hessian(x, couplings, spec))
    modes = evecs[:, 1 : 1 + spec.modes] * np.sqrt(vocab)  # past the constant (zero) mode; unit mean square
    U, S, _ = np.linalg.svd(stats["ppmi"])
    svd = U[:, : spec.svd_dims] * np.sqrt(S[: spec.svd_dims])
    svd = (svd - svd.mean(0)) / np.maximum(svd.std(0), 1e-12)
    # a token never seen in training has no statistics: it sits at its random start, features 0
    feats = np.concatenate([modes, svd], axis=1).astype(np.float32)
    d2 = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d2, np.inf)
    nbr = np.argsort(d2, axis=1, kind="stable")[:, : spec.graph_k]
    nd2 = np.take_along_axis(d2, nbr, axis=1)
    sigma2 = np.median(nd2)
    return TokenManifold(x, feats, svd.astype(np.float32), nbr.astype(np.int64),
                         np.exp(-nd2 / max(sigma2, 1e-12)).astype(np.float32), evals[1 : 1 + spec.modes])


def plot_projection(m: TokenManifold, out_png: Path, labels: dict[int, str] | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = m.positions - m.positions.mean(0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    p = x @ vt[:2].T
    fig, ax = plt.subplots(figsize=(7, 6), dpi=120)
    ax.scatter(p[:, 0], p[:, 1], s=4, alpha=0.5)
    for i, text in (labels or {}).items():
        ax.annotate(text, p[i], fontsize=6)
    ax.set_title("token manifold: 2-D projection (PCA of the simulated positions)")
    fig.tight_layout()
    fig.savefig(out_png)
    plt.close(fig)


def manifold_for_corpus(corpus, spec: ManifoldSpec, log=print) -> TokenManifold:
    """The corpus's manifold for ``spec``: read from ``<corpus>/manifold-<hash>/`` or built there once
    from the training tokens (never the held-out ones)."""
    folder = Path(corpus.root) / f"manifold-{spec.key()}"
    if (folder / "manifold.npz").is_file():
        return TokenManifold.load(folder)
    from tqdm.auto import tqdm

    log(f"building the token manifold ({spec.steps} simulation steps, {corpus.vocab_size} tokens) -> {folder}")
    with tqdm(total=spec.steps, desc="manifold", mininterval=2.0) as bar:
        m = build_manifold(np.asarray(corpus.train), corpus.vocab_size, spec, progress=lambda s: bar.update(1))
    tmp = folder.with_name(folder.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    m.save(tmp)
    (tmp / "spec.json").write_text(json.dumps({**dataclasses.asdict(spec), "built_from": "train split",
                                               "train_tokens": int(len(corpus.train))}, indent=2))
    try:
        tok = corpus.tokenizer()
        counts = np.bincount(np.asarray(corpus.train, dtype=np.int64), minlength=corpus.vocab_size)
        labels = {int(i): tok.decode([int(i)]) for i in np.argsort(-counts)[:60]}
    except Exception:  # labels are a nicety; the plot is drawn without them
        labels = None
    plot_projection(m, tmp / "projection.png", labels)
    tmp.rename(folder)
    return m
