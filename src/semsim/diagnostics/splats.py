"""Readouts of the hypersphere model (family ``sphere-ebm``): splat coverage, the energy's trend over
training, and Langevin convergence.

- Coverage: a token is covered when its nearest in-use splat lies within that splat's κ-radius, the
  angle at which the bump exp(κ(μ·x − 1)/T) has fallen to 1/e of its peak: μ·x ≥ 1 − T/κ.
- Energy trend: the monitored mean splat energy of a run's validations (``metrics.jsonl``), with the
  least-squares slope over the second half of the run.
- Langevin convergence: mean energy E(x) against step for underdamped Langevin from the validation
  queries (the design's sampler: 200 steps, dt 1e-3, friction 0.1, T = 1) and for the deterministic
  flow (T → 0) with the same steps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from semsim.physics.langevin import sphere_langevin
from semsim.training.monitor import read_rows


@torch.no_grad()
def _queries(model, windows: torch.Tensor, n_seqs: int, batch: int = 8) -> torch.Tensor:
    device = next(model.parameters()).device
    out = []
    windows = windows[:n_seqs]
    for i in range(0, len(windows), batch):
        idx = windows[i : i + batch].to(device)
        out.append(model.query(model.embed(idx)).reshape(-1, model.config.latent))
    return torch.cat(out)


@torch.no_grad()
def coverage(model, windows: torch.Tensor, n_seqs: int = 32) -> dict:
    """Share of validation tokens whose nearest splat is within its κ-radius, at the query (the
    encoder's point) and at the settled point (after the model's own flow)."""
    q = _queries(model, windows, n_seqs)
    x = torch.cat([model.settle(part)[0] for part in q.split(4096)])
    store, T = model.splats, float(model.temperature)
    mu, kappa = store.centres()[: store.active], store.kappa[: store.active]
    res = {"tokens": len(q), "splats_in_use": store.active, "temperature": T, "target": 0.8}
    for name, pts in (("query", q), ("settled", x)):
        best = [(p.float() @ mu.float().T).max(-1) for p in pts.split(4096)]
        cos, nearest = torch.cat([b.values for b in best]), torch.cat([b.indices for b in best])
        radius = 1 - T / kappa[nearest]
        res[name] = {"coverage": float((cos >= radius).float().mean()), "mean_nearest_cos": float(cos.mean()),
                     "distinct_nearest_splats": int(nearest.unique().numel())}
    return res


def energy_trend(metrics: str | Path) -> dict:
    """The validations' monitored splat energy over steps and its slope over the second half."""
    path = Path(metrics)
    if not path.is_file():
        raise FileNotFoundError(f"no metrics.jsonl at {path}: energy-trend reads a training run's log")
    rows = read_rows(path)
    val = [r for r in rows if r.get("split") == "val" and "splat_energy" in r.get("monitor", {})]
    steps = [r["step"] for r in val]
    energy = [r["monitor"]["splat_energy"] for r in val]
    res = {"steps": steps, "splat_energy": energy, "dsm": [r["monitor"].get("dsm") for r in val],
           "val_ppl": [r["ppl"] for r in val]}
    events = [r for r in rows if r.get("split") == "event"]
    res["criticality"] = [(r["step"], r["criticality"]) for r in events if "criticality" in r]
    res["consolidated"] = sum(r.get("merged", 0) + r.get("pruned", 0) for r in events)
    half = len(steps) // 2
    if len(steps) - half >= 2:
        slope = np.polyfit(steps[half:], energy[half:], 1)[0]
        res["slope_per_1k_steps_second_half"] = float(slope * 1000)
        res["rising"] = bool(slope > 0)
    return res


@torch.no_grad()
def langevin_convergence(model, windows: torch.Tensor, n_seqs: int = 8, steps: int = 200, dt: float = 1e-3,
                         friction: float = 0.1, temperature: float = 1.0, seed: int = 0) -> dict:
    """Mean E(x) per step from the validation queries, stochastic (T) and deterministic (T → 0)."""
    q = _queries(model, windows, n_seqs)
    res = {"tokens": len(q), "steps": steps, "dt": dt, "friction": friction}
    for name, T in (("langevin", temperature), ("deterministic", 0.0)):
        trace = [float(model.field(q, q)[1].float().mean())]
        gen = torch.Generator(q.device).manual_seed(seed)
        sphere_langevin(q, lambda x: model.field(x, q)[0], steps=steps, dt=dt, friction=friction, temperature=T,
                        generator=gen, trace=lambda i, x: trace.append(float(model.field(x, q)[1].float().mean())))
        final = trace[-1]
        spread = abs(trace[0] - final) or 1.0
        within = next(i for i, e in enumerate(trace) if abs(e - final) <= 0.01 * spread)
        res[name] = {"temperature": T, "energy": trace, "start": trace[0], "end": final,
                     "steps_to_1pct_of_final": within}
    return res


def plot_langevin(res: dict, out_png) -> None:
    from semsim.diagnostics.plots import _plt

    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=120)
    for name in ("langevin", "deterministic"):
        ax.plot(res[name]["energy"], label=f"{name} (T = {res[name]['temperature']:g})")
    ax.set_xlabel("step")
    ax.set_ylabel("mean energy E(x)")
    ax.set_title(f"Langevin from {res['tokens']} validation queries (dt {res['dt']:g}, friction {res['friction']:g})")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_png)
    plt.close(fig)


def plot_energy_trend(res: dict, out_png) -> None:
    from semsim.diagnostics.plots import _plt

    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(9.6, 3.6), dpi=120)
    a.plot(res["steps"], res["splat_energy"], "o-")
    a.set_xlabel("step")
    a.set_ylabel("mean splat energy (validation)")
    a.grid(alpha=0.3)
    b.plot(res["steps"], res["val_ppl"], "o-", color="C1")
    b.set_yscale("log")
    b.set_xlabel("step")
    b.set_ylabel("validation PPL")
    b.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(out_png)
    plt.close(fig)
