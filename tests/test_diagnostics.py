"""Diagnostics on cases with a known answer."""


import torch

from conftest import make_model
from semsim.diagnostics import separator as sep
from semsim.diagnostics.jacobian import asymmetry, jacobian_symmetry
from semsim.diagnostics.potential_fit import fitting_menu
from semsim.diagnostics.stp import decompose, stp_stats
from semsim.diagnostics.trajectories import Trajectories


def simulate(grad, n=1024, L=8, d=4, alpha=0.7, beta=1.0, spread=1.5, centre=None, seed=0, noise=0.0):
    """x_{ℓ+1} = x_ℓ + α (x_ℓ − x_{ℓ−1}) − β ∇V(x_ℓ): the damped flow the separator assumes."""
    g = torch.Generator().manual_seed(seed)
    c = torch.zeros(d) if centre is None else centre
    x0 = c + spread * torch.randn(n, d, generator=g, dtype=torch.float64)
    xs = [x0, x0 + 0.1 * torch.randn(n, d, generator=g, dtype=torch.float64)]
    for _ in range(L - 1):
        x, xp = xs[-1], xs[-2]
        xs.append(x + alpha * (x - xp) - beta * grad(x) + noise * torch.randn(n, d, generator=g, dtype=torch.float64))
    return Trajectories(torch.stack(xs, 1).float(), seq_len=16)


def anharmonic_grad(x):  # V = Σ ½ a_i x_i² + c/4 x_i⁴: weak enough that 8 layers keep moving
    a = torch.linspace(0.05, 0.15, x.shape[-1], dtype=x.dtype)
    return a * x + 0.02 * x**3


def test_separator_recovers_a_known_potential():
    tr, te = simulate(anharmonic_grad, n=2048, alpha=0.8).split(0.5)
    res = sep.fit_shared_potential(tr, te, hidden=64, steps=400)
    assert res["median_r2"] > 0.99 and min(res["r2"]) > 0.95
    vo = sep.velocity_only(tr, te)
    assert res["median_r2"] > vo["median_r2"] + 0.05


def test_separator_gains_nothing_on_pure_noise():
    g = torch.Generator().manual_seed(1)
    walk = torch.randn(2048, 9, 4, generator=g).cumsum(1)  # increments independent of the state
    tr, te = Trajectories(walk, seq_len=16).split(0.5)
    res = sep.fit_shared_potential(tr, te, hidden=64, steps=400)
    vo = sep.velocity_only(tr, te)
    assert abs(vo["median_r2"]) < 0.05 and res["median_r2"] - vo["median_r2"] < 0.05


def test_separator_oracle_on_an_splm_recovers_its_integrator_constants():
    from semsim.diagnostics.trajectories import collect
    from semsim.models.splm import SPLMConfig

    torch.manual_seed(0)
    cfg = SPLMConfig(vocab_size=101, block_size=16, d_model=12, n_layer=6, hidden=24, depth=2, layer_norm=False,
                     gamma=0.3, dt=1.0, mass="learned", context="ema")
    model = make_model(cfg).double()
    with torch.no_grad():
        model.mass.raw.normal_(0, 0.5)  # unequal masses: the oracle must divide by m per token
    tr = collect(model, torch.randint(0, 101, (8, 16)))
    tr.h, tr.m = tr.h.double(), tr.m.double()
    res = sep.oracle(model, tr)
    assert res["median_r2"] > 1 - 1e-9
    assert all(abs(a - 1 / 1.3) < 1e-6 for a in res["alpha"]) and all(abs(b - 1 / 1.3) < 1e-6 for b in res["beta"])


def test_stp_identity_on_random_triplets():
    x = torch.randn(10000, 3, 7, dtype=torch.float64)
    dec = decompose(x)
    assert (dec["stp"] - dec["stp_identity"]).abs().max() < 1e-12
    # Sanity of the decomposition: a_par² + |a_perp|² = |a|².
    a = dec["d2"] - dec["d1"]
    assert torch.allclose(dec["a_par"] ** 2 + dec["a_perp_norm"] ** 2, (a * a).sum(-1))


def test_stp_stats_smooth_decelerating_paths_beat_the_null():
    tr = simulate(anharmonic_grad, n=512, alpha=0.5, seed=3)
    res = stp_stats(tr, n_perm=50)
    assert res["identity_max_abs_error"] < 1e-9
    assert res["z"] < -5 and res["frac_decelerating"] > 0.5


def test_fitting_menu_recovers_harmonic():
    K = 0.3
    centre = torch.tensor([1.0, -0.5, 0.5], dtype=torch.float64)
    tr, te = simulate(lambda x: K * (x - centre), n=1024, d=3, centre=centre, alpha=0.6).split(0.5)
    res = fitting_menu(tr, te, k=3, forms=("harmonic", "gaussian", "morse", "lorentzian"), steps=800, extras=False)
    r2 = {r["form"]: r["r2"] for r in res["forms"]}
    harm = next(r for r in res["forms"] if r["form"] == "harmonic")
    assert r2["harmonic"] > 0.999 and r2["harmonic"] >= max(r2.values()) - 1e-4
    assert abs(harm["params"]["amp"] - K) / K < 0.02 and abs(harm["alpha"] - 0.6) < 0.02
    assert res["static_null_r2"] < r2["harmonic"] - 0.1


def test_fitting_menu_recovers_morse():
    D, a, r0 = 1.0, 1.0, 2.0

    def morse_grad(x):
        r = x.norm(dim=-1, keepdim=True)
        e = torch.exp(-a * (r - r0))
        return 2 * D * a * (1 - e) * e * x / r

    tr, te = simulate(morse_grad, n=1024, d=2, spread=2.0, alpha=0.5, beta=0.5).split(0.5)
    res = fitting_menu(tr, te, k=2, forms=("harmonic", "morse", "gaussian"), steps=3000, extras=False)
    r2 = {r["form"]: r["r2"] for r in res["forms"]}
    assert res["best_form"] == "morse" and r2["morse"] > 0.99 and r2["morse"] > r2["harmonic"] + 0.05
    p = next(r for r in res["forms"] if r["form"] == "morse")["params"]
    # β = 0.5 scales the force, so the fitted depth is β·D; the range 1/a and ring radius r0 are exact.
    assert abs(p["amp"] - 0.5 * D) < 0.05 and abs(p["scale"] - 1 / a) < 0.1 and abs(p["r0"] - r0) < 0.1


def test_jacobian_symmetry_gradient_field_vs_rotation():
    A = torch.randn(4, 4, dtype=torch.float64)
    H = 0.1 * (A @ A.T) / 4  # symmetric Hessian
    W = 0.1 * (A - A.T)  # rotation generator
    assert asymmetry(H) < 1e-12 and abs(asymmetry(W) - 2.0) < 1e-12
    grad_tr = simulate(lambda x: x @ H, n=512, d=4)
    rot_tr = simulate(lambda x: x @ W.T, n=512, d=4)
    assert jacobian_symmetry(grad_tr, k=4)["median_asymmetry"] < 1e-3
    assert jacobian_symmetry(rot_tr, k=4)["median_asymmetry"] > 1.5


