"""Time the fused tied head + cross-entropy (loss, ∂h, ∂E) at the published size, beside an earlier version.

    python benchmarks/fused_head.py --out fused_head.json [--before old_linear_ce.py]

N = 16 × 512 tokens, vocab 50,257, d = 256; h in fp32 and E an fp32 parameter, as the GPT's final
LayerNorm and embedding give them under bf16 autocast. Each direction's launches are replayed as a CUDA
graph (``side_by_side.function_times``; the forward does all the work, the backward only scales).
Rows: the earlier version at its own chunk; this one at several chunk sizes, and with pointer loads in
place of tensor descriptors; then a sweep of the two tile kernels' shapes (rows, columns, warps, stages,
vocab splits) at the chosen chunk, each checked against F.cross_entropy on the same bf16 operands. Also
the loss-only forward that validation runs.
"""

from __future__ import annotations

import argparse
import json

import torch
import torch.nn.functional as F
import triton.testing

from provenance import provenance  # sibling scripts
from side_by_side import function_times, load_version
from speed import H100_BF16_DENSE_TFLOPS
from semsim.kernels import linear_ce

# (rows, vocab columns, warps, pipeline stages, vocab splits)
TILES = [(128, 128, 8, 2, 4), (128, 128, 4, 2, 4), (128, 64, 4, 3, 4), (128, 64, 8, 3, 4), (128, 64, 8, 4, 4),
         (128, 64, 8, 2, 4), (64, 128, 4, 2, 4), (64, 128, 8, 2, 4), (64, 64, 4, 3, 4), (64, 64, 4, 4, 4)]


def _head(module, h, W, t, chunk):
    """(forward ms, backward ms, loss-only ms) of ``module``'s head under bf16 autocast."""
    with torch.autocast("cuda", dtype=torch.bfloat16):
        fwd, bwd = function_times(module.LinearCrossEntropy, (h, W, t, chunk, True), (torch.ones((), device="cuda"),))
        with torch.no_grad():
            loss_only = triton.testing.do_bench_cudagraph(lambda: module.linear_cross_entropy(h, W, t, chunk))
    return fwd, bwd, loss_only


def _errors(module, h, W, t, chunk, ref, g_ref) -> dict:
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = module.linear_cross_entropy(h, W, t, chunk)
        gh, gW = torch.autograd.grad(loss, [h, W])
    def rel(a, b):
        return ((a - b).norm() / b.norm()).item()

    return {"loss_abs_err": abs(loss.item() - ref.item()), "dh_rel_err": rel(gh, g_ref[0]), "dW_rel_err": rel(gW, g_ref[1])}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--before", help="path of an earlier linear_ce.py to time beside this one")
    a = p.parse_args()
    torch.manual_seed(0)
    N, V, d = 16 * 512, 50257, 256
    h = torch.randn(N, d, device="cuda", requires_grad=True)
    W = (torch.randn(V, d, device="cuda") * 0.02).requires_grad_(True)
    t = torch.randint(0, V, (N,), device="cuda")
    # the reference: the same bf16 operands, fp32 logits and loss
    logits = (h.to(torch.bfloat16) @ W.to(torch.bfloat16).t()).float()
    ref = F.cross_entropy(logits, t)
    g_ref = torch.autograd.grad(ref, [h, W])
    del logits
    flops = 3 * 2 * N * V * d  # the logits and the two gradient matmuls, as the MFU convention counts them
    rows = []

    def record(label, module, chunk, **extra):
        errors = _errors(module, h, W, t, chunk, ref, g_ref)  # first: compiles the kernels outside any graph
        fwd, bwd, loss_only = _head(module, h, W, t, chunk)
        row = {"label": label, "chunk": chunk, **extra, "fwd_ms": fwd, "bwd_ms": bwd, "total_ms": fwd + bwd,
               "loss_only_ms": loss_only, "model_tflops": flops / ((fwd + bwd) * 1e-3) / 1e12, **errors}
        rows.append(row)
        print(f"{label:34s} fwd {fwd:.3f}  bwd {bwd:.3f}  loss only {loss_only:.3f} ms  "
              f"dh err {row['dh_rel_err']:.1e}  dW err {row['dW_rel_err']:.1e}", flush=True)
        return row

    Vp = -(-V // linear_ce.PAD) * linear_ce.PAD  # the head's padded rows
    hb, Wb = h.detach().to(torch.bfloat16), torch.zeros(Vp, d, device="cuda", dtype=torch.bfloat16)
    Wb[:V] = W.detach()
    mm = triton.testing.do_bench_cudagraph(lambda: hb @ Wb.t())
    rows.append({"label": "cuBLAS logits matmul alone (bound for one tile kernel)", "ms": mm,
                 "tflops": 2 * N * Wb.shape[0] * d / (mm * 1e-3) / 1e12})
    print(f"cuBLAS logits matmul alone: {mm:.3f} ms", flush=True)
    if a.before:
        old = load_version(a.before)
        record("before", old, old.CHUNK)  # its own default
    for chunk in (2048, 4096, 8192):
        record(f"after chunk {chunk}", linear_ce, chunk, tiles=dict(linear_ce.HEAD_TILE))
    chunk = min((r for r in rows if r["label"].startswith("after")), key=lambda r: r["total_ms"])["chunk"]
    tma = linear_ce._tma
    linear_ce._tma = lambda *t: False  # the pointer loads that GPUs before Hopper take
    record(f"after chunk {chunk}, pointer loads", linear_ce, chunk, tiles=dict(linear_ce.HEAD_TILE))
    linear_ce._tma = tma
    chosen = dict(linear_ce.HEAD_TILE)
    for kernel in ("stats", "grad"):
        best = None
        for tile in TILES:
            linear_ce.HEAD_TILE = {**chosen, kernel: tile}
            try:
                r = record(f"{kernel} tile {tile}", linear_ce, chunk, tiles=dict(linear_ce.HEAD_TILE))
            except Exception as e:  # noqa: BLE001 - a tile the compiler cannot fit is a row, not a stop
                rows.append({"label": f"{kernel} tile {tile}", "error": f"{type(e).__name__}: {e}"[:500]})
                print(f"{kernel} tile {tile}: {type(e).__name__}", flush=True)
                continue
            if best is None or r["total_ms"] < best[1]:
                best = (tile, r["total_ms"])
        chosen[kernel] = best[0]
    linear_ce.HEAD_TILE = chosen
    record("after, chosen tiles", linear_ce, chunk, tiles=dict(chosen))
    with open(a.out, "w") as f:
        json.dump({"meta": {**provenance(), "tokens": N, "vocab": V, "d": d, "chosen_chunk": chunk,
                            "chosen_tiles": chosen, "peak_tflops": H100_BF16_DENSE_TFLOPS}, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
