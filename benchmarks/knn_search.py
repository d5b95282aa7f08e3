"""Exact k-nearest-splat search: one matmul + top-k (what SplatStore does) against FAISS's exact inner-product
index (faiss-cpu, IndexFlatIP), at the hypersphere model's sizes (d = 640, k = 64, 5K / 30K / 50K splats).

    python benchmarks/knn_search.py --queries 2048 --out results/knn-search/knn_search.json

Both are exact, so they must return the same neighbours (checked: the share of identical index sets is
recorded). The GPU matmul is timed when CUDA is present; FAISS's index build (adding the centres) is timed
apart from its search, since splats move every step and a FAISS index would be rebuilt every step.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from provenance import provenance  # sibling script


def _time(fn, repeat: int, sync=lambda: None) -> float:
    fn()
    sync()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--queries", type=int, default=8192)
    ap.add_argument("--dim", type=int, default=640)
    ap.add_argument("--k", type=int, default=64)
    ap.add_argument("--splats", default="5000,30000,50000")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    try:
        import faiss
    except ImportError:
        faiss = None
    g = torch.Generator().manual_seed(0)
    rows = []
    for n in map(int, a.splats.split(",")):
        mu = F.normalize(torch.randn(n, a.dim, generator=g), dim=-1)
        q = F.normalize(torch.randn(a.queries, a.dim, generator=g), dim=-1)
        row = {"splats": n, "queries": a.queries, "dim": a.dim, "k": a.k,
               "torch_cpu_ms": _time(lambda: (q @ mu.T).topk(a.k, dim=-1), a.repeat)}
        ref = (q @ mu.T).topk(a.k, dim=-1).indices
        if torch.cuda.is_available():
            mu_c, q_c = mu.cuda(), q.cuda()
            sync = torch.cuda.synchronize
            row["torch_cuda_fp32_ms"] = _time(lambda: (q_c @ mu_c.T).topk(a.k, dim=-1), a.repeat, sync)
            mu_h, q_h = mu_c.bfloat16(), q_c.bfloat16()
            row["torch_cuda_bf16_ms"] = _time(lambda: (q_h @ mu_h.T).topk(a.k, dim=-1), a.repeat, sync)
        if faiss is not None:
            xb, xq = mu.numpy(), q.numpy()

            def build():
                index = faiss.IndexFlatIP(a.dim)
                index.add(xb)
                return index

            index = build()
            row["faiss_cpu_build_ms"] = _time(build, a.repeat)
            row["faiss_cpu_search_ms"] = _time(lambda: index.search(xq, a.k), a.repeat)
            _, got = index.search(xq, a.k)
            same = [set(r.tolist()) == set(s.tolist()) for r, s in zip(ref, torch.from_numpy(got))]
            row["faiss_same_neighbours"] = sum(same) / len(same)
        print(json.dumps(row))
        rows.append(row)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {**provenance(), "threads": torch.get_num_threads(),
            "faiss": getattr(faiss, "__version__", None) if faiss is not None else None}
    out.write_text(json.dumps({**meta, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
