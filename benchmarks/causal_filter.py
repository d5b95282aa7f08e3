"""Time the multi-ξ context filter (forward + backward) at the published size, beside an earlier version.

    python benchmarks/causal_filter.py --out causal_filter.json [--before old_scan.py]

h (16, 512, 256) in bf16 as under autocast, K = 4 channels of lower-triangular fp32 weights (K, T, T)
that need a gradient (the learnable decays). ``--before`` names another version of
``semsim/context/scan.py`` (e.g. ``git show REV:src/semsim/context/scan.py``). Device time per call is the
sum of the CUDA kernels the profiler records over 20 calls (launch overhead excluded), with the kernels
of each version listed.
"""

from __future__ import annotations

import argparse
import json

import torch
from torch.profiler import ProfilerActivity, profile

from provenance import provenance  # sibling scripts
from side_by_side import load_version
from semsim.context import scan


def _device_time(fn, calls: int = 20) -> tuple[float, list[dict]]:
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(calls):
            fn()
        torch.cuda.synchronize()
    rows = [{"kernel": e.key[:120], "ms_per_call": e.self_device_time_total / 1e3 / calls, "launches_per_call": e.count / calls}
            for e in prof.key_averages() if e.device_type.name == "CUDA" and e.self_device_time_total > 0]
    rows.sort(key=lambda r: -r["ms_per_call"])
    return sum(r["ms_per_call"] for r in rows), rows


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--before", help="path of an earlier scan.py to time beside this one")
    a = p.parse_args()
    torch.manual_seed(0)
    B, T, d, K = 16, 512, 256, 4
    h = torch.randn(B, T, d, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    W = torch.rand(K, T, T, device="cuda").tril().requires_grad_(True)
    g = torch.randn(B, T, K, d, device="cuda", dtype=torch.bfloat16)
    versions = {"after": scan}
    if a.before:
        versions = {"before": load_version(a.before), **versions}
    ref = torch.einsum("kts,bsd->btkd", W.double(), h.double())
    rows = []
    for name, mod in versions.items():
        out = mod.causal_filter(h, W)
        err = ((out.double() - ref).abs().max() / ref.abs().max()).item()
        ms, kernels = _device_time(lambda mod=mod: torch.autograd.grad(mod.causal_filter(h, W), (h, W), g))
        rows.append({"version": name, "device_ms_fwd_bwd": ms, "max_rel_err_vs_fp64": err, "kernels": kernels})
        print(f"{name:7s} {ms:.3f} ms (forward + backward, device)  rel. error {err:.1e}", flush=True)
        for k in kernels[:6]:
            print(f"    {k['ms_per_call']:.3f} ms  ×{k['launches_per_call']:.0f}  {k['kernel'][:90]}", flush=True)
    with open(a.out, "w") as f:
        json.dump({"meta": {**provenance(), "B": B, "T": T, "d": d, "K": K}, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
