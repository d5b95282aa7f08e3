"""Scans equal a naive sequential recurrence."""

import torch

from semsim.context import S4D, CumulativeMean, HiPPOLegT, MultiEMA, diag_scan, matrix_scan


def test_diag_scan_matches_loop_real_and_complex():
    torch.manual_seed(0)
    for dtype in (torch.float64, torch.complex128):
        u = torch.randn(2, 37, 3, 4, dtype=dtype)
        a = torch.rand(3, 1, dtype=torch.float64).to(dtype) * 0.9
        x, ref = diag_scan(u, a), []
        state = torch.zeros_like(u[:, 0])
        for t in range(u.shape[1]):
            state = a * state + u[:, t]
            ref.append(state)
        assert torch.allclose(x, torch.stack(ref, 1))


def test_matrix_scan_matches_loop():
    torch.manual_seed(1)
    u = torch.randn(2, 29, 4, 5, dtype=torch.float64)
    A = torch.randn(4, 4, dtype=torch.float64) * 0.4
    state, ref = torch.zeros_like(u[:, 0]), []
    for t in range(29):
        state = A @ state + u[:, t]
        ref.append(state)
    assert torch.allclose(matrix_scan(u, A), torch.stack(ref, 1))


def test_ema_channel_is_a_debiased_ema():
    torch.manual_seed(2)
    ch = MultiEMA((0.25, 0.9), debias=False).double()
    h = torch.randn(1, 20, 3, dtype=torch.float64)
    xi = ch(h)
    for k, a in enumerate((0.25, 0.9)):
        s = torch.zeros(3, dtype=torch.float64)
        for t in range(20):
            s = a * s + (1 - a) * h[0, t]
            assert torch.allclose(xi[0, t, k], s)
    deb = MultiEMA((0.25, 0.9), debias=True).double()(torch.ones(1, 20, 3, dtype=torch.float64))
    assert torch.allclose(deb, torch.ones_like(deb))  # a weighted mean of a constant is that constant


def test_cumulative_mean():
    h = torch.randn(2, 10, 4)
    xi = CumulativeMean()(h)
    assert torch.allclose(xi[:, 4, 0], h[:, :5].mean(1), atol=1e-6)


def test_legt_matches_loop_and_tracks_a_constant():
    ch = HiPPOLegT(n=4, theta=8.0).double()
    h = torch.randn(1, 40, 2, dtype=torch.float64)
    xi, state = ch(h), torch.zeros(4, 2, dtype=torch.float64)
    for t in range(40):
        state = ch.A_bar.double() @ state + ch.B_bar.double()[:, None] * h[0, t]
        assert torch.allclose(xi[0, t], state, atol=1e-5)
    # A constant input, held longer than the window, is stored as Legendre coefficient c_0 = value.
    const = ch(torch.full((1, 60, 1), 2.0, dtype=torch.float64))
    assert abs(const[0, -1, 0, 0].item() - 2.0) < 0.05


def test_s4d_matches_loop():
    torch.manual_seed(3)
    ch = S4D(n_modes=6, n_out=3)
    h = torch.randn(2, 25, 4)
    lam = torch.complex(-torch.exp(ch.log_neg_re), ch.im)
    a = torch.exp(torch.exp(ch.log_dt) * lam)
    b = (a - 1) / lam
    C = torch.view_as_complex(ch.C.detach().contiguous())
    state, ref = torch.zeros(2, 6, 4, dtype=torch.complex64), []
    for t in range(25):
        state = a[None, :, None] * state + b[None, :, None] * h[:, t, None, :]
        ref.append(torch.einsum("kn,bnd->bkd", C, state).real)
    assert torch.allclose(ch(h), torch.stack(ref, 1).detach(), atol=1e-5)
