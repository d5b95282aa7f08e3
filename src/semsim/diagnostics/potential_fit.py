"""The Lagrangian fitting menu: which scalar potential best explains layer-to-layer motion?

In a PCA-k subspace, each form is fitted to  Δx_ℓ = α v_ℓ + F(x_ℓ, v_ℓ),  with
    F = −∇V(x)  [+ Ω x  (linear skew, Ω antisymmetric)]  [+ B(x) v  (gauge, B antisymmetric)],
V a radial function of r = |x − c| with a learned centre c. Held-out R² of each form is compared
with a static null that has no force (α v only). Forces of these few-parameter forms come from
autograd: they are cheap and this is not a training hot path.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from semsim.diagnostics.jacobian import pca_basis
from semsim.diagnostics.separator import r2_per_layer
from semsim.diagnostics.trajectories import Trajectories

FORMS = ("harmonic", "gaussian", "morse", "lorentzian", "logsat", "weibull", "power")
GAUGES = ("none", "constant", "rank1", "rank2")


def _pos(p: torch.Tensor) -> torch.Tensor:
    return F.softplus(p) + 1e-6


def radial_energy(form: str, r: torch.Tensor, p: dict) -> torch.Tensor:
    A, s = _pos(p["amp"]), _pos(p["scale"])
    if form == "harmonic":
        return 0.5 * A * r**2
    if form == "gaussian":
        return -A * torch.exp(-(r**2) / (2 * s**2))
    if form == "morse":
        return A * (1 - torch.exp(-(r - p["r0"]) / s)) ** 2  # D (1 − e^{−a(r−r0)})², a = 1/s
    if form == "lorentzian":
        return -A / (1 + r**2 / s**2)
    if form == "logsat":
        return A * torch.log1p(r**2 / s**2)
    if form == "weibull":
        return A * (1 - torch.exp(-((r / s) ** _pos(p["shape"]))))
    if form == "power":
        return A * (r / s) ** _pos(p["shape"])
    raise ValueError(f"unknown form {form!r}; one of {FORMS}")


def _antisym(M: torch.Tensor) -> torch.Tensor:
    return M - M.transpose(-1, -2)


class Dynamics(nn.Module):
    def __init__(self, form: str, k: int, centre: torch.Tensor, r_scale: float, skew: bool, gauge: str):
        super().__init__()
        self.form, self.skew_on, self.gauge = form, skew, gauge
        inv = lambda y: torch.log(torch.expm1(torch.tensor(float(y))))  # noqa: E731 (softplus⁻¹)
        self.p = nn.ParameterDict({
            "amp": nn.Parameter(inv(0.1)), "scale": nn.Parameter(inv(r_scale)),
            "r0": nn.Parameter(torch.tensor(float(r_scale))), "shape": nn.Parameter(inv(2.0)),
        })
        self.c = nn.Parameter(centre.clone())
        self.alpha = nn.Parameter(torch.tensor(0.5))
        self.Omega = nn.Parameter(torch.zeros(k, k)) if skew else None
        n_b = {"none": 0, "constant": 1, "rank1": 2, "rank2": 3}[gauge]
        self.B = nn.Parameter(torch.zeros(n_b, k, k)) if n_b else None
        self.u = nn.Parameter(torch.randn(max(n_b - 1, 0), k) * 0.01) if n_b > 1 else None

    def energy(self, x):
        return radial_energy(self.form, (x - self.c).norm(dim=-1).clamp_min(1e-9), self.p)

    def forward(self, x, v):
        with torch.enable_grad():
            xg = x if x.requires_grad else x.detach().requires_grad_(True)
            (gV,) = torch.autograd.grad(self.energy(xg).sum(), xg, create_graph=True)
        out = self.alpha * v - gV
        if self.Omega is not None:
            out = out + x @ _antisym(self.Omega).T
        if self.B is not None:
            Bx = _antisym(self.B[0]).expand(x.shape[0], -1, -1)
            if self.u is not None:  # B(x) = B₀ + Σ_j (u_j·x) B_j : rank-1 / rank-2 position dependence
                coeff = x @ self.u.T  # (n, n_b − 1)
                Bx = Bx + torch.einsum("nj,jab->nab", coeff, _antisym(self.B[1:]))
            out = out + torch.einsum("nab,nb->na", Bx, v)
        return out


def _data(tr: Trajectories, mean, P):
    x = (tr.h.double() - mean) @ P
    xl, vl, dx = x[:, 1:-1], x[:, 1:-1] - x[:, :-2], x[:, 2:] - x[:, 1:-1]
    return xl.reshape(-1, P.shape[1]).float(), vl.reshape(-1, P.shape[1]).float(), dx.reshape(-1, P.shape[1]).float()


def fit_form(form, train, test, skew=False, gauge="none", steps=1500, lr=0.03, seed=0) -> dict:
    torch.manual_seed(seed)
    x, v, dx = train
    r_scale = (x - x.mean(0)).norm(dim=-1).mean().item()
    model = Dynamics(form, x.shape[1], x.mean(0), r_scale, skew, gauge)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    var = dx.var()
    for _ in range(steps):
        loss = ((model(x, v) - dx) ** 2).mean() / var
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    x2, v2, dx2 = test
    pred = model(x2, v2).detach()
    params = {k: (_pos(p).item() if k in ("amp", "scale", "shape") else p.item()) for k, p in model.p.items()}
    return {"form": form, "skew": skew, "gauge": gauge, "r2": r2_per_layer(dx2[:, None], pred[:, None])[0],
            "params": params, "alpha": model.alpha.item(), "centre": model.c.detach().tolist()}


def static_null(train, test) -> float:
    x, v, dx = train
    alpha = (v * dx).sum() / (v * v).sum()
    x2, v2, dx2 = test
    return r2_per_layer(dx2[:, None], (alpha * v2)[:, None])[0]


def fitting_menu(train: Trajectories, test: Trajectories, k: int = 8, forms=FORMS, steps=1500,
                 extras: bool = True) -> dict:
    mean, P = pca_basis(train.h, k)
    tr, te = _data(train, mean, P), _data(test, mean, P)
    rows = [fit_form(f, tr, te, steps=steps) for f in forms]
    best = max(rows, key=lambda r: r["r2"])
    ext = []
    if extras:
        ext.append(fit_form(best["form"], tr, te, skew=True, steps=steps))
        for gauge in GAUGES[1:]:
            ext.append(fit_form(best["form"], tr, te, skew=True, gauge=gauge, steps=steps))
    return {"k": k, "static_null_r2": static_null(tr, te), "forms": rows, "best_form": best["form"],
            "best_r2": best["r2"], "with_skew_and_gauge": ext}
