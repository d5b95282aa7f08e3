"""Tied output head + cross-entropy in token chunks, never holding the full (N, vocab) logits.

For each chunk of C tokens the loss needs lse − logit[target] per row and the gradient needs
G = ∂loss/∂logits = (softmax − onehot)/N; the chunk's ∂h = G E and ∂E += Gᵀ h_c are taken right
away and kept for the backward, which only scales them.

Two ways to get there:

- **Tiles** (bf16/fp16 on CUDA, the training default): a Triton matmul makes each (rows × vocab)
  logit tile in registers and reduces it to running row maxima and Σexp; a second launch remakes
  the tile and writes G directly. The logits never reach memory: the matmul is done twice instead
  of writing the logits and reading them back in a row pass. On an H100, loss + ∂h + ∂E at
  16 × 512 tokens took 2.01 ms against 2.75 for cuBLAS logits + the row pass, and 1.84 ms once h and
  E came through tensor descriptors (benchmarks/results/fused-kernels/fused-head.json). The two
  launches form one custom operator, which torch.compile calls as it is.
- **Rows** (fp32, float64, CPU): logits = h_c Eᵀ by cuBLAS, then one pass per row computes the
  logsumexp and overwrites the logits with G in place (a Triton kernel on CUDA, PyTorch ops elsewhere).

At 16 × 512 tokens and a 50,257-way head the unchunked path holds ~4 GB of logits and their
gradients (bf16 and fp32 copies); this holds one chunk's G.
"""

from __future__ import annotations

import math

import torch

from semsim.kernels.dispatch import compute_dtype, on_triton

try:
    import triton
    import triton.language as tl
    from triton.tools.tensor_descriptor import TensorDescriptor
except ImportError:  # pragma: no cover - depends on the install
    triton = tl = TensorDescriptor = None

# Tokens per chunk. The tile path holds one chunk's G (bf16: 826 MB at 8,192 × 50,432); on an H100 the
# head at 16 × 512 tokens took 2.18 ms at 8,192, 2.32 at 4,096, 3.71 at 2,048 (fused_head.py). The row
# pass holds the chunk's logits in the matmul dtype, fp32 included, so it keeps to 2,048.
CHUNK = 8192
ROW_CHUNK = 2048


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


if triton is not None:

    LOG2E = tl.constexpr(1.4426950408889634)  # a global a kernel may read

    @triton.jit
    def _panel(H, n_rows, d, stride_h, BM: tl.constexpr, D: tl.constexpr, TMA: tl.constexpr):
        """This program's rows and their h panel (BM, D), held for every vocab tile. TMA: H is a tensor
        descriptor (the copy engine zero-fills rows past n and features past d)."""
        row0 = tl.program_id(0) * BM
        rows = row0 + tl.arange(0, BM)
        ok = rows < n_rows
        if TMA:
            a = H.load([row0, 0])
        else:
            ks = tl.arange(0, D)
            a = tl.load(H + rows[:, None] * stride_h + ks[None, :], mask=ok[:, None] & (ks[None, :] < d), other=0.0)
        return rows, ok, a

    @triton.jit
    def _logit_tile(a, W, j, d, stride_w, BN: tl.constexpr, D: tl.constexpr, EVEN_D: tl.constexpr,
                    TMA: tl.constexpr, PREC: tl.constexpr):
        """Vocab tile j: its columns and the (BM, BN) fp32 logits a · W[cols]ᵀ. W's rows are padded to a
        multiple of BN, so no column is masked; with EVEN_D (d = D) neither is any feature."""
        cols = j * BN + tl.arange(0, BN)
        if TMA:
            b = W.load([j * BN, 0]).T
        else:
            ks = tl.arange(0, D)
            ptr = W + cols[None, :] * stride_w + ks[:, None]
            if EVEN_D:
                b = tl.load(ptr)
            else:
                b = tl.load(ptr, mask=ks[:, None] < d, other=0.0)
        return cols, tl.dot(a, b, input_precision=PREC)

    @triton.jit
    def _stats_update(m, s, a, W, j, V, d, stride_w, BN: tl.constexpr, D: tl.constexpr, EVEN_D: tl.constexpr,
                      TMA: tl.constexpr, PREC: tl.constexpr, PADDED: tl.constexpr):
        """Running max m of the logits and Σ 2^(log₂e·(logit − m)) after vocab tile j; PADDED: the tile
        holds W's zero padding rows, whose logits are dropped."""
        cols, x = _logit_tile(a, W, j, d, stride_w, BN, D, EVEN_D, TMA, PREC)
        if PADDED:
            x = tl.where(cols[None, :] < V, x, -float("inf"))
        m_new = tl.maximum(m, tl.max(x, 1))
        safe = tl.where(m_new == -float("inf"), 0.0, m_new) * LOG2E  # a split that has seen only padding
        s = s * tl.exp2(m * LOG2E - safe) + tl.sum(tl.exp2(x * LOG2E - safe[:, None]), 1)
        return m_new, s

    @triton.jit
    def _head_stats_kernel(Hc, W, Mx, Se, n_rows, V, d, n_w, stride_h, stride_w, per_split, n_split,
                           BM: tl.constexpr, BN: tl.constexpr, D: tl.constexpr, EVEN_D: tl.constexpr,
                           TMA: tl.constexpr, PREC: tl.constexpr):
        """Per (row, split of the vocab), in base 2: the running max of log₂e·logit and Σ 2^(log₂e·logit − max).
        The epilogue is most of the work at d = 256 (a few instructions per logit against 512 FLOPs of
        matmul), so it is kept to the max, a multiply-add, an exp2 and the sum; only the tiles past V
        compare columns, in a loop of their own."""
        rows, ok, a = _panel(Hc, n_rows, d, stride_h, BM, D, TMA)
        split = tl.program_id(1)
        lo = split * per_split
        hi = tl.minimum(lo + per_split, n_w // BN)  # the last split may be short
        full = tl.minimum(tl.maximum(V // BN, lo), hi)  # tiles [lo, full) lie inside the vocabulary
        m = tl.full((BM,), -float("inf"), tl.float32)
        s = tl.zeros((BM,), tl.float32)
        for j in range(lo, full):
            m, s = _stats_update(m, s, a, W, j, V, d, stride_w, BN, D, EVEN_D, TMA, PREC, False)
        for j in range(full, hi):
            m, s = _stats_update(m, s, a, W, j, V, d, stride_w, BN, D, EVEN_D, TMA, PREC, True)
        at = rows.to(tl.int64) * n_split + split
        tl.store(Mx + at, m * LOG2E, mask=ok)
        tl.store(Se + at, s, mask=ok)

    @triton.jit
    def _head_grad_kernel(Hc, W, C, G, n_rows, d, n_w, stride_h, stride_w, stride_g, per_split,
                          BM: tl.constexpr, BN: tl.constexpr, D: tl.constexpr, EVEN_D: tl.constexpr,
                          EVEN_M: tl.constexpr, TMA: tl.constexpr, PREC: tl.constexpr):
        """G[rows, cols] = 2^(log₂e·logit − c) = scale · softmax, with c = log₂e·(lse − ln scale) per row.
        The −scale at each target is added afterwards; the padding columns get finite values that
        meet only W's zero rows (∂h) and the ∂E rows that are dropped. EVEN_M: no partial row block."""
        rows, ok, a = _panel(Hc, n_rows, d, stride_h, BM, D, TMA)
        c = tl.load(C + rows, mask=ok, other=0.0)
        base = G + rows.to(tl.int64)[:, None] * stride_g
        split = tl.program_id(1)
        for j in range(split * per_split, tl.minimum(split * per_split + per_split, n_w // BN)):
            cols, x = _logit_tile(a, W, j, d, stride_w, BN, D, EVEN_D, TMA, PREC)
            g = tl.exp2(x * LOG2E - c[:, None]).to(G.dtype.element_ty)
            if EVEN_M:
                tl.store(base + cols[None, :], g)
            else:
                tl.store(base + cols[None, :], g, mask=ok[:, None])


# (rows, vocab columns, warps, pipeline stages, vocab splits) per launch. A program holds its rows' h
# panel and walks its split of the vocab tiles, so only W streams through; the columns divide PAD, the
# multiple W's rows are padded to. Chosen on an H100 (benchmarks/fused_head.py).
HEAD_TILE = {"stats": (128, 64, 8, 3, 4), "grad": (128, 64, 8, 3, 4)}
PAD = 256
MAX_D = 256  # the held panel is BM × d: wider states take the row pass


def _use_tiles(h: torch.Tensor, cd: torch.dtype) -> bool:
    """The tile path: tensor-core dtypes on CUDA; any float dtype under the CPU interpreter (tests)."""
    return on_triton(h) and h.shape[-1] <= MAX_D and (not h.is_cuda or cd in (torch.bfloat16, torch.float16))


def _launch_plan(tile: tuple, n: int, n_w: int) -> tuple[tuple[int, int], int, dict]:
    """(grid, vocab tiles per program, launch keywords) of one tile kernel over n rows and n_w vocab rows."""
    bm, bn, warps, stages, splits = tile
    assert n_w % bn == 0, "W's rows are padded to whole column tiles"
    n_tiles = n_w // bn
    per = triton.cdiv(n_tiles, splits)
    return (triton.cdiv(n, bm), triton.cdiv(n_tiles, per)), per, {"BM": bm, "BN": bn, "num_warps": warps,
                                                                  "num_stages": stages}


def _tma(*ts: torch.Tensor) -> bool:
    """Tensor-descriptor loads (Hopper's copy engine; Triton's interpreter on the CPU) for these row-major
    operands: rows and base addresses 16-byte aligned. On an H100 the head took 1.84 ms with them and
    1.95 ms with pointer loads (benchmarks/results/fused-kernels/fused-head.json)."""
    if TensorDescriptor is None or (ts[0].is_cuda and torch.cuda.get_device_capability(ts[0].device)[0] < 9):
        return False
    return all(t.stride(1) == 1 and (t.stride(0) * t.element_size()) % 16 == 0 and t.data_ptr() % 16 == 0
               for t in ts)


def _operands(hc, Wc, meta: dict, D: int, tma: bool):
    """The h and W arguments of a tile kernel: tensor descriptors of (BM, D) and (BN, D) blocks, or the
    tensors themselves."""
    if not tma:
        return hc, Wc
    return TensorDescriptor.from_tensor(hc, [meta["BM"], D]), TensorDescriptor.from_tensor(Wc, [meta["BN"], D])


# An operator of its own, opaque to torch.compile: Inductor's reinplacing pass rejects a user Triton kernel
# that takes tensor descriptors (torch 2.11), and the descriptors are then built at run time as in eager.
# Named after the module: a benchmark that loads an earlier copy beside it must not replace this one.
@torch.library.custom_op(f"semsim::{__name__.replace('.', '_')}_tiles", mutates_args=("G",))
def _tiles_loss(hc: torch.Tensor, Wc: torch.Tensor, targets: torch.Tensor, V: int, G: torch.Tensor | None,
                scale: float) -> torch.Tensor:
    """Per-row loss of one chunk by the tile kernels; with ``G`` (chunk, PAD-padded vocab), also G."""
    (n, d), n_w = hc.shape, Wc.shape[0]
    D = max(16, triton.next_power_of_2(d))
    tma = _tma(hc, Wc)
    common = {"D": D, "EVEN_D": d == D, "TMA": tma,
              "PREC": "ieee" if hc.dtype == torch.float32 else "tf32"}  # fp32 only in the interpreter
    grid, per, meta = _launch_plan(HEAD_TILE["stats"], n, n_w)
    mx = torch.empty(n, grid[1], device=hc.device, dtype=torch.float32)
    se = torch.empty_like(mx)
    H, W = _operands(hc, Wc, meta, D, tma)
    _head_stats_kernel[grid](H, W, mx, se, n, V, d, n_w, hc.stride(0), Wc.stride(0), per, grid[1], **common, **meta)
    m = mx.max(1, keepdim=True).values
    lse = (m.squeeze(1) + torch.log2((se * torch.exp2(mx - m)).sum(1))) * math.log(2)
    # the target's logit by one row-wise dot: cheaper than a compare per logit in the kernel
    x_t = (hc.float() * Wc[targets].float()).sum(1)
    if G is not None:
        grid, per, meta = _launch_plan(HEAD_TILE["grad"], n, n_w)
        c = (lse - math.log(scale)) / math.log(2)
        H, W = _operands(hc, Wc, meta, D, tma)
        _head_grad_kernel[grid](H, W, c, G, n, d, n_w, hc.stride(0), Wc.stride(0), G.stride(0), per,
                                EVEN_M=n % meta["BM"] == 0, **common, **meta)
        G[torch.arange(n, device=G.device), targets] -= scale
    return lse - x_t


@_tiles_loss.register_fake
def _(hc, Wc, targets, V, G, scale):
    return hc.new_empty(hc.shape[0], dtype=torch.float32)


def _accumulate(dW: torch.Tensor, G: torch.Tensor, hc: torch.Tensor) -> None:
    """dW += Gᵀ h_c, accumulated in dW's dtype (fp32) by cuBLAS where it can: no bf16 product to add.
    Under torch.compile the plain form: Dynamo cannot trace addmm's out_dtype (torch 2.11)."""
    if (dW.is_cuda and dW.dtype == torch.float32 and G.dtype in (torch.bfloat16, torch.float16)
            and not torch.compiler.is_compiling()):
        torch.addmm(dW, G.t(), hc, out_dtype=torch.float32, out=dW)
    else:
        dW += (G.t() @ hc).to(dW.dtype)


class LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, W, targets, chunk: int | None, grad: bool):
        """``grad``: also form ∂loss/∂h and ∂loss/∂W (skipped under no_grad, e.g. in validation)."""
        cd = compute_dtype(h)
        N = h.shape[0]
        V = W.shape[0]
        tiles = _use_tiles(h, cd)
        chunk = chunk or (CHUNK if tiles else ROW_CHUNK)
        # rows padded: a 50,257-wide output has unaligned rows, and cuBLAS then falls back to slow
        # kernels; the tiles need whole column blocks. Zero rows give logits of 0 that no loss reads.
        Wc = torch.zeros(-(-V // PAD) * PAD, W.shape[1], device=W.device, dtype=cd)
        Wc[:V] = W
        loss = torch.empty(N, device=h.device, dtype=torch.promote_types(cd, torch.float32))
        dh = torch.empty(N, h.shape[1], device=h.device, dtype=h.dtype) if grad else None
        dW = torch.zeros(Wc.shape, device=W.device, dtype=torch.promote_types(cd, torch.float32)) if grad else None
        G = torch.empty(min(chunk, N), Wc.shape[0], device=h.device, dtype=cd) if grad and tiles else None
        with torch.autocast(h.device.type, enabled=False):
            for i in range(0, N, chunk):
                hc = h[i: i + chunk].to(cd)
                if tiles:
                    g = None if G is None else G[: hc.shape[0]]
                    loss[i: i + chunk] = _tiles_loss(hc, Wc, targets[i: i + chunk], V, g, 1.0 / N)
                else:
                    g = hc @ Wc.t()
                    loss[i: i + chunk] = _rows(g, targets[i: i + chunk], V, 1.0 / N, grad)
                if grad:  # g holds ∂loss/∂logits
                    dh[i: i + chunk] = g @ Wc
                    _accumulate(dW, g, hc)
        ctx.save_for_backward(dh, None if dW is None else dW[:V])
        ctx.W_dtype = W.dtype
        return loss.mean()

    @staticmethod
    def backward(ctx, g):
        dh, dW = ctx.saved_tensors
        return dh * g.to(dh.dtype), (dW * g).to(ctx.W_dtype), None, None, None


def linear_cross_entropy(h: torch.Tensor, W: torch.Tensor, targets: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
    """Mean cross-entropy of logits h Wᵀ against ``targets``: h (…, d), W (vocab, d), targets (…).
    ``chunk``: tokens per chunk (default: :data:`CHUNK` on the tile path, :data:`ROW_CHUNK` otherwise)."""
    # decided here: inside Function.forward grad mode is always off, but a leaf W still requires grad
    grad = torch.is_grad_enabled() and (h.requires_grad or W.requires_grad)
    return LinearCrossEntropy.apply(h.reshape(-1, h.shape[-1]), W, targets.reshape(-1), chunk, grad)
