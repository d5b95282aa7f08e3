"""Time SQ3's fused wells force (forward, backward) over tile choices at the published size.

    python benchmarks/wells_force_tiles.py --out wells_force_tiles.json [--before old_wells_force.py]

N = 16 × 512 tokens, K = 8 wells, d = 256, Y = [μ | p | π-logits | b | pad] (4,160 columns) in bf16 as
the packed matmul makes it under autocast, h in fp32. Each (elements per program, warps) pair is checked
against the PyTorch formulas and timed with triton.testing.do_bench_cudagraph (median ms per call of each
direction's launches, replayed as a CUDA graph). ``--before`` names another version of
``semsim/kernels/wells_force.py`` (e.g. ``git show REV:src/semsim/kernels/wells_force.py``), timed in the
same process at its own tiles. The bandwidth bound counts one read of Y and h (forward) or one read of
Y, h, ∂f and one write of ∂Y, ∂h (backward).
"""

from __future__ import annotations

import argparse
import json

import torch

from provenance import provenance  # sibling scripts
from side_by_side import function_times, load_version
from semsim.kernels import wells_force as wf

H100_HBM_GBPS = 3350.0  # NVIDIA H100 SXM datasheet


def _time(module, Y, h, grads, K, tau, a_min):
    return function_times(module.WellsForce, (Y, h, K, tau, a_min), tuple(grads))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--before", help="path of an earlier wells_force.py to time beside this one")
    a = p.parse_args()
    torch.manual_seed(0)
    N, K, d, tau, a_min = 16 * 512, 8, 256, 1.0, 1e-3
    width = 2 * K * d + K + 1
    width += -width % 64
    Y = (torch.randn(N, width, device="cuda") * 0.5).to(torch.bfloat16).requires_grad_(True)
    with torch.no_grad():
        Y[:, 2 * K * d + K + 1:] = 0
    h = torch.randn(N, d, device="cuda", requires_grad=True)
    outs = wf.WellsForce.apply(Y, h, K, tau, a_min)
    grads = [torch.randn_like(o) for o in outs]
    ref = wf._forward_torch(Y.detach(), h.detach(), K, d, tau, a_min)
    ref_bwd = wf._backward_torch(Y.detach(), h.detach(), ref[2], grads[0], grads[1], K, d, tau, a_min)
    y_bytes = N * width * 2
    bound = {"fwd_ms": (y_bytes + N * d * 4) / H100_HBM_GBPS / 1e6,
             "bwd_ms": (2 * y_bytes + 3 * N * d * 4) / H100_HBM_GBPS / 1e6}
    print(f"bandwidth bound: fwd {bound['fwd_ms']:.3f} ms, bwd {bound['bwd_ms']:.3f} ms", flush=True)
    rows = []
    if a.before:
        fwd, bwd = _time(load_version(a.before), Y, h, grads, K, tau, a_min)
        rows.append({"version": "before", "fwd_ms": fwd, "bwd_ms": bwd})
        print(f"before                fwd {fwd:.3f} ms  bwd {bwd:.3f} ms", flush=True)
    for elems in (2048, 4096, 8192, 16384):  # 2,048: one token per program
        for warps in (1, 2, 4, 8, 16):
            wf.TILE["fwd"] = wf.TILE["bwd"] = (elems, warps)
            try:
                f, V = wf.WellsForce.apply(Y, h, K, tau, a_min)
                gY, gh = torch.autograd.grad((f, V), (Y, h), grads)
                ok = (torch.allclose(f, ref[0], atol=1e-3, rtol=1e-3) and torch.allclose(V, ref[1], atol=1e-3, rtol=1e-3)
                      and torch.allclose(gY.float(), ref_bwd[0].float(), atol=2e-2, rtol=2e-2)
                      and torch.allclose(gh, ref_bwd[1], atol=1e-3, rtol=1e-3))
                fwd, bwd = _time(wf, Y, h, grads, K, tau, a_min)
            except Exception as e:  # noqa: BLE001 - a tile the compiler refuses (registers, shared memory)
                rows.append({"version": "after", "elems": elems, "warps": warps, "error": str(e)[:200]})
                print(f"elems {elems:5d} warps {warps:2d}  failed: {str(e)[:100]}", flush=True)
                continue
            rows.append({"version": "after", "elems": elems, "warps": warps, "fwd_ms": fwd, "bwd_ms": bwd,
                         "matches_torch": ok})
            print(f"elems {elems:5d} warps {warps:2d}  fwd {fwd:.3f} ms  bwd {bwd:.3f} ms  matches {ok}", flush=True)
    with open(a.out, "w") as f:
        json.dump({"meta": {**provenance(), "N": N, "K": K, "d": d, "Y_columns": width,
                            "bandwidth_bound": bound}, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
