"""Compiled (regional) and eager SPLM-family models compute the same loss and gradients (fp32, GPU)."""

import sys

import torch

from semsim.models import build_model
from semsim.presets import get_preset

for name in sys.argv[1:]:
    torch.manual_seed(0)
    cfg = get_preset(name).model
    eager = build_model(cfg).cuda().eval()
    compiled = build_model(cfg).cuda().eval()
    compiled.load_state_dict(eager.state_dict())
    compiled = compiled.compile_for_training("regional")
    x = torch.randint(0, cfg.vocab_size, (4, 256), device="cuda")
    l1, l2 = eager(x, targets=x).loss, compiled(x, targets=x).loss
    g1 = torch.autograd.grad(l1, list(eager.parameters()), allow_unused=True)
    g2 = torch.autograd.grad(l2, list(compiled.parameters()), allow_unused=True)
    rel = max(((a - b).norm() / b.norm().clamp_min(1e-30)).item() for a, b in zip(g1, g2) if a is not None)
    print(f"{name}: loss eager {l1.item():.6f} compiled {l2.item():.6f} |Δ| {abs(l1 - l2).item():.2e}; "
          f"max relative gradient difference {rel:.2e}")
