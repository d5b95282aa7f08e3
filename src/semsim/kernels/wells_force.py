"""SQ3's force (K diagonal wells mixed by a softmax) as one autograd.Function: one pass per direction.

With μ_k, p_k (N, K, d), π-logits l (N, K) and b (N,) read off one row y = ξ Wᵀ + c of the four
linear maps side by side, a_k = softplus(p_k) + a_min, δ_k = h − μ_k, E_k = ½ Σ a_k δ_k²,
s_k = −E_k/τ + log softmax(l)_k, q = softmax(s):

    V = −τ logsumexp(s) + b,    f = −Σ_k q_k a_k ⊙ δ_k.

Backward, given f̄ and V̄: c_k = −f̄ · a_k δ_k, s̄ = q ⊙ (c − q·c) − τ V̄ q, Ē = −s̄/τ,
l̄ = s̄ − softmax(l) Σ s̄; F̄_k = −q_k f̄, ā_k = ½ Ē_k δ_k² + F̄_k δ_k, δ̄_k = Ē_k a_k δ_k + F̄_k a_k,
h̄ = Σ_k δ̄_k, μ̄_k = −δ̄_k, p̄_k = ā_k σ(p_k), b̄ = V̄. Nothing of size (N, K, d) is kept: both
directions re-read μ and p, and only q (N, K) is saved. On CUDA each direction is one Triton
kernel over blocks of tokens that holds all K wells of its tokens as one (tokens, K, d) tile, so
Y is read once per direction; elsewhere the same formulas run as PyTorch ops (the reference, and
the float64 gradcheck).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from semsim.kernels.dispatch import on_triton

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - depends on the install
    triton = tl = None


def _split(Y, K, d):
    N, Kd = Y.shape[0], K * d
    return (Y[:, :Kd].reshape(N, K, d), Y[:, Kd: 2 * Kd].reshape(N, K, d), Y[:, 2 * Kd: 2 * Kd + K],
            Y[:, 2 * Kd + K])


def _forward_torch(Y, h, K, d, tau, a_min):
    wd = torch.promote_types(Y.dtype, torch.float32)
    mu, p, lp, b = (t.to(wd) for t in _split(Y, K, d))
    a = F.softplus(p) + a_min
    delta = h.to(wd).unsqueeze(1) - mu
    s = -0.5 * (a * delta * delta).sum(-1) / tau + F.log_softmax(lp, -1)
    lse = torch.logsumexp(s, -1)
    q = torch.exp(s - lse.unsqueeze(-1))
    return -(q.unsqueeze(-1) * a * delta).sum(1), -tau * lse + b, q


def _backward_torch(Y, h, q, f_bar, V_bar, K, d, tau, a_min):
    wd = q.dtype
    mu, p, lp, _ = (t.to(wd) for t in _split(Y, K, d))
    u, V_bar = f_bar.to(wd), V_bar.to(wd)
    a = F.softplus(p) + a_min
    delta = h.to(wd).unsqueeze(1) - mu
    c = -(u.unsqueeze(1) * a * delta).sum(-1)
    s_bar = q * (c - (q * c).sum(-1, keepdim=True)) - tau * V_bar.unsqueeze(-1) * q
    E_bar = (-s_bar / tau).unsqueeze(-1)
    l_bar = s_bar - torch.softmax(lp, -1) * s_bar.sum(-1, keepdim=True)
    F_bar = -q.unsqueeze(-1) * u.unsqueeze(1)
    a_bar = 0.5 * E_bar * delta * delta + F_bar * delta
    d_bar = E_bar * a * delta + F_bar * a
    pad = Y.shape[1] - (2 * K * d + K + 1)  # zero columns after b (see MixtureWells.packed)
    Y_bar = torch.cat([(-d_bar).flatten(1), (a_bar * torch.sigmoid(p)).flatten(1), l_bar, V_bar.unsqueeze(-1),
                       V_bar.new_zeros(Y.shape[0], pad)], -1)
    return Y_bar, d_bar.sum(1)


if triton is not None:

    @triton.jit
    def _softplus(x):
        return tl.maximum(x, 0.0) + tl.log(1.0 + tl.exp(-tl.abs(x)))

    @triton.jit
    def _tile(Y, H, N, stride_y, d, a_min, K: tl.constexpr, BN: tl.constexpr, BD: tl.constexpr, BK: tl.constexpr):
        """This program's BN token rows: all K wells at once as (BN, BK, BD) tiles, read once.

        Returns the rows (int64), their (BN, BK) and (BN, BD) offsets and masks, h, p, a_k = softplus(p_k) + a_min
        and δ_k = h − μ_k, in fp32."""
        rows = tl.program_id(0) * BN + tl.arange(0, BN)
        cols, ks = tl.arange(0, BD), tl.arange(0, BK)
        rm = rows < N
        rows = rows.to(tl.int64)
        m2 = rm[:, None] & (cols[None, :] < d)
        mk = rm[:, None] & (ks[None, :] < K)
        m3 = mk[:, :, None] & (cols[None, None, :] < d)
        w3 = (rows * stride_y)[:, None, None] + ks[None, :, None] * d + cols[None, None, :]  # μ_k's columns
        h = tl.load(H + rows[:, None] * d + cols[None, :], mask=m2, other=0.0).to(tl.float32)
        mu = tl.load(Y + w3, mask=m3, other=0.0).to(tl.float32)
        p = tl.load(Y + w3 + K * d, mask=m3, other=0.0).to(tl.float32)
        return rows, rm, m2, mk, m3, w3, h, p, _softplus(p) + a_min, h[:, None, :] - mu

    @triton.jit
    def _log_pi(Y, rows, stride_y, ks, mk, d, K: tl.constexpr):
        """log softmax of the π-logits, (BN, BK); padded wells get ≈ −1e30."""
        lp = tl.load(Y + (rows * stride_y)[:, None] + 2 * K * d + ks[None, :], mask=mk, other=-1e30).to(tl.float32)
        lp = lp - tl.max(lp, 1)[:, None]
        return lp - tl.log(tl.sum(tl.exp(lp), 1))[:, None]

    @triton.jit
    def _wells_fwd_kernel(Y, H, Fo, Vo, Qo, N, stride_y, d, tau, a_min,
                          K: tl.constexpr, BN: tl.constexpr, BD: tl.constexpr, BK: tl.constexpr):
        rows, rm, m2, mk, m3, w3, h, p, a, dl = _tile(Y, H, N, stride_y, d, a_min, K, BN, BD, BK)
        ks = tl.arange(0, BK)
        s = _log_pi(Y, rows, stride_y, ks, mk, d, K) - 0.5 * tl.sum(a * dl * dl, 2) / tau
        mx = tl.max(s, 1)
        lse = mx + tl.log(tl.sum(tl.exp(s - mx[:, None]), 1))
        q = tl.exp(s - lse[:, None])
        f = -tl.sum(q[:, :, None] * a * dl, 1)
        b = tl.load(Y + rows * stride_y + 2 * K * d + K, mask=rm, other=0.0).to(tl.float32)
        tl.store(Fo + rows[:, None] * d + tl.arange(0, BD)[None, :], f, mask=m2)
        tl.store(Vo + rows, -tau * lse + b, mask=rm)
        tl.store(Qo + rows[:, None] * K + ks[None, :], q, mask=mk)

    @triton.jit
    def _wells_bwd_kernel(Y, H, Q, Fb, Vb, Yb, Hb, N, stride_y, d, tau, a_min,
                          K: tl.constexpr, BN: tl.constexpr, BD: tl.constexpr, BK: tl.constexpr):
        rows, rm, m2, mk, m3, w3, h, p, a, dl = _tile(Y, H, N, stride_y, d, a_min, K, BN, BD, BK)
        cols, ks = tl.arange(0, BD), tl.arange(0, BK)
        u = tl.load(Fb + rows[:, None] * d + cols[None, :], mask=m2, other=0.0).to(tl.float32)
        vb = tl.load(Vb + rows, mask=rm, other=0.0).to(tl.float32)
        q = tl.load(Q + rows[:, None] * K + ks[None, :], mask=mk, other=0.0)
        c = -tl.sum(u[:, None, :] * a * dl, 2)
        s_bar = q * (c - tl.sum(q * c, 1)[:, None]) - tau * vb[:, None] * q
        l_bar = s_bar - tl.exp(_log_pi(Y, rows, stride_y, ks, mk, d, K)) * tl.sum(s_bar, 1)[:, None]
        E_bar = (-s_bar / tau)[:, :, None]
        F_bar = -q[:, :, None] * u[:, None, :]
        a_bar = 0.5 * E_bar * dl * dl + F_bar * dl
        d_bar = (E_bar * dl + F_bar) * a
        dt = Yb.dtype.element_ty
        tl.store(Yb + w3, (-d_bar).to(dt), mask=m3)
        tl.store(Yb + w3 + K * d, (a_bar / (1.0 + tl.exp(-p))).to(dt), mask=m3)  # ā_k σ(p_k)
        tl.store(Yb + (rows * stride_y)[:, None] + 2 * K * d + ks[None, :], l_bar.to(dt), mask=mk)
        tl.store(Yb + rows * stride_y + 2 * K * d + K, vb.to(dt), mask=rm)
        tl.store(Hb + rows[:, None] * d + cols[None, :], tl.sum(d_bar, 1).to(Hb.dtype.element_ty), mask=m2)


# (elements per program = tokens × K × d, rounded to powers of two; warps) for each direction. On an H100 at
# K = 8, d = 256: forward 0.041 ms, backward 0.085 ms per call (the two-pass kernels: 0.209, 0.454), from
# benchmarks/wells_force_tiles.py (benchmarks/results/fused-kernels/wells-force-tiles.json).
TILE = {"fwd": (4096, 2), "bwd": (2048, 2)}


def _blocks(K, d, direction):
    BD, BK = triton.next_power_of_2(d), triton.next_power_of_2(K)
    elems, warps = TILE[direction]
    return max(1, elems // (BD * BK)), BD, BK, warps


class WellsForce(torch.autograd.Function):
    @staticmethod
    def forward(ctx, Y, h, K: int, tau: float, a_min: float):
        """Y (…, ≥ 2Kd + K + 1): [μ | p | π-logits | b | padding]; h (…, d) → (f (…, d), V (…)), float32 or wider."""
        shape, d = h.shape, h.shape[-1]
        Y2, h2 = Y.reshape(-1, Y.shape[-1]).contiguous(), h.reshape(-1, d).contiguous()
        N = h2.shape[0]
        if on_triton(Y2):
            f = torch.empty(N, d, device=h.device, dtype=torch.float32)
            V = torch.empty(N, device=h.device, dtype=torch.float32)
            q = torch.empty(N, K, device=h.device, dtype=torch.float32)
            BN, BD, BK, warps = _blocks(K, d, "fwd")
            _wells_fwd_kernel[(triton.cdiv(N, BN),)](Y2, h2, f, V, q, N, Y2.stride(0), d, float(tau), float(a_min),
                                                    K=K, BN=BN, BD=BD, BK=BK, num_warps=warps)
        else:
            f, V, q = _forward_torch(Y2, h2, K, d, tau, a_min)
        ctx.save_for_backward(Y2, h2, q)
        ctx.K, ctx.tau, ctx.a_min = K, tau, a_min
        return f.view(shape), V.view(shape[:-1])

    @staticmethod
    def backward(ctx, f_bar, V_bar):
        Y2, h2, q = ctx.saved_tensors
        K, tau, a_min = ctx.K, ctx.tau, ctx.a_min
        N, d = h2.shape
        u, vb = f_bar.reshape(N, d).contiguous(), V_bar.reshape(N).contiguous()
        if on_triton(Y2):
            Y_bar, h_bar = torch.empty_like(Y2), torch.empty_like(h2)
            Y_bar[:, 2 * K * d + K + 1:].zero_()  # padding columns (the kernel writes the rest)
            BN, BD, BK, warps = _blocks(K, d, "bwd")
            _wells_bwd_kernel[(triton.cdiv(N, BN),)](Y2, h2, q, u, vb, Y_bar, h_bar, N, Y2.stride(0), d, float(tau),
                                                    float(a_min), K=K, BN=BN, BD=BD, BK=BK, num_warps=warps)
        else:
            Y_bar, h_bar = _backward_torch(Y2, h2, q, u, vb, K, d, tau, a_min)
            Y_bar, h_bar = Y_bar.to(Y2.dtype), h_bar.to(h2.dtype)
        return Y_bar.view(*f_bar.shape[:-1], -1), h_bar.view(f_bar.shape), None, None, None
