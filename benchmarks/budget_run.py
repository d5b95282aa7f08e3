"""Train a preset for a fixed wall-clock budget on the GPU and write one JSON row.

    python benchmarks/budget_run.py --preset splm-multixi --budget 540 --compile whole --out results.jsonl
    python benchmarks/budget_run.py --preset parflm-multixi-sq3 --profile     # top kernels by GPU time
    python benchmarks/budget_run.py --preset gpt-baseline --compile whole --profile   # ... of the compiled step

The LR schedule (warm-up, cosine) is laid over the budget; the run ends with its final validation
(loss / PPL on the fixed validation slice) and checkpoint inside the budget. Validation also runs
every ``--eval-every`` seconds and the best model is kept: on a small corpus a long run overfits,
and the row reports both the final and the best validation PPL (with when it was reached).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import time
from pathlib import Path

import torch

from provenance import provenance  # sibling script
from semsim.presets import get_preset
from semsim.training import Trainer
from speed import H100_BF16_DENSE_TFLOPS  # sibling script


def profile(run, scope: str = "none", steps: int = 10) -> None:
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    from provenance import random_model  # sibling script
    from semsim.training.trainer import make_optimizer

    device = torch.device("cuda")
    model = random_model(run.model).to(device)
    opt = make_optimizer(model, run.train, device)
    # profile the step that is timed: compiled as the run would compile it
    fwd = model if scope == "none" else model.compile_for_training(scope, run.train.compile_mode)
    B, T = run.train.batch_size, run.model.block_size
    x = torch.randint(0, run.model.vocab_size, (B, T), device=device)

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = fwd(x, targets=x)
        out.objective.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(3):
        step()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):  # unprofiled wall time first: the profiler itself slows the host side
        step()
    torch.cuda.synchronize()
    wall_ms = (time.perf_counter() - t0) * 1e3 / steps
    with torch_profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            step()
        torch.cuda.synchronize()
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=25, max_name_column_width=60))
    # GPU kernels' own time (one stream, so no overlap): a GPU busy for much less than the wall step
    # waits on the host (Python, kernel launches)
    kernels = [e for e in prof.events() if e.device_type == DeviceType.CUDA]
    busy_ms = sum(e.time_range.elapsed_us() for e in kernels) / 1e3 / steps
    print(f"wall {wall_ms:.2f} ms/step, GPU kernels {busy_ms:.2f} ms/step ({busy_ms / wall_ms:.0%} busy)")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--preset", required=True)
    p.add_argument("--budget", type=float, default=600.0, help="wall-clock seconds, evaluation included")
    p.add_argument("--corpus", default="tinyshakespeare")
    p.add_argument("--compile", choices=["none", "whole", "regional"], default="none")
    p.add_argument("--eval-every", type=float, default=30.0, help="seconds between validations (best kept)")
    p.add_argument("--profile", action="store_true")
    p.add_argument("--out", default="budget_runs.jsonl")
    p.add_argument("--run-dir", default=None, help="where the run's metrics and checkpoints go")
    p.add_argument("overrides", nargs="*")
    a = p.parse_args()
    run = get_preset(a.preset)
    # The preset's step count stays as a cap and sets the warm-up fraction (400/16,000 for the
    # published recipe); within it the schedule follows the wall clock.
    compile_ = [] if a.compile == "none" else ["train.compile=true", f"train.compile_scope={a.compile}"]
    run.override([f"data.corpus={a.corpus}", "data.train_token_cap=null", "train.eval_interval=0",
                  f"train.eval_interval_s={a.eval_every}", "train.keep_best=true", "train.ckpt_interval=0",
                  "train.eval_tokens=32768", "train.progress=false", *compile_, *a.overrides])
    run.train.time_budget = a.budget
    if a.profile:
        profile(run, a.compile)
        return
    run_dir = Path(a.run_dir or f"/tmp/budget/{a.preset}")
    shutil.rmtree(run_dir, ignore_errors=True)
    t0 = time.perf_counter()
    cuda = torch.cuda.is_available()  # the CPU path is for smoke runs only
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    trainer = Trainer(run, run_dir, log=lambda m: None)
    result = trainer.fit()
    wall = time.perf_counter() - t0
    rows = [json.loads(r) for r in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if r["split"] == "train"]
    # steady-state rate: the median logging interval, past compilation and away from validations
    steady = statistics.median(r["tokens_per_s"] for r in train_rows[len(train_rows) // 10:])
    val_curve = [(round(r["elapsed"], 1), r["step"], r["loss"]) for r in rows if r["split"] == "val"]
    best_at = next(e for e, s, _ in val_curve if s == result.best_step)
    row = {
        "preset": a.preset, "params": trainer.model.num_params(), **provenance(), "corpus": trainer.corpus.name, "budget_s": a.budget, "compile": a.compile,
        "steps": result.step, "tokens_seen": trainer.tokens_seen,
        "tokens_per_s_avg": trainer.tokens_seen / result.wall_s, "tokens_per_s_steady": steady,
        "step_ms_steady": 1e3 * run.train.batch_size * run.train.grad_accum * run.model.block_size / steady,
        "first_log_s": train_rows[0]["elapsed"] if train_rows else None,  # set-up + compilation + first steps
        "peak_mem_gb": torch.cuda.max_memory_allocated() / 2**30 if cuda else None, "train_wall_s": result.wall_s,
        "wall_s_with_setup": wall, "final_val_loss": result.val_loss, "final_val_ppl": result.val_ppl,
        "best_val_loss": result.best_val_loss, "best_val_ppl": math.exp(result.best_val_loss),
        "best_step": result.best_step, "best_at_s": best_at, "val_curve": val_curve,
        "overrides": a.overrides,
    }
    if hasattr(trainer.model, "flops_per_token"):
        row["mfu_steady_vs_989tflops"] = trainer.model.flops_per_token() * steady / (H100_BF16_DENSE_TFLOPS * 1e12)
    print(json.dumps({k: v for k, v in row.items() if k != "val_curve"}))
    with open(a.out, "a") as f:
        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
