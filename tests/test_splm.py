"""SPLM model: closed form vs autograd, causality, energy bookkeeping, masses, attractors."""

import dataclasses

import pytest
import torch

from conftest import make_model
from semsim.diagnostics import causal_probe
from semsim.models.splm import SPLMConfig
from semsim.presets import get_preset, preset_names


def tiny(**kw) -> SPLMConfig:
    base = dict(vocab_size=97, block_size=24, d_model=16, n_layer=3, hidden=32)
    base.update(kw)
    return SPLMConfig(**base)


@pytest.mark.parametrize("potential", ["mlp", "sq1", "sq2", "sq3", "sq4"])
@pytest.mark.parametrize("context", ["cummean", "ema", "legt", "s4d"])
def test_closed_form_model_equals_autograd_model(potential, context):
    torch.manual_seed(0)
    cfg = tiny(potential=potential, context=context)
    m1 = make_model(cfg).double()
    m2 = make_model(dataclasses.replace(cfg, force="autograd")).double()
    m2.load_state_dict(m1.state_dict())
    idx = torch.randint(0, 97, (2, 24))
    assert torch.allclose(m1(idx).logits, m2(idx).logits, atol=1e-10)
    o1, o2 = m1(idx, targets=idx), m2(idx, targets=idx)  # the loss through the fused head
    g1 = torch.autograd.grad(o1.loss + o1.aux_loss, list(m1.parameters()), allow_unused=True)
    g2 = torch.autograd.grad(o2.loss + o2.aux_loss, list(m2.parameters()), allow_unused=True)
    for a, b, p in zip(g1, g2, m1.parameters()):  # None: no path to the loss (the fused kernels give 0)
        a, b = (torch.zeros_like(p) if g is None else g for g in (a, b))
        assert torch.allclose(a, b, rtol=1e-7, atol=1e-11)


def test_shared_weights_are_built_once_per_forward(monkeypatch):
    """The SQ3 wells' packed maps and the multi-EMA filter are the same at every layer: built once a forward
    (semsim.per_forward) however many layers read them, and not kept on the modules after it."""
    from semsim.context.channels import MultiEMA
    from semsim.potentials.wells import MixtureWells

    calls = {"wells": 0, "ema": 0}

    def counting(fn, key):
        def wrapped(*a, **kw):
            calls[key] += 1
            return fn(*a, **kw)
        return wrapped

    monkeypatch.setattr(MixtureWells, "_packed_weights", counting(MixtureWells._packed_weights, "wells"))
    monkeypatch.setattr(MultiEMA, "weights", counting(MultiEMA.weights, "ema"))
    model = make_model(tiny(potential="sq3", context="ema", n_layer=4))
    idx = torch.randint(0, 97, (2, 24))
    model(idx, targets=idx).loss.backward()
    assert calls == {"wells": 1, "ema": 1}
    assert model.potential._per_forward is None and model.channel._per_forward is None


@pytest.mark.parametrize("name", preset_names())
def test_causal_probe_passes_for_every_preset(name):
    torch.manual_seed(0)
    model = make_model(get_preset(name).model)
    res = causal_probe(model, seq_len=16)
    assert res["passed"], res
    assert res["min_effect_at_or_after_t"] > 0  # the perturbation did propagate


class _LeakyMean(torch.nn.Module):
    """A deliberately non-causal context: the mean over the whole sequence, future included."""

    n_channels = 1

    def forward(self, h):
        return h.mean(1, keepdim=True).expand_as(h).unsqueeze(2)


def test_causal_probe_catches_a_leak():
    model = make_model(tiny(context="cummean"))
    model.channel = _LeakyMean()
    res = causal_probe(model, seq_len=16)
    assert not res["passed"] and res["max_abs_dlogits_before_t"] > 1e-4


@pytest.mark.parametrize("potential", ["mlp", "sq3"])
def test_discretisation_error_shrinks_with_dt(potential):
    """Over a fixed integration time the integrator's error term is O(dt): halving dt (and doubling the
    steps) shrinks it, and dissipation is never negative."""
    totals = []
    for dt, steps in ((0.05, 20), (0.025, 40)):
        cfg = tiny(potential=potential, layer_norm=False, dt=dt, n_layer=steps, gamma=0.3, mass="uniform")
        torch.manual_seed(0)
        model = make_model(cfg).double()
        x = model.embed(torch.randint(0, 97, (2, 24))) * 50  # start away from the minimum
        with torch.no_grad():
            _, _, ex = model.forward_embeddings(x, torch.zeros(2, 24, dtype=torch.long), return_extras=True)
        e = ex["energy"]
        assert (e["dissipated"] >= 0).all()  # damping only removes energy
        assert e["layernorm"].abs().max() == 0  # no LayerNorm, no projection term
        dT, dV = e["kinetic"][-1], e["potential"][-1] - ex["potential"][0].mean()  # v starts at 0
        scale = e["dissipated"].sum().abs() + dT.abs() + dV.abs()
        totals.append((e["discretisation"].sum().abs() / scale).item())
    assert totals[0] < 0.05
    assert totals[1] < 0.7 * totals[0]


def test_energy_book_closes_for_every_family():
    """float64, LayerNorm on: per layer, ΔE equals the named terms (dissipation, discretisation, LayerNorm
    projection, context work, pair / register / attention work) up to 1e-6 of the largest term."""
    presets = {"splm": "splm-multixi-tiny", "parflm": "parflm-tiny", "fock": "fock-parflm-tiny",
               "hybrid": "hybrid-tiny"}
    expected = {"parflm": ["pair_work"], "fock": ["pair_work", "fock_work"], "hybrid": ["attention_work"]}
    for family, name in presets.items():
        cfg = get_preset(name).model
        cfg.mass, cfg.vocab_size = "uniform", 97
        if family == "hybrid":
            cfg.schedule, cfg.n_layer = "SASA", 2
        torch.manual_seed(0)
        model = make_model(cfg).double().eval()
        with torch.no_grad():
            ex = model(torch.randint(0, 97, (2, 24)), return_extras=True).extras
        e = ex["energy"]
        for term in expected.get(family, []):
            assert e[term].abs().max() > 0, (family, term)
        terms = [k for k in e if k not in ("kinetic", "potential", "total", "residual")]
        largest = max(e[k].abs().max().item() for k in terms)
        assert e["residual"].abs().max().item() <= 1e-6 * largest, (family, e["residual"])
        assert e["layernorm"].abs().max() > 0  # LayerNorm on: its projection is booked, not lost
        # the layers chain: E_L − E_0 is the sum of every layer's named terms
        E0 = ex["potential"][0].mean()
        named = sum(-e[k].sum() if k == "dissipated" else e[k].sum() for k in terms)
        assert torch.allclose(e["total"][-1] - E0, named, rtol=1e-9, atol=1e-9), family
        # a term left out would not close: each interaction's work is far above the rounding residual
        for term in expected.get(family, []):
            assert e[term].abs().sum() > 1e6 * e["residual"].abs().sum(), (family, term)


def test_mass_modes(shakespeare):
    surprisal = torch.from_numpy(shakespeare.surprisal.copy())
    m = make_model(tiny(vocab_size=50257, mass="logfreq"), surprisal=surprisal)
    common, rare = 13, 50000  # "." is frequent in Shakespeare; id 50000 never occurs
    masses = m.mass(torch.tensor([[common, rare]]))
    assert masses[0, 0, 0] < masses[0, 1, 0]  # rare tokens are heavier
    assert torch.allclose(m.mass.table.mean(), torch.tensor(2.0))  # 1 + s/s̄ averages to 2
    learned = make_model(tiny(mass="learned"))
    assert torch.allclose(learned.mass(torch.tensor([[1, 2]])), torch.ones(1, 2, 1))
    assert torch.equal(make_model(tiny(mass="uniform")).mass(torch.tensor([[1]])), torch.ones(1, 1, 1))


def test_context_detach_modes():
    for mode, expect_grad in (("input", True), ("output", False)):
        model = make_model(tiny(context="ema", detach_context=mode))
        out = model(torch.randint(0, 97, (2, 24)), targets=torch.randint(0, 97, (2, 24)))
        out.loss.backward()
        g = model.channel.decay_logit.grad
        assert (g is not None and g.abs().sum() > 0) == expect_grad


def test_sq3_attractor_readout():
    model = make_model(tiny(potential="sq3", wells=4))
    res = model.attractors(torch.randint(0, 97, (1, 10)), top=3)
    assert res["centres"].shape == (1, 10, 4, 16)
    assert torch.allclose(res["weights"].sum(-1), torch.ones(1, 10))
    assert res["nearest_tokens"].shape == (1, 10, 4, 3)


class _MassFromNextToken(torch.nn.Module):
    """A deliberately non-causal mass: read from the *next* token's id, not through the embedding."""

    def forward(self, idx):
        return (1 + (torch.roll(idx, -1, dims=1) % 7).float()).unsqueeze(-1)


def test_causal_probe_catches_a_leak_through_token_ids():
    model = make_model(tiny(context="cummean"))
    model.mass = _MassFromNextToken()
    res = causal_probe(model, seq_len=16)
    assert res["max_abs_dlogits_before_t"] <= 1e-6  # invisible to perturbations of the embeddings
    assert not res["passed"] and res["max_abs_dlogits_before_t_token_ids"] > 1e-4


def test_logfreq_mass_without_a_surprisal_table_is_an_error():
    from semsim.errors import SemsimError
    from semsim.models import build_model

    with pytest.raises(SemsimError, match="surprisal table.*mass=uniform"):
        build_model(tiny(mass="logfreq"))
    assert build_model(tiny(mass="uniform")).mass.mode == "uniform"


def test_sq3_readout_offers_the_mixtures_true_minima():
    """The well centres are each well's own minimum; the mixture's minima (found by projected descent)
    are fixed points of the projected flow, where the centres in general are not."""
    from semsim.diagnostics.attractors import attractors

    torch.manual_seed(0)
    model = make_model(tiny(potential="sq3", wells=4, mass="uniform")).double().eval()
    for p in model.parameters():
        p.data += 0.3 * torch.randn_like(p)  # overlapping wells of unequal depth
    idx = torch.randint(0, 97, (1, 10))
    res = attractors(model, idx, n_starts=16, steps=400)
    assert len(res["centres"]["points"]) == 4 and res["n_attractors"] >= 1
    h_last = model(idx, return_extras=True).extras["hidden"][-1]
    xi = model.context(h_last)[:, -1]

    def moved(h):  # how far one projected step moves h: 0 at a constrained minimum
        f, _ = model.potential.force(xi.expand(h.shape[0], -1), h)
        return (model.ln(h + 0.05 * f) - h).norm(dim=-1)

    mu = model.attractors(idx)["centres"][0, -1]
    from semsim.diagnostics.attractors import descend

    hmin, _ = descend(model, xi, mu, steps=400)
    assert moved(hmin).max() < 1e-3 * moved(model.ln(mu)).max()
