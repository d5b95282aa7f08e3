"""Fused pointwise epilogues of the MLP potential's force and its backward.

An MLP potential's force and the force's backward need σ(z), σ'(z) and σ''(z) of every hidden
pre-activation z, each combined with one or two other tensors. Unfused, every product is a kernel
launch and a tensor written to memory (and kept for autograd); here each combination is one pass:

    OP_ACT    out = σ(z)
    OP_DACT   out = y ⊙ σ'(z)                         (the force's backward pass, g = r ⊙ σ'(z))
    OP_UP     out = x ⊙ σ'(z),  out2 = x ⊙ y ⊙ σ''(z)  (adjoint of g = y ⊙ σ'(z), for ḡ = x)
    OP_DOWN   out = y + x ⊙ σ'(z)                     (adjoint of a = σ(z), plus what z already has)

``y`` may be one row broadcast over all rows (the output weight w_L). :func:`pointwise` runs the
Triton kernel on CUDA and the same formulas as PyTorch ops elsewhere (:func:`act_terms`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from semsim.kernels.dispatch import on_triton

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - depends on the install
    triton = tl = None

OP_ACT, OP_DACT, OP_UP, OP_DOWN = 0, 1, 2, 3
ACTS = {"gelu": 0, "silu": 1, "tanh": 2, "softplus": 3}
_INV_SQRT2 = 1 / math.sqrt(2)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)


def act_terms(z: torch.Tensor, kind: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """σ(z), σ'(z), σ''(z) (the reference, in PyTorch ops)."""
    if kind == "gelu":  # σ = zΦ, σ' = Φ + zφ, σ'' = φ(2 − z²)
        cdf = 0.5 * (1 + torch.erf(z * _INV_SQRT2))
        pdf = torch.exp(-0.5 * z * z) * _INV_SQRT_2PI
        return z * cdf, cdf + z * pdf, pdf * (2 - z * z)
    if kind == "silu":  # σ = zs, σ' = s(1 + z(1 − s)), σ'' = s(1 − s)(2 + z(1 − 2s))
        s = torch.sigmoid(z)
        return z * s, s * (1 + z * (1 - s)), s * (1 - s) * (2 + z * (1 - 2 * s))
    if kind == "tanh":
        t = torch.tanh(z)
        return t, 1 - t * t, -2 * t * (1 - t * t)
    if kind == "softplus":
        s = torch.sigmoid(z)
        return F.softplus(z), s, s * (1 - s)
    raise ValueError(f"unknown activation {kind!r} (gelu, silu, tanh, softplus)")


def _reference(op: int, z, x, y, kind: str):
    zf = z.float() if z.dtype in (torch.float16, torch.bfloat16) else z  # compute as the kernel does
    s, ds, dds = act_terms(zf, kind)
    xf = None if x is None else x.to(zf.dtype)
    yf = None if y is None else y.to(zf.dtype)
    if op == OP_ACT:
        return (s.to(z.dtype),)
    if op == OP_DACT:
        return ((yf * ds).to(z.dtype),)
    if op == OP_UP:
        return (xf * ds).to(z.dtype), (xf * yf * dds).to(z.dtype)
    return ((yf + xf * ds).to(z.dtype),)


if triton is not None:

    @triton.jit
    def _sigmoid(z):
        return 1.0 / (1.0 + tl.exp(-z))

    @triton.jit
    def _act_terms(z, ACT: tl.constexpr):
        if ACT == 0:
            cdf = 0.5 * (1.0 + tl.erf(z * 0.7071067811865476))
            pdf = tl.exp(-0.5 * z * z) * 0.3989422804014327
            return z * cdf, cdf + z * pdf, pdf * (2.0 - z * z)
        elif ACT == 1:
            s = _sigmoid(z)
            return z * s, s * (1.0 + z * (1.0 - s)), s * (1.0 - s) * (2.0 + z * (1.0 - 2.0 * s))
        elif ACT == 2:
            t = 2.0 * _sigmoid(2.0 * z) - 1.0  # tanh
            return t, 1.0 - t * t, -2.0 * t * (1.0 - t * t)
        else:
            s = _sigmoid(z)
            sp = tl.maximum(z, 0.0) + tl.log(1.0 + tl.exp(-tl.abs(z)))  # softplus, overflow-safe
            return sp, s, s * (1.0 - s)

    @triton.jit
    def _pointwise_kernel(z_ptr, x_ptr, y_ptr, out_ptr, out2_ptr, n, width,
                          ACT: tl.constexpr, OP: tl.constexpr, Y_ROW: tl.constexpr, BLOCK: tl.constexpr):
        offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n
        z = tl.load(z_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        s, ds, dds = _act_terms(z, ACT)
        if OP != 0:
            if Y_ROW:
                y = tl.load(y_ptr + offs % width, mask=mask, other=0.0).to(tl.float32)
            else:
                y = tl.load(y_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        if OP == 0:
            tl.store(out_ptr + offs, s.to(out_ptr.dtype.element_ty), mask=mask)
        elif OP == 1:
            tl.store(out_ptr + offs, (y * ds).to(out_ptr.dtype.element_ty), mask=mask)
        else:
            x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
            if OP == 2:
                tl.store(out_ptr + offs, (x * ds).to(out_ptr.dtype.element_ty), mask=mask)
                tl.store(out2_ptr + offs, (x * y * dds).to(out2_ptr.dtype.element_ty), mask=mask)
            else:
                tl.store(out_ptr + offs, (y + x * ds).to(out_ptr.dtype.element_ty), mask=mask)


def pointwise(op: int, z: torch.Tensor, kind: str, x: torch.Tensor | None = None,
              y: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
    """The ``op`` epilogue (see the module docstring) of contiguous z (N, H); outputs in z's dtype."""
    if not on_triton(z):
        return _reference(op, z, x, y, kind)
    z = z.contiguous()
    n, width = z.numel(), z.shape[-1]
    y_row = y is not None and y.dim() == 1
    out = torch.empty_like(z)
    out2 = torch.empty_like(z) if op == OP_UP else out
    xx = z if x is None else x.contiguous()
    yy = z if y is None else y.contiguous()
    block = 1024
    _pointwise_kernel[(triton.cdiv(n, block),)](z, xx, yy, out, out2, n, width, ACT=ACTS[kind], OP=op,
                                                Y_ROW=y_row, BLOCK=block)
    return (out, out2) if op == OP_UP else (out,)
