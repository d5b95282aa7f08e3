"""Decoding cost per token vs context length: SPLM incremental (constant state) vs GPT with a KV
cache, and both by full recomputation, side by side in one process.

    python benchmarks/decode.py --out results/decode/decode_cuda.json --lengths 16 64 256 1024 4096 16384 --batches 1 32
    python benchmarks/decode.py --device cpu --out results/decode/decode_cpu.json --lengths 16 64 256 1024 4096 16384 --batches 1

For each (model, batch B, context length T): prefill T random tokens into the decoding state (not
timed), then time ``--steps`` single-token decode calls after ``--warmup`` (median; each call
advances every sequence one position, so the context grows by ``steps`` ≪ T). "cuda-graph" (CUDA only) replays
each model's one-token step as a CUDA graph (``semsim.models.graphed``: the SPLM as it is, the GPT over
a static KV cache of T + 4 + warmup + steps slots), checked against eager steps. "full" times one
forward pass over the T + 1 tokens with the LM head on the last position only — what a decoder
without a cache pays per new token. Models are the full-size presets with random weights:
``splm-multixi`` (position-free, so it can decode past its 512-token block) and ``gpt-baseline``
(its learned position table widened to the longest T). bf16 autocast on CUDA, fp32 on the CPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from provenance import provenance, random_model  # sibling script
from semsim.models.graphed import GraphedDecoder, GraphedGPTDecoder
from semsim.presets import get_preset


def build(name: str, max_len: int, device) -> torch.nn.Module:
    cfg = get_preset(name).model
    if name.startswith("gpt"):
        cfg = dataclasses.replace(cfg, block_size=max_len)
    else:
        cfg = dataclasses.replace(cfg, pos="none")
    torch.manual_seed(0)
    return random_model(cfg).to(device).eval()


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _hidden_last(model, idx):
    """Full recomputation of one new token: every position's hidden state, the head on the last."""
    x = model.embed(idx)
    if hasattr(model, "integrate"):
        h = model.integrate(x, idx)[0]
    else:
        for block in model.blocks:
            x = block(x)
        h = model.ln_f(x)
    return h[:, -1] @ model.wte.weight.T


def prefill(model, idx, chunk: int):
    state = model.new_decode_state()
    for a in range(0, idx.shape[1], chunk):
        model.decode(idx[:, a : a + chunk], state)
    return state


def time_calls(fn, steps: int, warmup: int, device) -> list[float]:
    times = []
    for i in range(warmup + steps):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--lengths", type=int, nargs="+", default=[16, 64, 256, 1024, 4096, 16384])
    p.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--full-max-tokens", type=int, default=16384 * 32, help="skip full recompute past B·T")
    p.add_argument("--prefill-max-tokens", type=int, default=16384 * 32, help="skip a (B, T) past B·T")
    p.add_argument("--prefill-chunk", type=int, default=2048)
    a = p.parse_args()
    device = torch.device(a.device)
    amp = torch.autocast("cuda", torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)
    max_len = max(a.lengths) + 2 * (a.warmup + a.steps) + 16  # room for every timed and checked step
    models = {"splm": build("splm-multixi", max_len, device), "gpt": build("gpt-baseline", max_len, device)}
    rows = []
    g = torch.Generator().manual_seed(0)
    with torch.no_grad(), amp:
        for B in a.batches:
            for T in a.lengths:
                if B * T > a.prefill_max_tokens:
                    continue
                idx = torch.randint(0, 50257, (B, T + 1), generator=g).to(device)
                for name, model in models.items():
                    if device.type == "cuda":
                        torch.cuda.reset_peak_memory_stats()
                    state = prefill(model, idx[:, :T], a.prefill_chunk)
                    tok = idx[:, T:]
                    base = torch.cuda.memory_allocated() if device.type == "cuda" else 0
                    times = time_calls(lambda: model.decode(tok, state), a.steps, a.warmup, device)
                    ms = 1e3 * statistics.median(times)
                    row = {"model": name, "mode": "incremental", "batch": B, "T": T, "ms_per_step": ms,
                           "tokens_per_s": B / (ms / 1e3), "state_bytes": state.nbytes,
                           "peak_mem_gb": torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None,
                           "allocated_gb": base / 2**30 if device.type == "cuda" else None}
                    rows.append(row)
                    print(f"B={B:3d} T={T:6d} {name:5s} incremental {ms:8.3f} ms/step  state {state.nbytes / 2**20:9.2f} MiB",
                          flush=True)
                    if device.type == "cuda":  # the same steps replayed as a CUDA graph, checked against eager
                        state, ref_state = (prefill(model, idx[:, :T], a.prefill_chunk) for _ in range(2))
                        t0 = time.perf_counter()
                        graphed = (GraphedDecoder(model, state) if name == "splm"
                                   else GraphedGPTDecoder(model, state, capacity=T + 4 + a.warmup + a.steps))
                        capture_s = time.perf_counter() - t0
                        check = max((graphed.step(tok).float() - model.decode(tok, ref_state).float()).abs().max().item()
                                    for _ in range(3))
                        times = time_calls(lambda: graphed.step(tok), a.steps, a.warmup, device)
                        ms = 1e3 * statistics.median(times)
                        rows.append({"model": name, "mode": "cuda-graph", "batch": B, "T": T, "ms_per_step": ms,
                                     "tokens_per_s": B / (ms / 1e3), "capture_s": capture_s,
                                     "max_abs_diff_vs_eager": check})
                        print(f"B={B:3d} T={T:6d} {name:5s} cuda-graph  {ms:8.3f} ms/step  (capture {capture_s:.2f} s, "
                              f"|Δlogits| vs eager {check:.1e})", flush=True)
                        graphed = ref_state = None
                    state = None  # free it before the next model
                    if B * (T + 1) <= a.full_max_tokens:
                        reps = max(1, min(a.steps, 5 if B * T >= 4096 else a.steps))
                        try:
                            t = time_calls(lambda: _hidden_last(model, idx), reps, 1, device)
                            ms = 1e3 * statistics.median(t)
                            rows.append({"model": name, "mode": "full", "batch": B, "T": T, "ms_per_step": ms,
                                         "tokens_per_s": B / (ms / 1e3)})
                            print(f"B={B:3d} T={T:6d} {name:5s} full        {ms:8.3f} ms/step", flush=True)
                        except torch.OutOfMemoryError:
                            rows.append({"model": name, "mode": "full", "batch": B, "T": T, "error": "out of memory"})
                            torch.cuda.empty_cache()
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {**provenance(), "device": device.type, "dtype": "bf16 autocast" if device.type == "cuda" else "fp32",
            "steps": a.steps, "warmup": a.warmup, "threads": torch.get_num_threads(),
            "params": {k: m.num_params() for k, m in models.items()}}
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(json.dumps({"crossover": crossovers(rows), "crossover_cuda_graph": crossovers(rows, "cuda-graph")}),
          file=sys.stderr)


def crossovers(rows, mode: str = "incremental") -> dict:
    """Per batch: the smallest measured T from which SPLM decoding beats the GPT's KV cache (both in
    ``mode``: eager ``incremental`` or ``cuda-graph``), and the log-interpolated crossing between the
    two grid points around it."""
    import math

    out = {}
    for B in sorted({r["batch"] for r in rows}):
        inc = {(r["model"], r["T"]): r["ms_per_step"] for r in rows if r["batch"] == B and "ms_per_step" in r
               and r["mode"] == mode}
        Ts = sorted({T for (_, T) in inc if ("splm", T) in inc and ("gpt", T) in inc})
        ratio = [(T, inc[("gpt", T)] / inc[("splm", T)]) for T in Ts]
        res = {"ratio_gpt_over_splm": dict(ratio), "first_T_splm_faster": None, "crossover_T": None}
        for (t0, r0), (t1, r1) in zip([(None, None)] + ratio, ratio):
            if r1 > 1:
                res["first_T_splm_faster"] = t1
                if t0 is not None and r0 <= 1:
                    f = math.log(r0) / (math.log(r0) - math.log(r1))
                    res["crossover_T"] = round(math.exp(math.log(t0) + f * (math.log(t1) - math.log(t0))))
                break
        out[str(B)] = res
    return out


if __name__ == "__main__":
    main()
