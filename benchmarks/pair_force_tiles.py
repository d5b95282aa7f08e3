"""Time PARFLM's fused pair-force kernels (forward, backward) over tile choices at the published size.

    python benchmarks/pair_force_tiles.py --out pair_force_tiles.json

N = 16 × 512 tokens, k = 8 sources, n_l = n_θ = 32, Φ/Θ hidden 128, bf16 features as under autocast;
each (tokens per program, warps) pair is checked against the PyTorch formulas (outputs and every input
gradient) and each direction timed on its own as a CUDA graph (side_by_side.function_times, median ms).
"""

from __future__ import annotations

import argparse
import json

import torch

from provenance import provenance  # sibling scripts
from side_by_side import function_times
from semsim import kernels
from semsim.kernels import pair_force as pf


def _outputs_and_grads(inputs, grads):
    out = pf.PairForce.apply(*inputs, "gelu")
    return (*out, *torch.autograd.grad(out, inputs, grads))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    a = p.parse_args()
    torch.manual_seed(0)
    N, K, nl, H = 16 * 512, 8, 32, 128
    dev = "cuda"
    lt, tt = (torch.randn(N, nl, device=dev, dtype=torch.bfloat16, requires_grad=True) for _ in range(2))
    ls, ts = (torch.randn(N, K, nl, device=dev, dtype=torch.bfloat16, requires_grad=True) for _ in range(2))
    ws = torch.rand(N, K, device=dev, requires_grad=True)
    prm = (torch.randn(2, 4, H, device=dev) * 0.5).requires_grad_(True)
    inputs = (lt, ls, tt, ts, ws, prm)
    grads = tuple(torch.randn_like(o) for o in pf.PairForce.apply(*inputs, "gelu"))
    with kernels.use("reference"):
        ref = _outputs_and_grads(inputs, grads)
    rows = []
    for bn in (4, 8, 16, 32):
        for warps in (1, 2, 4, 8):
            pf.TILE["fwd"] = pf.TILE["bwd"] = (bn, warps)
            try:
                ok = all(torch.allclose(x.float(), r.float(), atol=2e-2, rtol=2e-2)
                         for x, r in zip(_outputs_and_grads(inputs, grads), ref))
                fwd, bwd = function_times(pf.PairForce, (*inputs, "gelu"), grads)
            except Exception as e:  # noqa: BLE001 - a tile the compiler refuses (registers, shared memory)
                rows.append({"BN": bn, "warps": warps, "error": str(e)[:200]})
                print(f"BN={bn:3d} warps={warps}  failed: {str(e)[:100]}", flush=True)
                continue
            rows.append({"BN": bn, "warps": warps, "fwd_ms": fwd, "bwd_ms": bwd, "matches_torch": ok})
            print(f"BN={bn:3d} warps={warps}  fwd {fwd:.3f} ms  bwd {bwd:.3f} ms  matches {ok}", flush=True)
    with open(a.out, "w") as f:
        json.dump({"meta": {**provenance(), "N": N, "k": K, "n_l": nl, "hidden": H}, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
