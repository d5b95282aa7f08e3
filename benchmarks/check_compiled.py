"""Compiled and eager SPLM-family models compute the same loss and gradients (fp32, GPU).

    python benchmarks/check_compiled.py [--scope regional|whole] PRESET [PRESET ...]

Prints the loss difference and, per preset, the parameters whose gradients differ most
(relative L2 difference, with the eager gradient's norm: a tiny norm makes a large ratio cheap).
"""

import argparse

import torch

from provenance import random_model  # sibling script
from semsim.presets import get_preset

p = argparse.ArgumentParser()
p.add_argument("--scope", choices=["regional", "whole"], default="regional")
p.add_argument("presets", nargs="+")
a = p.parse_args()
for name in a.presets:
    torch.manual_seed(0)
    cfg = get_preset(name).model
    eager = random_model(cfg).cuda().eval()
    compiled = random_model(cfg).cuda().eval()
    compiled.load_state_dict(eager.state_dict())
    fwd = compiled.compile_for_training(a.scope)
    x = torch.randint(0, cfg.vocab_size, (4, 256), device="cuda")
    l1, l2 = eager(x, targets=x).loss, fwd(x, targets=x).loss
    names = [n for n, _ in eager.named_parameters()]
    g1 = torch.autograd.grad(l1, list(eager.parameters()), allow_unused=True)
    g2 = torch.autograd.grad(l2, list(compiled.parameters()), allow_unused=True)
    diffs = sorted(
        (((a - b).norm() / a.norm().clamp_min(1e-30)).item(), n, a.norm().item())
        for n, a, b in zip(names, g1, g2) if a is not None and b is not None
    )[::-1]
    print(f"{name} [{a.scope}]: loss eager {l1.item():.6f} compiled {l2.item():.6f} |Δ| {abs(l1 - l2).item():.2e}")
    for rel, n, norm in diffs[:3]:
        print(f"    {n}: relative gradient difference {rel:.2e} (eager |g| = {norm:.2e})")
