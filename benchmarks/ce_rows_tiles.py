"""Time the fused head's cross-entropy row pass over tile choices, on one chunk at the published size.

    python benchmarks/ce_rows_tiles.py --out ce_rows_tiles.json

One chunk of 2,048 tokens × 50,257 classes (rows padded to 50,304), bf16 logits as the head makes them,
loss and ∂logits in place. Each (column block, warps) pair is checked against PyTorch and timed with
triton.testing.do_bench (median ms per call); the bandwidth figure counts two reads and one write of the chunk.
"""

from __future__ import annotations

import argparse
import json

import torch
import triton.testing

from provenance import provenance  # sibling script
from semsim.kernels import linear_ce


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    a = p.parse_args()
    torch.manual_seed(0)
    N, V, Vp = 2048, 50257, 50304
    base = (torch.randn(N, Vp, device="cuda") * 3).to(torch.bfloat16)
    t = torch.randint(0, V, (N,), device="cuda")
    ref_logits = base.clone()
    ref_loss = linear_ce._rows_torch(ref_logits, t, V, 1.0 / N, True)
    rows = []
    for block in (2048, 4096, 8192):
        for warps in (4, 8, 16):
            linear_ce.ROW_TILE = (block, warps)
            x = base.clone()
            loss = linear_ce._rows(x, t, V, 1.0 / N, True)
            ok = (torch.allclose(loss, ref_loss, atol=1e-3, rtol=1e-4)
                  and torch.allclose(x[:, :V].float(), ref_logits[:, :V].float(), atol=1e-6, rtol=1e-2))
            ms = triton.testing.do_bench(lambda: linear_ce._rows(base.clone(), t, V, 1.0 / N, True)) - \
                triton.testing.do_bench(lambda: base.clone())
            gbs = 3 * N * Vp * 2 / (ms * 1e-3) / 1e9
            rows.append({"block": block, "warps": warps, "ms": ms, "GB_per_s": gbs, "matches_torch": ok})
            print(f"block {block:5d} warps {warps:2d}  {ms:.3f} ms  {gbs:6.0f} GB/s  matches {ok}", flush=True)
    with open(a.out, "w") as f:
        json.dump({"meta": {**provenance(), "tokens": N, "vocab": V}, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
