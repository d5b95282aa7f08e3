"""Every closed-form force equals autograd's -∇_h V (float64, random inputs)."""

import pytest
import torch

from semsim.potentials import make_potential

KINDS = ["mlp", "sq1", "sq2", "sq3", "sq4"]


def _rel(a, b):
    return ((a - b).norm() / b.norm()).item()


ACTS = ["gelu", "silu", "tanh", "softplus"]
CASES = [(k, "gelu") for k in KINDS] + [(k, a) for k in ("mlp", "sq4") for a in ACTS[1:]]


@pytest.mark.parametrize("kind,act", CASES)
def test_closed_form_force_matches_autograd(kind, act):
    torch.manual_seed(0)
    d, d_xi = 12, 24
    pot = make_potential(kind, d_xi, d, hidden=32, depth=4, act=act, wells=5, rank=3, residual_hidden=16).double()
    for p in pot.parameters():  # move off the initialisation so no term is trivially zero
        p.data += 0.3 * torch.randn_like(p)
    xi = torch.randn(3, 7, d_xi, dtype=torch.float64)
    h = torch.randn(3, 7, d, dtype=torch.float64)
    f, V = pot.force(xi, h)
    f_ref, V_ref = pot.force_autograd(xi, h)
    assert _rel(f, f_ref) < 1e-6
    assert torch.allclose(V, V_ref) and torch.allclose(V, pot.energy(xi, h))


@pytest.mark.parametrize("kind", KINDS)
def test_parameter_gradients_through_force_match_create_graph(kind):
    """Training through the closed form gives the same parameter gradients as the published double backward."""
    torch.manual_seed(1)
    pot = make_potential(kind, 8, 6, hidden=16, depth=3, wells=3, rank=2, residual_hidden=8).double()
    xi = torch.randn(2, 5, 8, dtype=torch.float64)
    h = torch.randn(2, 5, 6, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 5, 6, dtype=torch.float64)
    params = list(pot.parameters())
    g1 = torch.autograd.grad((pot.force(xi, h)[0] * w).sum(), params, allow_unused=True)
    g2 = torch.autograd.grad((pot.force_autograd(xi, h)[0] * w).sum(), params, allow_unused=True)
    for p, a, b in zip(params, g1, g2):  # None: the parameter (e.g. the energy offset) has no force
        a = torch.zeros_like(p) if a is None else a
        b = torch.zeros_like(p) if b is None else b
        assert torch.allclose(a, b, rtol=1e-8, atol=1e-10)


def test_sq3_force_formula():
    """f = -Σ_k q_k a_k ⊙ (h - μ_k) with q the responsibilities, written out by hand."""
    torch.manual_seed(2)
    pot = make_potential("sq3", 4, 3, wells=2).double()
    xi, h = torch.randn(1, 1, 4, dtype=torch.float64), torch.randn(1, 1, 3, dtype=torch.float64)
    a, delta, s, V = pot._terms(xi, h)
    q = torch.softmax(s, -1)
    f = -(q[..., 0, None] * a[..., 0, :] * delta[..., 0, :] + q[..., 1, None] * a[..., 1, :] * delta[..., 1, :])
    assert torch.allclose(pot.force(xi, h)[0], f)


def test_wells_are_attractive():
    """Every SQ well pulls h toward its centre: f·(μ - h) > 0 for a single well."""
    torch.manual_seed(3)
    for kind in ("sq1", "sq2"):
        pot = make_potential(kind, 4, 5).double()
        xi, h = torch.randn(10, 4, dtype=torch.float64), torch.randn(10, 5, dtype=torch.float64)
        mu = pot.centres(xi)[0].squeeze(-2)
        f, _ = pot.force(xi, h)
        assert ((f * (mu - h)).sum(-1) > 0).all()
