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


def test_sphere_ebm_trains_on_shakespeare_and_is_diagnosed(tmp_path, data_dir):
    """The tiny preset learns: its validation loss falls well below the uniform model's ln V. Then
    ``semsim diagnose all`` on the run: coverage, Langevin convergence, energy trend, report."""
    from semsim.cli import main
    from semsim.plotting import plot_monitor
    from semsim.presets import get_preset
    from semsim.training.trainer import Trainer

    run = get_preset("sphere-ebm-tiny")
    run.override(["train.steps=60", "train.eval_interval=20", "train.batch_size=8", "train.eval_tokens=4096",
                  "train.progress=false"])
    result = Trainer(run, tmp_path, log=lambda m: None).fit()
    assert result.val_loss < math.log(50257) - 3.0, result.val_loss  # ln V = 10.82
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    train = [r["loss"] for r in rows if r["split"] == "train"]
    assert train[-1] < train[0] - 2.0
    monitor = [r for r in rows if r["split"] == "val"][-1]["monitor"]
    assert 0 < monitor["active_splats"] <= run.model.splats and monitor["mean_splat_age"] >= 0
    assert monitor["dsm"] > 0 and math.isfinite(monitor["splat_energy"])
    assert monitor["splats_in_use"] == 256 and monitor["temperature"] == pytest.approx(0.6)  # last phase
    assert plot_monitor(tmp_path / "metrics.jsonl", tmp_path / "monitor.png").stat().st_size > 1000

    out = tmp_path / "diag"
    assert main(["diagnose", "all", str(tmp_path), "--out", str(out), "--seqs", "4", "--seq-len", "32",
                 "--quiet"]) == 0
    report = (out / "report.md").read_text()
    for section in ("Causal probe", "Splat coverage", "Energy trend", "Langevin convergence"):
        assert section in report
    cov = json.loads((out / "coverage.json").read_text())
    assert cov["tokens"] == 4 * 32 and 0 <= cov["query"]["coverage"] <= 1
    # settling flows towards the splats: the settled points are nearer their nearest splat
    assert cov["settled"]["mean_nearest_cos"] >= cov["query"]["mean_nearest_cos"]
    lv = json.loads((out / "langevin.json").read_text())
    det = lv["deterministic"]["energy"]
    assert len(det) == 201 and det[-1] < det[0]  # the damped flow (T → 0) lowers E
    trend = json.loads((out / "energy_trend.json").read_text())
    assert trend["steps"] == [20, 40, 60] and len(trend["splat_energy"]) == 3
    for png in ("langevin.png", "energy_trend.png"):
        assert (out / png).stat().st_size > 1000


def test_bad_sphere_ebm_configs_are_one_line_errors():
    from semsim.errors import SemsimError
    from semsim.presets import get_preset

    for bad, match in ((["model.kappa_min=60"], "κ bounds inverted"), (["model.k=1000"], "≤ model.splats"),
                       (["model.top_experts=5"], "≤ model.experts"), (["model.dsm_sigmas=[0.1, -1]"], "each > 0")):
        run = get_preset("sphere-ebm-tiny")
        run.override(bad)
        with pytest.raises(SemsimError, match=match):
            run.check()


# ----------------------------------------------------------------------------- curriculum, consolidation
def test_curriculum_grows_the_store_and_lowers_the_temperature():
    model = _tiny_ebm()  # curriculum 64 → 128 → 256 splats, T 1.0 → 0.8 → 0.6
    store = model.splats
    assert store.active == 64 and float(model.temperature) == 1.0
    model.train()
    model(torch.randint(0, 50257, (4, 16)))  # records the 64 settled points the new splats start at
    q = F.normalize(torch.randn(500, store.mu.shape[1]), dim=-1)
    assert (store.neighbours(q) < 64).all()  # only the splats in use are searched
    model.set_training_progress(0.4)
    event = model.after_step(1)
    assert event["phase"] == 1 and event["added_splats"] == 64 and event["splats_in_use"] == 128
    assert float(model.temperature) == pytest.approx(0.8)
    recent, _ = model._recent
    cos = store.centres()[64:128] @ F.normalize(recent, dim=-1).T
    assert torch.allclose(cos.max(-1).values, torch.ones(64), atol=1e-5)  # seeded at settled points
    assert (store.neighbours(q) < 128).all() and (store.neighbours(q) >= 64).any()
    model.set_training_progress(0.9)
    assert model.after_step(2)["splats_in_use"] == 256 and float(model.temperature) == pytest.approx(0.6)
    assert model.after_step(3) is None  # nothing changed, no check due


def test_consolidation_merges_duplicates_and_prunes_dead_splats():
    store = SplatStore(dim=8, capacity=6, k=2).double()
    base = _points(6, 8, seed=4)
    with torch.no_grad():
        base[1] = F.normalize(base[0] + 1e-3 * base[2], dim=-1)  # a near-duplicate of splat 0
        store.mu.copy_(base)
        store.log_alpha.copy_(torch.tensor([0.5, -0.2, 0.0, 0.0, 0.0, 0.0], dtype=torch.float64))
        store.kappa_raw.copy_(torch.tensor([0.0, 1.0, 0.0, 0.0, 0.0, 0.0]))
        store.usage.copy_(torch.tensor([3.0, 1.0, 1.0, 1.0, 1.0, 0.0]))
        store.age.copy_(torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, 500.0]))  # splat 5 unused for 500 steps
    expected_mu = F.normalize(3.0 * base[0] + 1.0 * base[1], dim=-1)
    expected_alpha = math.log(math.exp(0.5) + math.exp(-0.2))
    seeds = _points(2, 8, seed=5)
    merged, pruned = store.consolidate(merge_cos=0.99, dead_age=100, seeds=seeds)
    assert (merged, pruned) == (1, 1)
    assert torch.allclose(store.centres()[0], expected_mu)  # the more used splat absorbs the other
    assert abs(store.log_alpha[0].item() - expected_alpha) < 1e-12  # amplitudes add
    assert store.kappa_raw[0].item() == 1.0 and store.usage[0].item() == 4.0  # larger κ, summed usage
    # freed slots (1: absorbed, 5: dead) are re-seeded, fresh, at the given points
    assert torch.allclose(store.centres()[[1, 5]], seeds)
    assert store.usage[[1, 5]].eq(0).all() and store.age[[1, 5]].eq(0).all()
    assert torch.equal(store.mu[2:5].detach(), base[2:5])  # the others are untouched
    assert store.consolidate(merge_cos=0.99, dead_age=100, seeds=seeds) == (0, 0)


def test_criticality_past_the_threshold_triggers_consolidation():
    model = _tiny_ebm()
    model.train()
    model(torch.randint(0, 50257, (2, 16)))
    c = model.config
    store = model.splats
    with torch.no_grad():
        store.usage[:64] = 0.0  # an idle store: criticality 0, nothing consolidates
    quiet = model.after_step(c.soc_every)
    assert quiet["criticality"] == 0 and quiet["merged"] == quiet["pruned"] == 0
    with torch.no_grad():
        store.usage[:64] = 1.0  # every splat in use
        store.age[:8] = c.dead_age  # ... but for eight gone quiet long enough to count as dead
        store.mu[11] = store.mu[10]  # and one exact duplicate pair
    for i in range(2, 2 + c.soc_history):  # the history fills with checks of a saturated store
        event = model.after_step(c.soc_every * i)
        if event["criticality"] <= c.soc_threshold:
            assert event["merged"] == event["pruned"] == 0
    assert event["criticality"] > c.soc_threshold
    assert (event["merged"], event["pruned"]) == (1, 8)
    assert event["consolidation_rate"] == 9 * 1000 / c.soc_every
    assert store.age[:8].eq(0).all() and store.usage[11] == 0  # freed slots start afresh


def test_splats_start_from_a_checkpoints_token_embeddings(tmp_path):
    from semsim.errors import SemsimError
    from semsim.models import build_model
    from semsim.models.gpt import GPTConfig
    from semsim.presets import get_preset

    gpt = build_model(GPTConfig(vocab_size=300, block_size=16, d_model=16, n_layer=1, n_head=2))
    gpt.save_pretrained(tmp_path / "gpt16")
    run = get_preset("sphere-ebm-tiny")  # a 32-d sphere: the 16-d embeddings fit by an isometry
    run.override([f"model.splat_init={tmp_path / 'gpt16'}"])
    model = build_model(run.model)
    emb = F.normalize(gpt.wte.weight.detach()[:256], dim=-1)
    mu = model.splats.centres()[:256]
    assert torch.allclose(mu @ mu.T, emb @ emb.T, atol=1e-5)  # every cosine kept
    wide = build_model(GPTConfig(vocab_size=300, block_size=16, d_model=64, n_layer=1, n_head=2))
    wide.save_pretrained(tmp_path / "gpt64")
    run.override([f"model.splat_init={tmp_path / 'gpt64'}"])
    with pytest.raises(SemsimError, match="dims mismatched"):
        build_model(run.model)
    run.override([f"model.splat_init={tmp_path / 'nowhere'}"])
    with pytest.raises(SemsimError, match="no semsim checkpoint"):
        build_model(run.model)
    # a trained model loads its own centres, not the init file's (which may be gone by then)
    model.save_pretrained(tmp_path / "ebm")
    (tmp_path / "gpt16" / "model.safetensors").unlink()
    from semsim.training.checkpoint import load_model

    again = load_model(tmp_path / "ebm")[0]
    assert torch.equal(again.splats.mu, model.splats.mu)


def test_resume_across_curriculum_phases_and_consolidation_is_exact(tmp_path, data_dir):
    """Stopped (Ctrl-C) mid-run and resumed, a run with growth and merge/prune events reproduces the
    uninterrupted run's losses, events and weights."""
    import os
    import signal

    from safetensors.torch import load_file

    from semsim.presets import get_preset
    from semsim.training.trainer import Interrupted, Trainer

    def run_cfg():
        run = get_preset("sphere-ebm-tiny")
        run.override(["train.steps=24", "train.batch_size=2", "model.block_size=16", "train.eval_interval=12",
                      "train.eval_tokens=512", "train.log_interval=1", "train.progress=false",
                      "train.causal_probe=false", "model.soc_every=4", "model.soc_threshold=0.05",
                      "model.dead_age=6"])
        return run

    def rows(out):
        return [{k: v for k, v in json.loads(x).items() if k not in ("elapsed", "tokens_per_s")}
                for x in (out / "metrics.jsonl").read_text().splitlines()]

    Trainer(run_cfg(), tmp_path / "whole", log=lambda m: None).fit()
    trainer = Trainer(run_cfg(), tmp_path / "cut", log=lambda m: None)
    original = trainer.model.after_step

    def stop_at_13(step):
        out = original(step)
        if step == 13:
            os.kill(os.getpid(), signal.SIGINT)  # seen by the loop before step 14
        return out

    trainer.model.after_step = stop_at_13
    with pytest.raises(Interrupted):
        trainer.fit()
    Trainer(None, tmp_path / "cut", resume=True, log=lambda m: None).fit()
    whole, cut = rows(tmp_path / "whole"), rows(tmp_path / "cut")
    events = [r for r in whole if r["split"] == "event"]
    assert any(r.get("added_splats") for r in events) and any(r["merged"] + r["pruned"] for r in events
                                                              if "merged" in r)
    assert cut == whole
    a = load_file(str(tmp_path / "whole/checkpoint/model.safetensors"))
    b = load_file(str(tmp_path / "cut/checkpoint/model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_trend_warnings():
    from semsim.training.monitor import trend_warnings

    def val(step, ppl, energy):
        return {"split": "val", "step": step, "ppl": ppl, "monitor": {"splat_energy": energy}}

    healthy = [val(0, 900, -1.0), val(1, 500, -1.2), val(2, 300, -1.3), val(3, 250, -1.35), val(4, 240, -1.4)]
    assert trend_warnings(healthy) == []
    worse = healthy[:2] + [val(2, 600, -1.0), val(3, 700, -0.9), val(4, 800, -0.8)]
    w = trend_warnings(worse)
    assert any("PPL worsens" in x for x in w) and any("energy rises" in x for x in w)
    rates = [{"split": "event", "step": s, "consolidation_rate": r} for s, r in ((10, 0), (20, 50), (30, 120))]
    assert any("consolidation accelerates" in x for x in trend_warnings(healthy + rates))
    assert trend_warnings(healthy + rates[:2]) == []  # two checks are not a trend
