"""Side-by-side training-step speed of several model variants on one GPU, in one process.

    python benchmarks/speed.py --out speed.json \
        gpt=gpt-baseline  splm=splm-multixi  splm_autograd=splm-multixi:model.force=autograd

Each variant is ``label=preset[:override,override...][@option,option...]``, options being a compile
scope (``whole``, ``model``; bare for backward compatibility), ``graph=1`` (the whole step replayed
as a CUDA graph, :mod:`semsim.training.graphed_step`), ``kernels=reference|fused``,
``dtype=bf16|fp32|tf32`` (fp32 eager without autocast; tf32 also allows TF32 matmuls),
``sdpa=cudnn|flash|efficient`` (only that attention backend), ``clip=separate`` (``clip_grad_norm_``
then ``step()``, as before clipping was folded into the fused AdamW), ``inductor=FLAG+FLAG`` (Inductor
config flags switched on, e.g. ``coordinate_descent_tuning``), ``swap=FILE`` (run an earlier version of
one ``semsim.kernels`` module, e.g. ``git show REV:src/semsim/kernels/linear_ce.py > old/linear_ce.py``,
for a before → after in one process). A step is
forward + backward + AdamW at the preset's batch (16 × 512 by default); we report the median of
timed steps after warm-up, tokens/s, each variant's ratio to the first, peak memory and (with
``--profile``) the variant's top CUDA kernels over a few more steps.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import json
import statistics
import time
from pathlib import Path

import torch
import torch._inductor.config  # noqa: F401 - the inductor= option patches it

from semsim import kernels
from provenance import provenance, random_model  # sibling scripts
from side_by_side import load_version
from semsim.presets import get_preset
from semsim.training.clipping import clip_and_step
from semsim.training.graphed_step import GraphedTrainStep
from semsim.training.trainer import make_optimizer

H100_BF16_DENSE_TFLOPS = 989.0  # NVIDIA H100 SXM datasheet, dense bf16


def parse_variant(spec: str):
    label, _, rest = spec.partition("=")
    preset, _, overrides = rest.partition(":")
    run = get_preset(preset)
    run.override([o for o in overrides.split(",") if o])
    return label, preset, overrides, run


def parse_options(opts: str, default_compile: str) -> dict:
    o = {"compile": default_compile, "kernels": "fused", "dtype": "bf16", "graph": "0"}
    for item in filter(None, opts.split(",")):
        key, eq, val = item.partition("=")
        if eq:
            o[key] = val
        else:
            o["compile"] = key
    return o


def clip_then_step(opt, params, max_norm):
    """The clip as a pass of its own over the gradients, then the optimiser (``clip=separate``)."""
    norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
    opt.step()
    return norm


class SeparateClipGraphedStep(GraphedTrainStep):
    """The graphed step with :func:`clip_then_step` in place of :func:`clip_and_step`."""

    clip_and_step = staticmethod(clip_then_step)


def eager_step(model, fwd, opt, x, y, autocast, clip=clip_and_step):
    """One eager training step on (x, y) as a no-argument callable: forward (under ``autocast()``), backward,
    clip at 1.0 and AdamW (``clip``)."""

    def step():
        with autocast():
            out = fwd(x, targets=y)
        out.objective.backward()
        clip(opt, model.parameters(), 1.0)
        opt.zero_grad(set_to_none=True)

    return step


def top_kernels(step_fn, n_steps: int, top: int) -> list[dict]:
    """The ``top`` CUDA kernels by total device time over ``n_steps`` profiled steps (ms per step)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(n_steps):
            step_fn()
        torch.cuda.synchronize()
    rows = []
    for e in prof.key_averages():
        t = getattr(e, "self_device_time_total", None) or getattr(e, "self_cuda_time_total", 0)
        if t > 0 and e.device_type.name == "CUDA":
            rows.append({"kernel": e.key[:160], "ms_per_step": t / 1e3 / n_steps, "calls_per_step": e.count / n_steps})
    rows.sort(key=lambda r: -r["ms_per_step"])
    total = sum(r["ms_per_step"] for r in rows)
    for r in rows:
        r["share"] = r["ms_per_step"] / total if total else None
    return rows[:top]


def time_variant(run, steps: int, warmup: int, opts: dict, device: torch.device, profile_top: int = 0) -> dict:
    flags = {name: True for name in filter(None, opts.get("inductor", "").split("+"))}
    with kernels.use(opts["kernels"]), swapped(opts.get("swap")), attention_backend(opts.get("sdpa")), \
            torch._inductor.config.patch(flags):
        return _time_variant(run, steps, warmup, opts, device, profile_top)


@contextlib.contextmanager
def attention_backend(name: str | None):
    """Only the named scaled-dot-product-attention backend for the variant (None: the code's own choice),
    also where the GPT names its training backends (``gpt.TRAIN_BACKENDS``)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from semsim.models import gpt

    if not name:
        yield
        return
    backend = {"cudnn": SDPBackend.CUDNN_ATTENTION, "flash": SDPBackend.FLASH_ATTENTION,
               "efficient": SDPBackend.EFFICIENT_ATTENTION}[name]
    saved, gpt.TRAIN_BACKENDS = gpt.TRAIN_BACKENDS, [backend]
    try:
        with sdpa_kernel([backend]):
            yield
    finally:
        gpt.TRAIN_BACKENDS = saved


@contextlib.contextmanager
def swapped(path: str | None):
    """With ``path`` (a file named like a ``semsim.kernels`` module), that module's attributes are the
    file's for the duration: callers that look them up at call time run the earlier version."""
    if not path:
        yield
        return
    target = importlib.import_module(f"semsim.kernels.{Path(path).stem}")
    old = load_version(path)
    saved = {k: getattr(target, k) for k in vars(old) if not k.startswith("__") and hasattr(target, k)}
    for k in saved:
        setattr(target, k, getattr(old, k))
    try:
        yield
    finally:
        for k, v in saved.items():
            setattr(target, k, v)


def _time_variant(run, steps, warmup, opts, device, profile_top):
    compile_ = opts["compile"]
    torch.manual_seed(0)
    torch.backends.cuda.matmul.allow_tf32 = opts["dtype"] == "tf32"
    torch.backends.cudnn.allow_tf32 = opts["dtype"] == "tf32"
    model = random_model(run.model).to(device)
    graphed = opts["graph"] == "1"
    opt = make_optimizer(model, run.train, device, capturable=graphed)
    # "model": the model's regional compilation (compile_for_training("regional"))
    scope = {"model": "regional"}.get(compile_, compile_)
    if compile_ != "none":  # Dynamo would reuse an earlier variant's graph where its guards still pass
        torch._dynamo.reset()  # (e.g. one built under another attention backend)
    fwd = model if compile_ == "none" else model.compile_for_training(scope, run.train.compile_mode)
    B, T = run.train.batch_size, run.model.block_size
    x = torch.randint(0, run.model.vocab_size, (B, T), device=device)
    y = torch.randint(0, run.model.vocab_size, (B, T), device=device)
    cuda = device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times = []
    use_bf16 = cuda and opts["dtype"] == "bf16"
    autocast = lambda: torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16)  # noqa: E731
    separate = opts.get("clip") == "separate"
    if graphed:
        graph_step = (SeparateClipGraphedStep if separate else GraphedTrainStep)(model, fwd, opt, 1.0, autocast)
        train_step = functools.partial(graph_step, x, y)
    else:
        train_step = eager_step(model, fwd, opt, x, y, autocast, clip_then_step if separate else clip_and_step)
    for i in range(warmup + steps):
        sync()
        t0 = time.perf_counter()
        train_step()
        sync()
        if i == 0:
            first_step = time.perf_counter() - t0  # includes compilation when compiling
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    step = statistics.median(times)
    n_params = model.num_params()
    res = {
        "params": n_params,
        "batch": B,
        "block": T,
        "step_ms": step * 1e3,
        "step_ms_spread": [min(times) * 1e3, max(times) * 1e3],
        "tokens_per_s": B * T / step,
        "peak_mem_gb": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
        "compile": compile_,
        "compile_mode": run.train.compile_mode,
        "kernels": opts["kernels"],
        "cuda_graph": graphed,
        "dtype": opts["dtype"],
        "swap": Path(opts["swap"]).name if opts.get("swap") else None,
        "sdpa": opts.get("sdpa"),
        "clip": opts.get("clip", "folded"),
        "inductor": opts["inductor"].split("+") if opts.get("inductor") else None,
        "first_step_s": first_step,
        "compile_s": first_step - step if compile_ != "none" else None,  # first step less a timed one
    }
    if profile_top and cuda:
        res["top_kernels"] = top_kernels(train_step, 3, profile_top)
    if hasattr(model, "flops_per_token"):  # the attention baseline's model FLOP utilisation
        res["mfu_vs_989tflops"] = model.flops_per_token(T) * res["tokens_per_s"] / (H100_BF16_DENSE_TFLOPS * 1e12)
    del model, opt, fwd
    if cuda:
        torch.cuda.empty_cache()
    return res


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("variants", nargs="+", help="label=preset[:overrides]; a per-variant compile mode may "
                   "follow as label=preset[:overrides]@whole")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--compile", choices=["none", "model", "whole"], default="none",
                   help="model: compile_for_training('regional') (one SPLM layer); whole: torch.compile(model)")
    p.add_argument("--profile", type=int, default=0, help="record each variant's top N CUDA kernels")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")  # CPU: smoke runs only
    rows = []
    for spec in a.variants:
        spec, _, options = spec.partition("@")
        label, preset, overrides, run = parse_variant(spec)
        try:
            r = time_variant(run, a.steps, a.warmup, parse_options(options, a.compile), device)
        except Exception as e:  # noqa: BLE001 - one failing variant (e.g. a compile mode it cannot take) keeps the others
            print(f"{label}: failed: {type(e).__name__}: {str(e)[:300]}", flush=True)
            rows.append({"label": label, "preset": preset, "overrides": overrides, "error": f"{type(e).__name__}: {e}"[:2000]})
            continue
        rows.append({"label": label, "preset": preset, "overrides": overrides, **r})
        print(f"{label:28s} {r['params'] / 1e6:6.2f}M  {r['step_ms']:8.2f} ms/step  {r['tokens_per_s']:>10,.0f} tok/s"
              f"  {r['peak_mem_gb'] or 0:.2f} GB  first step {r['first_step_s']:.1f} s", flush=True)
    if a.profile and device.type == "cuda":  # after all timings: a profiler session can slow later launches
        for spec, row in zip(a.variants, rows):
            spec, _, options = spec.partition("@")
            opts = parse_options(options, a.compile)
            if "error" not in row and opts["kernels"] == "fused":
                row["top_kernels"] = time_variant(parse_variant(spec)[3], 1, 3, opts, device, a.profile)["top_kernels"]
    base = rows[0].get("tokens_per_s")
    for r in rows:
        if base and "tokens_per_s" in r:
            r["tokens_per_s_ratio_to_first"] = r["tokens_per_s"] / base
    meta = {
        **provenance(),
        "steps": a.steps,
        "warmup": a.warmup,
        "dtype": "per row: bf16 = bf16 autocast, fp32 = no autocast, tf32 = fp32 with TF32 matmuls",
    }
    with open(a.out, "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
