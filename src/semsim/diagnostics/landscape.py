"""Landscape statistics of V_θ over validation tokens (SPLM-family models)."""

from __future__ import annotations

import torch


@torch.no_grad()
def landscape_stats(model, windows: torch.Tensor, batch_size: int = 8, max_windows: int = 16) -> dict:
    """Mean / std / min / max of V at every layer, over the tokens of the first validation windows."""
    device = next(model.parameters()).device
    model.eval()
    per_layer: list[list[torch.Tensor]] = []
    for i in range(0, min(len(windows), max_windows), batch_size):
        w = windows[i : i + batch_size, :-1].to(device)
        pots = model(w, return_extras=True).extras.get("potential")
        if pots is None:
            raise ValueError(f"{type(model).__name__} exposes no potential")
        for ell, V in enumerate(pots):
            if len(per_layer) <= ell:
                per_layer.append([])
            per_layer[ell].append(V.float().flatten().cpu())
    layers = [torch.cat(vs) for vs in per_layer]
    allv = torch.cat(layers)
    summary = lambda v: {"mean": v.mean().item(), "std": v.std().item(), "min": v.min().item(), "max": v.max().item()}  # noqa: E731
    return {"all": summary(allv), "per_layer": [summary(v) for v in layers], "tokens": int(layers[0].numel()),
            "_values": allv}  # raw values for a histogram; callers drop it before writing JSON
