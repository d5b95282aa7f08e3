"""Attractors of V_θ(ξ, ·): explicit well centres (SQ) or minima found by gradient descent (MLP)."""

from __future__ import annotations

import torch
from tqdm.auto import tqdm


def _cluster(points: torch.Tensor, radius: float) -> list[tuple[torch.Tensor, int]]:
    """Greedy leader clustering: each point joins the first centre within ``radius``; sizes kept.

    A few hundred minima per prompt need nothing heavier; the centres are the cluster means.
    """
    centres: list[torch.Tensor] = []
    members: list[list[torch.Tensor]] = []
    for p in points:
        for i, c in enumerate(centres):
            if (p - c).norm() < radius:
                members[i].append(p)
                break
        else:
            centres.append(p)
            members.append([p])
    out = [(torch.stack(m).mean(0), len(m)) for m in members]
    return sorted(out, key=lambda t: -t[1])


@torch.no_grad()
def descend(model, xi: torch.Tensor, starts: torch.Tensor, steps: int = 1500, lr: float = 0.05,
            progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Projected gradient descent h ← LN(h + lr·f(ξ, h)) on the model's own closed-form force.

    The projection is the model's own LayerNorm (identity when it has none): the integrator only
    ever visits that manifold, and an MLP potential is typically unbounded below off it.
    """
    h = model.ln(starts)
    xi = xi.expand(h.shape[0], -1)
    for _ in tqdm(range(steps), disable=not progress, desc="descending V_θ", leave=False):
        f, _ = model.potential.force(xi, h)
        h = model.ln(h + lr * f)
    return h, model.potential.energy(xi, h)


@torch.no_grad()
def attractors(model, idx: torch.Tensor, n_starts: int = 256, steps: int = 1500, radius: float | None = None,
               top_tokens: int = 5, decode=None, progress: bool = False) -> dict:
    """Attractors seen by the last token of the prompt ``idx`` (1, T) at the final layer.

    ``attractors`` are always the potential's minima, found by projected descent and clustered. For the
    SQ wells, ``centres`` also lists the wells' centres μ_k(ξ): each is its own well's minimum, but not
    a minimum of the mixture where wells overlap; the descent starts from them as well as at random."""
    E = model.wte.weight
    h_last = model(idx, return_extras=True).extras["hidden"][-1]
    xi = model.context(h_last)[:, -1]  # (1, D_ξ)
    g = torch.Generator(device="cpu").manual_seed(0)
    scale = h_last.std().item()
    starts = (torch.randn(n_starts, h_last.shape[-1], generator=g) * scale).to(h_last)
    out = {}

    def rows_for(points: torch.Tensor, weights, V) -> list[dict]:
        nearest = (points.to(E.dtype) @ E.T).topk(top_tokens, dim=-1).indices.cpu()
        rows = []
        for i in range(points.shape[0]):
            ids = nearest[i].tolist()
            rows.append({"weight": float(weights[i]), "V": float(V[i]), "nearest_ids": ids,
                         "nearest_tokens": [decode([t]) for t in ids] if decode else None})
        return rows

    if hasattr(model.potential, "centres"):  # SQ wells: the centres are explicit
        read = model.attractors(idx)
        mu, w = read["centres"][0, -1], read["weights"][0, -1]
        V_mu = model.potential.energy(xi.expand(mu.shape[0], -1), mu)
        out["centres"] = {"what": "well centres μ_k(ξ), weights = the wells' responsibilities there; "
                          "each is its own well's minimum, not necessarily the mixture's",
                          "points": rows_for(mu, w, V_mu)}
        starts = torch.cat([mu.to(starts), starts])
    hmin, _ = descend(model, xi, starts, steps, progress=progress)
    radius = radius or 0.25 * h_last.norm(dim=-1).mean().item()  # a quarter of the typical |h|
    clusters = _cluster(hmin.float().cpu(), radius)
    points = torch.stack([c for c, _ in clusters]).to(h_last.device)
    weights = torch.tensor([n / len(starts) for _, n in clusters])
    V = model.potential.energy(xi.expand(points.shape[0], -1), points.to(xi.dtype))
    rows = rows_for(points, weights, V)
    method = (f"minima of V_θ(ξ, ·) by projected gradient descent, {len(starts)} starts × {steps} steps, "
              f"clustered at radius {radius:.3g}; weight = share of starts")
    return {"method": method, "n_attractors": len(rows), "attractors": rows, **out}
