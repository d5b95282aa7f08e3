"""The Fock LIFO schedule on the GPU (Triton) against the NumPy reference it replaced.

    python benchmarks/lifo_kernel.py --out lifo.json

1. Equality: the kernel and the reference give the same schedule on random push masks.
2. The schedule alone: CUDA mask in, CUDA schedule out (the reference path includes the copy to the
   host, which waits for the GPU, and the copy back).
3. A whole `fock-parflm-sq3` training step (eager, bf16, batch 16 × 512) with each path, side by side.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

import semsim.kernels.lifo as lifo
from provenance import provenance  # sibling script
from semsim.presets import get_preset
from speed import time_variant  # sibling script

triton_path, reference_path = lifo.lifo_schedule_triton, lifo.lifo_schedule_host


def timed(fn, *args, reps=50):
    times = []
    for _ in range(reps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn(*args)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    a = p.parse_args()
    res = provenance()
    g = torch.Generator(device="cuda").manual_seed(0)
    mismatches = 0
    for rate in (0.05, 0.3, 0.5, 0.9):
        for capacity, n_reads in ((16, 7), (4, 7), (16, 2)):
            push = torch.rand(16, 512, device="cuda", generator=g) < rate
            t1, r1 = triton_path(push, capacity, n_reads)
            t2, r2 = reference_path(push, capacity, n_reads)
            mismatches += int((t1 != t2).sum() + (r1 != r2).sum())
    res["mismatched_entries"] = mismatches
    push = torch.rand(16, 512, device="cuda", generator=g) < 0.5
    res["schedule_ms_triton"] = timed(triton_path, push, 16, 7)
    res["schedule_ms_reference"] = timed(reference_path, push, 16, 7)
    print(json.dumps(res), flush=True)

    run = get_preset("fock-parflm-sq3")
    rows = {}
    for label, impl in (("reference", reference_path), ("triton", triton_path), ("reference_again", reference_path)):
        lifo.lifo_schedule_triton = impl  # what the custom op calls on CUDA
        rows[label] = time_variant(run, 20, 5, "none", torch.device("cuda"))
        print(label, json.dumps(rows[label]), flush=True)
    lifo.lifo_schedule_triton = triton_path
    res["fock_step_eager"] = rows
    res["speedup"] = rows["reference"]["step_ms"] / rows["triton"]["step_ms"]
    with open(a.out, "w") as f:
        json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
