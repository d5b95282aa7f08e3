"""The MLP potential's force f = −∇_h V_θ(ξ, h) as one autograd.Function with its backward written out.

Forward (rows are tokens; W_ℓ are nn.Linear weights, (out, in)):

    z_1 = ξ W_ξᵀ + h W_hᵀ + b_1,  a_ℓ = σ(z_ℓ),  z_ℓ = a_{ℓ−1} W_ℓᵀ + b_ℓ,  V = a_L · w_o + b_o
    g_L = w_o ⊙ σ'(z_L),  r_ℓ = g_{ℓ+1} W_{ℓ+1},  g_ℓ = r_ℓ ⊙ σ'(z_ℓ),  f = −g_1 W_h

Backward, given f̄ and V̄: first the adjoint of the gradient pass, upwards from ḡ_1 = −f̄ W_hᵀ
(r̄_ℓ = ḡ_ℓ ⊙ σ'(z_ℓ), z̄_ℓ ∋ ḡ_ℓ ⊙ r_ℓ ⊙ σ''(z_ℓ), ḡ_{ℓ+1} = r̄_ℓ W_{ℓ+1}ᵀ, W̄_{ℓ+1} ∋ g_{ℓ+1}ᵀ r̄_ℓ),
then the ordinary backprop of the forward pass downwards from ā_L = V̄ w_oᵀ. Autograd over the
closed form would keep every intermediate of σ, σ' and σ'' for its own backward; this keeps
z_ℓ, a_ℓ, r_ℓ, g_ℓ and runs each pointwise combination as one kernel (:mod:`.pointwise`).
Matmuls run in the autocast dtype when autocast is on, as nn.Linear would.
"""

from __future__ import annotations

import torch

from semsim.kernels.dispatch import compute_dtype
from semsim.kernels.pointwise import OP_ACT, OP_DACT, OP_DOWN, OP_UP, pointwise


class MLPForce(torch.autograd.Function):
    @staticmethod
    def forward(ctx, act: str, xi, h, Wx, bx, Wh, *layers):
        """``layers``: W_2, b_2, …, W_L, b_L, w_o (H,), b_o (); returns (f, V) in the compute dtype."""
        cd = compute_dtype(xi)
        shape = h.shape[:-1]
        X, Hh = xi.reshape(-1, xi.shape[-1]).to(cd), h.reshape(-1, h.shape[-1]).to(cd)
        Wx_, Wh_ = Wx.to(cd), Wh.to(cd)
        hidden = [(W.to(cd), b.to(cd)) for W, b in zip(layers[:-2:2], layers[1:-2:2])]
        wo, bo = layers[-2].to(cd).reshape(-1), layers[-1].to(cd)
        with torch.autocast(xi.device.type, enabled=False):
            z = torch.addmm(bx.to(cd), X, Wx_.t()).addmm_(Hh, Wh_.t())
            zs, acts = [z], []
            for W, b in hidden:
                acts.append(pointwise(OP_ACT, zs[-1], act)[0])
                zs.append(torch.addmm(b, acts[-1], W.t()))
            acts.append(pointwise(OP_ACT, zs[-1], act)[0])
            V = torch.addmv(bo, acts[-1], wo)
            gs = [pointwise(OP_DACT, zs[-1], act, y=wo)[0]]  # g_L
            rs = []
            for (W, _), z_prev in zip(reversed(hidden), reversed(zs[:-1])):
                rs.insert(0, gs[0] @ W)  # r_ℓ = g_{ℓ+1} W_{ℓ+1}
                gs.insert(0, pointwise(OP_DACT, z_prev, act, y=rs[0])[0])
            f = -(gs[0] @ Wh_)
        ctx.act, ctx.n_hidden, ctx.dtypes = act, len(hidden), (xi.dtype, h.dtype, Wx.dtype)
        ctx.save_for_backward(X, Hh, Wx_, Wh_, wo, *[W for W, _ in hidden], *zs, *acts, *rs, *gs)
        return f.view(*shape, -1), V.view(shape)

    @staticmethod
    def backward(ctx, f_bar, V_bar):
        act, L = ctx.act, ctx.n_hidden + 1
        X, Hh, Wx, Wh, wo, *rest = ctx.saved_tensors
        Ws, rest = rest[: L - 1], rest[L - 1:]  # W_2 … W_L
        zs, acts, rs, gs = rest[:L], rest[L: 2 * L], rest[2 * L: 3 * L - 1], rest[3 * L - 1:]
        cd, pd = X.dtype, ctx.dtypes[2]
        acc = torch.promote_types(cd, torch.float32)  # sums over tokens accumulate in ≥ fp32
        shape = f_bar.shape
        gh_bar = -f_bar.reshape(-1, f_bar.shape[-1]).to(cd)  # adjoint of ∇_h V = −f
        V_bar = V_bar.reshape(-1).to(cd)
        with torch.autocast(X.device.type, enabled=False):
            dWh = gs[0].t() @ gh_bar
            g_bar = gh_bar @ Wh.t()
            dWs, zg = [None] * (L - 1), []
            for l in range(L):  # adjoint of the gradient pass, upwards
                r = rs[l] if l < L - 1 else wo
                r_bar, z_g = pointwise(OP_UP, zs[l], act, x=g_bar, y=r)
                zg.append(z_g)
                if l < L - 1:
                    dWs[l] = gs[l + 1].t() @ r_bar
                    g_bar = r_bar @ Ws[l].t()
                else:
                    dwo = r_bar.sum(0, dtype=acc)
            dwo = dwo + acts[-1].t().to(acc) @ V_bar.to(acc)
            dbo = V_bar.sum(dtype=acc)
            a_bar = V_bar.unsqueeze(1) * wo.unsqueeze(0)
            dbs = [None] * (L - 1)
            for l in reversed(range(L)):  # adjoint of the forward pass, downwards
                z_bar = pointwise(OP_DOWN, zs[l], act, x=a_bar, y=zg[l])[0]
                if l > 0:
                    dWs[l - 1] = dWs[l - 1].addmm_(z_bar.t(), acts[l - 1])
                    dbs[l - 1] = z_bar.sum(0, dtype=acc)
                    a_bar = z_bar @ Ws[l - 1]
            dWx = z_bar.t() @ X
            dWh = dWh.addmm_(z_bar.t(), Hh)
            dbx = z_bar.sum(0, dtype=acc)
            xi_bar = (z_bar @ Wx).to(ctx.dtypes[0]) if ctx.needs_input_grad[1] else None
            h_bar = (z_bar @ Wh).to(ctx.dtypes[1]) if ctx.needs_input_grad[2] else None
        layer_grads = []
        for dW, db in zip(dWs, dbs):
            layer_grads += [dW.to(pd), db.to(pd)]
        n = shape[:-1]
        return (None, None if xi_bar is None else xi_bar.view(*n, -1), None if h_bar is None else h_bar.view(shape),
                dWx.to(pd), dbx.to(pd), dWh.to(pd), *layer_grads, dwo.to(pd).view(1, -1), dbo.to(pd).view(1))


def mlp_force(potential, xi: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(f, V) of an :class:`~semsim.potentials.mlp.MLPPotential` through :class:`MLPForce`."""
    p = potential
    layers = [t for lin in p.hidden for t in (lin.weight, lin.bias)] + [p.out.weight, p.out.bias]
    return MLPForce.apply(p.act, xi, h, p.in_xi.weight, p.in_xi.bias, p.in_h.weight, *layers)
