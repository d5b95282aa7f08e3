"""Tied output head + cross-entropy in token chunks, never holding the full (N, vocab) logits.

For each chunk of C tokens: logits = h_c Eᵀ, then one pass per row computes logsumexp, the loss
lse − logit[target] and, when a gradient is wanted, overwrites the logits in place with
∂loss/∂logits = (softmax − onehot)/N; the chunk's ∂h = G E and ∂E += Gᵀ h_c are taken right away
and kept for the backward, which only scales them. At 16 × 512 tokens and a 50,257-way head the
unchunked path holds ~4 GB of logits and their gradients (bf16 and fp32 copies); this holds one
chunk's bf16 logits (C = 2,048: 206 MB). The row pass is a Triton kernel on CUDA and PyTorch ops
elsewhere.
"""

from __future__ import annotations

import torch

from semsim.kernels.dispatch import compute_dtype, on_triton

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - depends on the install
    triton = tl = None

CHUNK = 2048


def _rows_torch(logits: torch.Tensor, targets: torch.Tensor, n_cols: int, scale: float, grad: bool) -> torch.Tensor:
    """Per-row loss over the first ``n_cols`` columns; with ``grad``, those become scale·(softmax − onehot)
    in place (the rest, zero logits of padding rows, are left as they are)."""
    logits = logits[:, :n_cols]
    x = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
    lse = torch.logsumexp(x, -1)
    loss = lse - x.gather(1, targets.unsqueeze(1)).squeeze(1)
    if grad:
        g = torch.exp(x - lse.unsqueeze(1))
        g.scatter_add_(1, targets.unsqueeze(1), -torch.ones_like(lse).unsqueeze(1))
        logits.copy_(g * scale)
    return loss


if triton is not None:

    @triton.jit
    def _ce_rows_kernel(X, T, Loss, n_cols, stride, scale, GRAD: tl.constexpr, BLOCK: tl.constexpr):
        row = tl.program_id(0).to(tl.int64)
        base = X + row * stride
        cols = tl.arange(0, BLOCK)
        m = tl.full((BLOCK,), -float("inf"), tl.float32)
        acc = tl.zeros((BLOCK,), tl.float32)
        for start in range(0, n_cols, BLOCK):  # online logsumexp, one lane per column residue
            x = tl.load(base + start + cols, mask=start + cols < n_cols, other=-float("inf")).to(tl.float32)
            m_new = tl.maximum(m, x)
            empty = m_new == -float("inf")  # a lane that has seen only padding so far
            safe = tl.where(empty, 0.0, m_new)  # no −inf − (−inf)
            acc = tl.where(empty, 0.0, acc * tl.exp(m - safe) + tl.exp(x - safe))
            m = m_new
        mx = tl.max(m, 0)
        lse = mx + tl.log(tl.sum(acc * tl.exp(m - mx), 0))
        t = tl.load(T + row)
        tl.store(Loss + row, lse - tl.load(base + t).to(tl.float32))
        if GRAD:
            for start in range(0, n_cols, BLOCK):
                c = start + cols
                x = tl.load(base + c, mask=c < n_cols, other=0.0).to(tl.float32)
                g = (tl.exp(x - lse) - tl.where(c == t, 1.0, 0.0)) * scale
                tl.store(base + c, g.to(X.dtype.element_ty), mask=c < n_cols)


# The row pass's column block and warps for wide rows: on an H100, 0.27 ms per 2,048-token chunk against
# 0.48 ms at (4096, 4) (benchmarks/ce_rows_tiles.py; benchmarks/results/fused-kernels/ce-rows-tiles.json).
ROW_TILE = (2048, 16)


def _rows(logits, targets, n_cols: int, scale: float, grad: bool) -> torch.Tensor:
    if not on_triton(logits):
        return _rows_torch(logits, targets, n_cols, scale, grad)
    loss = torch.empty(logits.shape[0], device=logits.device, dtype=torch.float32)
    block, warps = ROW_TILE if n_cols >= ROW_TILE[0] else (1024, 4)
    _ce_rows_kernel[(logits.shape[0],)](logits, targets, loss, n_cols, logits.stride(0), scale,
                                        GRAD=grad, BLOCK=block, num_warps=warps)
    return loss


class LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, W, targets, chunk: int, grad: bool):
        """``grad``: also form ∂loss/∂h and ∂loss/∂W (skipped under no_grad, e.g. in validation)."""
        cd = compute_dtype(h)
        N = h.shape[0]
        V = W.shape[0]
        # rows padded to a multiple of 64: a 50,257-wide output has unaligned rows, and cuBLAS then
        # falls back to slow kernels; the zero rows give logits of 0 that the row pass never reads
        Wc = torch.zeros(-(-V // 64) * 64, W.shape[1], device=W.device, dtype=cd)
        Wc[:V] = W
        loss = torch.empty(N, device=h.device, dtype=torch.promote_types(cd, torch.float32))
        dh = torch.empty(N, h.shape[1], device=h.device, dtype=h.dtype) if grad else None
        dW = torch.zeros(Wc.shape, device=W.device, dtype=torch.promote_types(cd, torch.float32)) if grad else None
        with torch.autocast(h.device.type, enabled=False):
            for i in range(0, N, chunk):
                hc = h[i: i + chunk].to(cd)
                logits = hc @ Wc.t()
                loss[i: i + chunk] = _rows(logits, targets[i: i + chunk], V, 1.0 / N, grad)
                if grad:  # logits now hold ∂loss/∂logits
                    dh[i: i + chunk] = logits @ Wc
                    dW += (logits.t() @ hc).to(dW.dtype)
        ctx.save_for_backward(dh, None if dW is None else dW[:V])
        ctx.W_dtype = W.dtype
        return loss.mean()

    @staticmethod
    def backward(ctx, g):
        dh, dW = ctx.saved_tensors
        return dh * g.to(dh.dtype), (dW * g).to(ctx.W_dtype), None, None, None


def linear_cross_entropy(h: torch.Tensor, W: torch.Tensor, targets: torch.Tensor, chunk: int = CHUNK) -> torch.Tensor:
    """Mean cross-entropy of logits h Wᵀ against ``targets``: h (…, d), W (vocab, d), targets (…)."""
    # decided here: inside Function.forward grad mode is always off, but a leaf W still requires grad
    grad = torch.is_grad_enabled() and (h.requires_grad or W.requires_grad)
    return LinearCrossEntropy.apply(h.reshape(-1, h.shape[-1]), W, targets.reshape(-1), chunk, grad)
