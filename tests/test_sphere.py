"""Hypersphere geometry, splat energies and Langevin sampling: closed forms against autograd, the
sampler against the distribution it must sample."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from semsim.geometry import exp_map, log_map, project_tangent, transport_along
from semsim.physics.langevin import sphere_langevin
from semsim.potentials.splats import SplatStore


def _points(n, d, seed=0):
    return F.normalize(torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64), dim=-1)


def test_exp_and_log_are_inverse_and_transport_keeps_tangent_speed():
    x = _points(64, 7)
    v = F.normalize(project_tangent(x, torch.randn(64, 7, dtype=torch.float64)), dim=-1)
    v = v * torch.linspace(0, 3.0, 64, dtype=torch.float64).unsqueeze(-1)  # |v| < π: log inverts exp
    # v[0] = 0: the zero velocity, where the small-angle branch applies
    y = exp_map(x, v)
    assert torch.allclose(y.norm(dim=-1), torch.ones(64, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(log_map(x, y), v, atol=1e-10)
    u = transport_along(x, v)
    assert torch.allclose((u * y).sum(-1), torch.zeros(64, dtype=torch.float64), atol=1e-12)  # tangent at y
    assert torch.allclose(u.norm(dim=-1), v.norm(dim=-1), atol=1e-12)  # geodesics keep their speed


@pytest.mark.parametrize("T", [1.0, 0.3])
def test_splat_riemannian_gradient_equals_autograd(T):
    """grad E_s(x) = (I − x xᵀ)∇E_s: the gradient of y ↦ E_s(y/|y|) at y = x, with the neighbours fixed."""
    torch.manual_seed(0)
    store = SplatStore(dim=12, capacity=40, k=8).double()
    with torch.no_grad():
        store.log_alpha.normal_(0, 0.5)
        store.kappa_raw.normal_(0, 2.0)
    x = _points(16, 12, seed=1)
    g, E, w, idx = store.grad(x, T)
    y = x.clone().requires_grad_(True)
    E_auto = store.energy(F.normalize(y, dim=-1), T, idx)
    (g_auto,) = torch.autograd.grad(E_auto.sum(), y)
    assert torch.allclose(g, g_auto, atol=1e-12)
    assert torch.allclose(E, E_auto.detach(), atol=1e-12)
    assert torch.allclose(w.sum(-1), torch.ones(16, dtype=torch.float64))
    # with every splat a neighbour, the energy is the formula's sum over all of them
    full = SplatStore(dim=12, capacity=40, k=40).double()
    full.load_state_dict(store.state_dict())
    mu, kappa, alpha = full.centres(), full.kappa, full.log_alpha.exp()
    direct = -T * torch.log((alpha * torch.exp(kappa * (x @ mu.T - 1) / T)).sum(-1))
    assert torch.allclose(full.energy(x, T), direct, atol=1e-12)
    assert ((store.kappa >= 1) & (store.kappa <= 50)).all()


def test_bad_splat_configs_are_refused():
    with pytest.raises(ValueError, match="κ bounds"):
        SplatStore(8, 16, k=4, kappa_min=50.0, kappa_max=1.0)
    with pytest.raises(ValueError, match="k = 32"):
        SplatStore(8, 16, k=32)
    with pytest.raises(ValueError, match="dimension 6"):
        SplatStore(8, 16, k=4, init=torch.randn(4, 6))


def test_langevin_samples_the_von_mises_fisher_distribution():
    """One splat at T = 1 has E = −κ(μ·x − 1): the stationary law is von Mises–Fisher, whose mean
    cosine on S² is coth κ − 1/κ. The deterministic mode (T = 0) settles on the centre."""
    kappa = 4.0
    store = SplatStore(dim=3, capacity=1, k=1).double()
    with torch.no_grad():
        store.kappa_raw.fill_(math.log((kappa - 1) / (50 - kappa)))  # κ = 4 through the sigmoid
    assert abs(store.kappa.item() - kappa) < 1e-12
    mu = store.centres()[0]
    x0 = _points(2000, 3, seed=2)
    cosines = []
    sphere_langevin(x0, lambda x: store.grad(x)[0], steps=600, dt=0.05, friction=2.0, temperature=1.0,
                    generator=torch.Generator().manual_seed(3),
                    trace=lambda i, x: cosines.append((x @ mu).mean().item()) if i >= 200 else None)
    expected = 1 / math.tanh(kappa) - 1 / kappa  # 0.7507 (at T = 2 it would be 0.537)
    assert abs(sum(cosines) / len(cosines) - expected) < 0.015
    settled, _ = sphere_langevin(x0[:64], lambda x: store.grad(x)[0], steps=1000, dt=0.05, friction=2.0,
                                 temperature=0.0)
    assert ((settled @ mu) > 1 - 1e-6).all()


# ----------------------------------------------------------------------------- the model family
def _tiny_ebm():
    from conftest import make_model
    from semsim.presets import get_preset

    torch.manual_seed(0)
    return make_model(get_preset("sphere-ebm-tiny").model)


def test_sphere_ebm_is_causal_and_settles_on_the_sphere():
    from semsim.diagnostics import causal_probe
    from semsim.models.sphere_ebm import causal_window_means

    model = _tiny_ebm()
    res = causal_probe(model, seq_len=16)
    assert res["passed"] and res["min_effect_at_or_after_t"] > 0, res
    e = torch.randn(2, 9, 3, dtype=torch.float64)
    means = causal_window_means(e, 4)
    for t in range(9):
        assert torch.allclose(means[:, t], e[:, max(0, t - 3): t + 1].mean(1))
    q, settled = model(torch.randint(0, 50257, (2, 12)), return_extras=True).extras["hidden"]
    assert torch.allclose(settled.norm(dim=-1), torch.ones(2, 12), atol=1e-5)
    # settling lowers the energy it flows on (splats + the pull back to q)
    c = model.config

    def total(x):
        return model.splats.energy(x, c.temperature) - c.pull * (x * q).sum(-1)

    with torch.no_grad():
        far, _ = model.settle(q, steps=40)
    assert (total(far) <= total(q) + 1e-5).all()


def test_sphere_ebm_trains_on_shakespeare(tmp_path, data_dir):
    """The tiny preset learns: its validation loss falls well below the uniform model's ln V."""
    from semsim.presets import get_preset
    from semsim.training.trainer import Trainer

    run = get_preset("sphere-ebm-tiny")
    run.override(["train.steps=60", "train.eval_interval=0", "train.batch_size=8", "train.eval_tokens=4096",
                  "train.progress=false"])
    result = Trainer(run, tmp_path, log=lambda m: None).fit()
    assert result.val_loss < math.log(50257) - 3.0, result.val_loss  # ln V = 10.82
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    train = [r["loss"] for r in rows if r["split"] == "train"]
    assert train[-1] < train[0] - 2.0
    monitor = [r for r in rows if r["split"] == "val"][-1]["monitor"]
    assert 0 < monitor["active_splats"] <= run.model.splats and monitor["mean_splat_age"] >= 0
    assert monitor["dsm"] > 0 and math.isfinite(monitor["splat_energy"])


def test_bad_sphere_ebm_configs_are_one_line_errors():
    from semsim.errors import SemsimError
    from semsim.presets import get_preset

    for bad, match in ((["model.kappa_min=60"], "κ bounds inverted"), (["model.k=1000"], "≤ model.splats"),
                       (["model.top_experts=5"], "≤ model.experts"), (["model.dsm_sigmas=[0.1, -1]"], "each > 0")):
        run = get_preset("sphere-ebm-tiny")
        run.override(bad)
        with pytest.raises(SemsimError, match=match):
            run.check()
