"""Where a training step's time goes: the host-side ops by self CPU time and the CUDA kernels by device
time, over a few profiled steps of each preset (bf16 autocast, eager, AdamW, random tokens).

    python benchmarks/profile_step.py --out profile.txt splm-multixi gpt-baseline
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

from provenance import provenance, random_model  # sibling scripts
from speed import eager_step
from semsim.presets import get_preset
from semsim.training.trainer import make_optimizer


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("presets", nargs="+")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--rows", type=int, default=25)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    dev = torch.device("cuda")
    lines = [str(provenance())]
    for name in a.presets:
        run = get_preset(name)
        model = random_model(run.model).to(dev)
        opt = make_optimizer(model, run.train, dev)
        B, T = run.train.batch_size, run.model.block_size
        x = torch.randint(0, run.model.vocab_size, (B, T), device=dev)
        step = eager_step(model, model, opt, x, x, lambda: torch.autocast("cuda", dtype=torch.bfloat16))

        for _ in range(5):
            step()
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(a.steps):  # host time of the step alone: launches without waiting for the GPU
            step()
        host = (time.perf_counter() - t0) / a.steps
        torch.cuda.synchronize()
        wall = (time.perf_counter() - t0) / a.steps
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            for _ in range(a.steps):
                step()
            torch.cuda.synchronize()
        ev = prof.key_averages()
        n_ops = sum(e.count for e in ev if e.device_type.name == "CPU" and e.key.startswith("aten::")) / a.steps
        n_kernels = sum(e.count for e in ev if e.device_type.name == "CUDA") / a.steps
        lines.append(f"\n=== {name}: wall {wall * 1e3:.2f} ms/step, host-side {host * 1e3:.2f} ms/step, "
                     f"{n_ops:.0f} aten ops and {n_kernels:.0f} kernels per step")
        lines.append(ev.table(sort_by="self_cpu_time_total", row_limit=a.rows, max_name_column_width=70))
        lines.append(ev.table(sort_by="self_cuda_time_total", row_limit=a.rows, max_name_column_width=70))
        del model, opt
        torch.cuda.empty_cache()
    text = "\n".join(lines)
    print("\n".join(line for line in text.splitlines() if line.startswith("===")))
    with open(a.out, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
