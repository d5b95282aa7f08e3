"""PARFLM's structural pair force as one autograd.Function: one pass per direction over the k sources.

Per token t and chosen source j, with u_j = l_t − l_j, r_j = ‖u_j‖²/n_l, c_j = θ_t·θ_j/n_θ, ω_j the
scaled routing weight, and the scalar MLPs y(x) = w₂·σ(x w₁ + b₁) + b₂, y'(x) = w₂·(w₁ ⊙ σ'(x w₁ + b₁)),
(P, P') = Φ(r_j), (Q, Q') = Θ(c_j):

    U_t = Σ_j ω_j P Q,    ∂U/∂l_t = Σ_j ω_j P' Q (2/n_l) u_j,    ∂U/∂θ_t = Σ_j ω_j P Q' θ_j / n_θ.

Backward, given ḡ_l, ḡ_θ, Ū: A = ω P' Q, B = ω P Q', Ā = (2/n_l) ḡ_l·u_j, B̄ = ḡ_θ·θ_j/n_θ;
P̄ = Ū ω Q + B̄ ω Q', P̄' = Ā ω Q, Q̄ = Ū ω P + Ā ω P', Q̄' = B̄ ω P, ω̄ = Ū P Q + Ā P' Q + B̄ P Q'.
A scalar MLP's adjoint for (ȳ, ȳ'): z̄ = w₂ ⊙ (ȳ σ' + ȳ' w₁ ⊙ σ''), x̄ = z̄·w₁, b̄₁ = z̄,
w̄₁ = x z̄ + ȳ' w₂ ⊙ σ', w̄₂ = ȳ σ + ȳ' w₁ ⊙ σ', b̄₂ = ȳ. Then ū_j = (2/n_l)(A ḡ_l + r̄ u_j),
l̄_t = Σ_j ū_j, l̄_j = −ū_j, θ̄_t = Σ_j c̄ θ_j/n_θ, θ̄_j = (B ḡ_θ + c̄ θ_t)/n_θ.

Unfused, every pair expands to Φ's and Θ's hidden width (N·k·128 values per tensor, a few dozen such
tensors per layer with their gradients); here the hidden units live in registers and nothing of that
size is written. On CUDA each direction is one Triton kernel over blocks of tokens; elsewhere the same
formulas run as PyTorch ops (the reference, and the float64 gradcheck).
"""

from __future__ import annotations

import torch

from semsim.kernels.dispatch import on_triton
from semsim.kernels.pointwise import ACTS, act_terms

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - depends on the install
    triton = tl = None


def pack_scalar_mlps(phi, theta) -> torch.Tensor:
    """(2, 4, H): [w₁, b₁, w₂, b₂ (repeated)] of Φ then Θ, so both ride into the kernel as one tensor."""
    H = phi.w1.shape[0]
    return torch.stack([torch.stack([m.w1, m.b1, m.w2, m.b2.expand(H)]) for m in (phi, theta)])


def _mlp_torch(x, prm, act):
    w1, b1, w2, b2 = prm[0], prm[1], prm[2], prm[3, 0]
    s, ds, dds = act_terms(x.unsqueeze(-1) * w1 + b1, act)
    return s, ds, dds, s @ w2 + b2, (ds * w1) @ w2


def _mlp_adjoint_torch(x, prm, s, ds, dds, yb, dyb):
    w1, w2 = prm[0], prm[2]
    zb = w2 * (yb.unsqueeze(-1) * ds + dyb.unsqueeze(-1) * w1 * dds)
    g = torch.stack([(x.unsqueeze(-1) * zb + dyb.unsqueeze(-1) * w2 * ds).flatten(0, -2).sum(0),
                     zb.flatten(0, -2).sum(0),
                     (yb.unsqueeze(-1) * s + dyb.unsqueeze(-1) * w1 * ds).flatten(0, -2).sum(0),
                     torch.zeros_like(w1)])
    g[3, 0] = yb.sum()
    return zb @ w1, g


def _terms_torch(lt, ls, tt, ts, prm, act):
    wd = prm.dtype
    u = lt.to(wd).unsqueeze(1) - ls.to(wd)  # (N, k, n_l)
    ts = ts.to(wd)
    r = (u * u).mean(-1)
    c = (tt.to(wd).unsqueeze(1) * ts).mean(-1)
    return u, ts, r, c, _mlp_torch(r, prm[0], act), _mlp_torch(c, prm[1], act)


def _forward_torch(lt, ls, tt, ts, ws, prm, act):
    u, ts, r, c, (_, _, _, P, dP), (_, _, _, Q, dQ) = _terms_torch(lt, ls, tt, ts, prm, act)
    ws = ws.to(prm.dtype)
    g_l = ((ws * dP * Q).unsqueeze(-1) * u).sum(1) * (2 / u.shape[-1])
    g_t = ((ws * P * dQ).unsqueeze(-1) * ts).sum(1) / ts.shape[-1]
    return g_l, g_t, (ws * P * Q).sum(1)


def _backward_torch(lt, ls, tt, ts, ws, prm, act, gl, gt, Ub):
    u, ts, r, c, (sP, dsP, ddsP, P, dP), (sQ, dsQ, ddsQ, Q, dQ) = _terms_torch(lt, ls, tt, ts, prm, act)
    wd = prm.dtype
    nl, nt = u.shape[-1], ts.shape[-1]
    ws, gl, gt, Ub = ws.to(wd), gl.to(wd), gt.to(wd), Ub.to(wd).unsqueeze(1)
    A, B = ws * dP * Q, ws * P * dQ
    Ab = (gl.unsqueeze(1) * u).sum(-1) * (2 / nl)
    Bb = (gt.unsqueeze(1) * ts).sum(-1) / nt
    rb, g_phi = _mlp_adjoint_torch(r, prm[0], sP, dsP, ddsP, Ub * ws * Q + Bb * ws * dQ, Ab * ws * Q)
    cb, g_theta = _mlp_adjoint_torch(c, prm[1], sQ, dsQ, ddsQ, Ub * ws * P + Ab * ws * dP, Bb * ws * P)
    wb = Ub * P * Q + Ab * dP * Q + Bb * P * dQ
    ub = (A.unsqueeze(-1) * gl.unsqueeze(1) + rb.unsqueeze(-1) * u) * (2 / nl)
    tt_b = (cb.unsqueeze(-1) * ts).sum(1) / nt
    ts_b = (B.unsqueeze(-1) * gt.unsqueeze(1) + cb.unsqueeze(-1) * tt.to(wd).unsqueeze(1)) / nt
    return ub.sum(1), -ub, tt_b, ts_b, wb, torch.stack([g_phi, g_theta])


if triton is not None:
    from semsim.kernels.pointwise import _act_terms

    @triton.jit
    def _smlp(x, w1, b1, w2, b2, ACT: tl.constexpr):
        """A scalar MLP on a column of BN inputs: σ, σ', σ'' (BN, BH), y and y' (BN,)."""
        s, ds, dds = _act_terms(x[:, None] * w1[None, :] + b1[None, :], ACT)
        return s, ds, dds, tl.sum(s * w2[None, :], 1) + b2, tl.sum(ds * (w1 * w2)[None, :], 1)

    @triton.jit
    def _smlp_adjoint(x, w1, w2, s, ds, dds, yb, dyb):
        """A scalar MLP's adjoint for upstream (ȳ, ȳ') (BN,): x̄ (BN,) and this block's w̄₁, b̄₁, w̄₂ (BH,)."""
        zb = w2[None, :] * (yb[:, None] * ds + (dyb[:, None] * w1[None, :]) * dds)
        return (tl.sum(zb * w1[None, :], 1), tl.sum(x[:, None] * zb + (dyb[:, None] * w2[None, :]) * ds, 0),
                tl.sum(zb, 0), tl.sum(yb[:, None] * s + (dyb[:, None] * w1[None, :]) * ds, 0))

    @triton.jit
    def _prm(PRM, m, hs, H):
        """Row m ∈ {0: Φ, 1: Θ} of the packed parameters: w₁, b₁, w₂ (BH,) and b₂."""
        hm = hs < H
        base = PRM + m * 4 * H
        return (tl.load(base + hs, mask=hm, other=0.0), tl.load(base + H + hs, mask=hm, other=0.0),
                tl.load(base + 2 * H + hs, mask=hm, other=0.0), tl.load(base + 3 * H))

    @triton.jit
    def _rows(N, nl, nt, BN: tl.constexpr, BL: tl.constexpr, BT: tl.constexpr, BH: tl.constexpr):
        rows = tl.program_id(0) * BN + tl.arange(0, BN)
        rm = rows < N
        cl, ct, hs = tl.arange(0, BL), tl.arange(0, BT), tl.arange(0, BH)
        return (rows.to(tl.int64), rm, cl, ct, hs, rm[:, None] & (cl[None, :] < nl),
                rm[:, None] & (ct[None, :] < nt))

    @triton.jit
    def _target(L, T, rows, cl, ct, ml, mt, nl, nt):
        """The block's rows of an (N, n_l) and an (N, n_θ) array (l_t and θ_t, or their upstream gradients), fp32."""
        return (tl.load(L + rows[:, None] * nl + cl[None, :], mask=ml, other=0.0).to(tl.float32),
                tl.load(T + rows[:, None] * nt + ct[None, :], mask=mt, other=0.0).to(tl.float32))

    @triton.jit
    def _source(LS, TS, WS, rows, j, cl, ct, ml, mt, rm, nl, nt, K: tl.constexpr):
        """Source j of each row: l_j, θ_j (fp32) and ω_j."""
        src = rows * K + j
        ls = tl.load(LS + src[:, None] * nl + cl[None, :], mask=ml, other=0.0).to(tl.float32)
        ts = tl.load(TS + src[:, None] * nt + ct[None, :], mask=mt, other=0.0).to(tl.float32)
        return src, ls, ts, tl.load(WS + src, mask=rm, other=0.0).to(tl.float32)

    @triton.jit
    def _pair_fwd_kernel(LT, LS, TT, TS, WS, PRM, GL, GT, Uo, N, nl, nt, H,
                         K: tl.constexpr, ACT: tl.constexpr, BN: tl.constexpr, BL: tl.constexpr,
                         BT: tl.constexpr, BH: tl.constexpr):
        rows, rm, cl, ct, hs, ml, mt = _rows(N, nl, nt, BN, BL, BT, BH)
        pw1, pb1, pw2, pb2 = _prm(PRM, 0, hs, H)
        qw1, qb1, qw2, qb2 = _prm(PRM, 1, hs, H)
        lt, tt = _target(LT, TT, rows, cl, ct, ml, mt, nl, nt)
        gl = tl.zeros((BN, BL), dtype=tl.float32)
        gt = tl.zeros((BN, BT), dtype=tl.float32)
        U = tl.zeros((BN,), dtype=tl.float32)
        for j in range(K):  # a loop, not unrolled: the backward compiles in seconds instead of ~20 s
            src, ls, ts, w = _source(LS, TS, WS, rows, j, cl, ct, ml, mt, rm, nl, nt, K)
            u = lt - ls
            _, _, _, P, dP = _smlp(tl.sum(u * u, 1) / nl, pw1, pb1, pw2, pb2, ACT)
            _, _, _, Q, dQ = _smlp(tl.sum(tt * ts, 1) / nt, qw1, qb1, qw2, qb2, ACT)
            U += w * P * Q
            gl += (w * dP * Q * 2.0 / nl)[:, None] * u
            gt += (w * P * dQ / nt)[:, None] * ts
        tl.store(GL + rows[:, None] * nl + cl[None, :], gl, mask=ml)
        tl.store(GT + rows[:, None] * nt + ct[None, :], gt, mask=mt)
        tl.store(Uo + rows, U, mask=rm)

    @triton.jit
    def _pair_bwd_kernel(LT, LS, TT, TS, WS, PRM, GL, GT, Ub, LTb, LSb, TTb, TSb, WSb, PART, N, nl, nt, H,
                         K: tl.constexpr, ACT: tl.constexpr, BN: tl.constexpr, BL: tl.constexpr,
                         BT: tl.constexpr, BH: tl.constexpr):
        rows, rm, cl, ct, hs, ml, mt = _rows(N, nl, nt, BN, BL, BT, BH)
        pw1, pb1, pw2, pb2 = _prm(PRM, 0, hs, H)
        qw1, qb1, qw2, qb2 = _prm(PRM, 1, hs, H)
        lt, tt = _target(LT, TT, rows, cl, ct, ml, mt, nl, nt)
        gl, gt = _target(GL, GT, rows, cl, ct, ml, mt, nl, nt)
        ub_t = tl.load(Ub + rows, mask=rm, other=0.0).to(tl.float32)
        lt_b = tl.zeros((BN, BL), dtype=tl.float32)
        tt_b = tl.zeros((BN, BT), dtype=tl.float32)
        # parameter gradients of Φ (p*) and Θ (q*), summed over this block's pairs
        pgw1 = tl.zeros((BH,), dtype=tl.float32)
        pgb1 = tl.zeros((BH,), dtype=tl.float32)
        pgw2 = tl.zeros((BH,), dtype=tl.float32)
        qgw1 = tl.zeros((BH,), dtype=tl.float32)
        qgb1 = tl.zeros((BH,), dtype=tl.float32)
        qgw2 = tl.zeros((BH,), dtype=tl.float32)
        pgb2 = tl.zeros((BN,), dtype=tl.float32)
        qgb2 = tl.zeros((BN,), dtype=tl.float32)
        for j in range(K):  # a loop, not unrolled: the backward compiles in seconds instead of ~20 s
            src, ls, ts, w = _source(LS, TS, WS, rows, j, cl, ct, ml, mt, rm, nl, nt, K)
            u = lt - ls
            r = tl.sum(u * u, 1) / nl
            c = tl.sum(tt * ts, 1) / nt
            sP, dsP, ddsP, P, dP = _smlp(r, pw1, pb1, pw2, pb2, ACT)
            sQ, dsQ, ddsQ, Q, dQ = _smlp(c, qw1, qb1, qw2, qb2, ACT)
            Ab = tl.sum(gl * u, 1) * 2.0 / nl
            Bb = tl.sum(gt * ts, 1) / nt
            # Φ's adjoint for (ȳ, ȳ') = (Ū ω Q + B̄ ω Q', Ā ω Q), Θ's for (Ū ω P + Ā ω P', B̄ ω P)
            yb = ub_t * w * Q + Bb * w * dQ
            rb, g1, g2, g3 = _smlp_adjoint(r, pw1, pw2, sP, dsP, ddsP, yb, Ab * w * Q)
            pgw1, pgb1, pgw2, pgb2 = pgw1 + g1, pgb1 + g2, pgw2 + g3, pgb2 + yb
            yb = ub_t * w * P + Ab * w * dP
            cb, g1, g2, g3 = _smlp_adjoint(c, qw1, qw2, sQ, dsQ, ddsQ, yb, Bb * w * P)
            qgw1, qgb1, qgw2, qgb2 = qgw1 + g1, qgb1 + g2, qgw2 + g3, qgb2 + yb
            tl.store(WSb + src, ub_t * P * Q + Ab * dP * Q + Bb * P * dQ, mask=rm)
            u_b = ((w * dP * Q)[:, None] * gl + rb[:, None] * u) * 2.0 / nl
            lt_b += u_b
            tl.store(LSb + src[:, None] * nl + cl[None, :], (-u_b).to(LSb.dtype.element_ty), mask=ml)
            tt_b += (cb / nt)[:, None] * ts
            ts_b = ((w * P * dQ)[:, None] * gt + cb[:, None] * tt) / nt
            tl.store(TSb + src[:, None] * nt + ct[None, :], ts_b.to(TSb.dtype.element_ty), mask=mt)
        tl.store(LTb + rows[:, None] * nl + cl[None, :], lt_b.to(LTb.dtype.element_ty), mask=ml)
        tl.store(TTb + rows[:, None] * nt + ct[None, :], tt_b.to(TTb.dtype.element_ty), mask=mt)
        part = PART + tl.program_id(0).to(tl.int64) * 8 * BH  # (2, 4, BH) per program, b₂ in column 0
        tl.store(part + hs, pgw1)
        tl.store(part + BH + hs, pgb1)
        tl.store(part + 2 * BH + hs, pgw2)
        tl.store(part + 3 * BH + hs, tl.where(hs == 0, tl.sum(pgb2, 0), 0.0))
        tl.store(part + 4 * BH + hs, qgw1)
        tl.store(part + 5 * BH + hs, qgb1)
        tl.store(part + 6 * BH + hs, qgw2)
        tl.store(part + 7 * BH + hs, tl.where(hs == 0, tl.sum(qgb2, 0), 0.0))


# Tokens per program and warps: BN × BH fp32 tiles of σ, σ', σ'' for Φ and Θ stay in registers. On an H100
# at the published size: forward 0.039 ms, backward 0.126 ms per call (at (16, 4): 0.046, 0.224), from
# benchmarks/pair_force_tiles.py (benchmarks/results/fused-kernels/pair-force-tiles.json).
TILE = {"fwd": (8, 4), "bwd": (4, 2)}


class PairForce(torch.autograd.Function):
    @staticmethod
    def forward(ctx, lt, ls, tt, ts, ws, prm, act: str):
        """l_t (N, n_l), l_j (N, k, n_l), θ_t (N, n_θ), θ_j (N, k, n_θ), ω (N, k), packed Φ/Θ (2, 4, H)
        → (∂U/∂l_t, ∂U/∂θ_t, U), float32 or wider."""
        N, K, nl = ls.shape
        nt = ts.shape[-1]
        lt, ls, tt, ts, ws, prm = (x.contiguous() for x in (lt, ls, tt, ts, ws, prm))
        if on_triton(lt):
            gl = torch.empty(N, nl, device=lt.device, dtype=torch.float32)
            gt = torch.empty(N, nt, device=lt.device, dtype=torch.float32)
            U = torch.empty(N, device=lt.device, dtype=torch.float32)
            H = prm.shape[-1]
            BN, warps = TILE["fwd"]
            _pair_fwd_kernel[(triton.cdiv(N, BN),)](
                lt, ls, tt, ts, ws, prm.float(), gl, gt, U, N, nl, nt, H, K=K, ACT=ACTS[act], BN=BN,
                BL=triton.next_power_of_2(nl), BT=triton.next_power_of_2(nt), BH=triton.next_power_of_2(H),
                num_warps=warps)
        else:
            gl, gt, U = _forward_torch(lt, ls, tt, ts, ws, prm, act)
        ctx.save_for_backward(lt, ls, tt, ts, ws, prm)
        ctx.act = act
        return gl, gt, U

    @staticmethod
    def backward(ctx, gl, gt, Ub):
        lt, ls, tt, ts, ws, prm = ctx.saved_tensors
        N, K, nl = ls.shape
        nt, H = ts.shape[-1], prm.shape[-1]
        gl, gt, Ub = (x.contiguous() for x in (gl, gt, Ub))
        if on_triton(lt):
            BH = triton.next_power_of_2(H)
            BN, warps = TILE["bwd"]
            grid = triton.cdiv(N, BN)
            lt_b, ls_b, tt_b, ts_b = (torch.empty_like(x) for x in (lt, ls, tt, ts))
            ws_b = torch.empty(N, K, device=lt.device, dtype=torch.float32)
            part = torch.empty(grid, 2, 4, BH, device=lt.device, dtype=torch.float32)
            _pair_bwd_kernel[(grid,)](
                lt, ls, tt, ts, ws, prm.float(), gl, gt, Ub, lt_b, ls_b, tt_b, ts_b, ws_b, part, N, nl, nt, H,
                K=K, ACT=ACTS[ctx.act], BN=BN, BL=triton.next_power_of_2(nl), BT=triton.next_power_of_2(nt),
                BH=BH, num_warps=warps)
            prm_b = part.sum(0)[..., :H].to(prm.dtype)
            ws_b = ws_b.to(ws.dtype)
        else:
            lt_b, ls_b, tt_b, ts_b, ws_b, prm_b = _backward_torch(lt, ls, tt, ts, ws, prm, ctx.act, gl, gt, Ub)
            lt_b, ls_b, tt_b, ts_b, ws_b = (g.to(x.dtype) for g, x in zip((lt_b, ls_b, tt_b, ts_b, ws_b),
                                                                           (lt, ls, tt, ts, ws)))
        return lt_b, ls_b, tt_b, ts_b, ws_b, prm_b, None


def pair_force(lt, ls, tt, ts, ws, phi, theta):
    """(∂U/∂l_t, ∂U/∂θ_t, U) of the structural pair potential; Φ and Θ share one activation."""
    return PairForce.apply(lt, ls, tt, ts, ws, pack_scalar_mlps(phi, theta), phi.act)
