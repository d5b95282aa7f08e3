"""Clipping folded into the fused AdamW step updates the weights as clip_grad_norm_ followed by step()."""

import pytest
import torch

from semsim.training.clipping import clip_and_step


def _runs(fused: bool, grad_size: float, step_fn):
    """Three AdamW steps on fixed gradients whose size grows 10× per step; ``step_fn(opt, params)`` does
    the clip and the step and returns the norm. Returns (parameters, norms)."""
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(s)) for s in [(40, 30), (30,), (7, 3, 5)]]
    opt = torch.optim.AdamW(params, lr=1e-2, weight_decay=0.1, fused=fused)
    norms = []
    for i in range(3):
        for p in params:
            p.grad = torch.randn_like(p) * grad_size * 10**i
        params[1].grad = None if i == 1 else params[1].grad  # a parameter without a gradient is skipped
        norms.append(step_fn(opt, params))
    return params, norms


def _reference(opt, params):
    norm = torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    return norm


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("grad_size", [5.0, 1e-4])  # norms ~170-17,000 (clipped); ~0.004-0.35 (not)
def test_clip_and_step_matches_clip_then_step(fused, grad_size):
    want, want_norms = _runs(fused, grad_size, _reference)
    seen = []

    def folded(opt, params):
        norm = clip_and_step(opt, params, 1.0)
        seen.append(hasattr(opt, "grad_scale"))
        return norm

    got, got_norms = _runs(fused, grad_size, folded)
    assert seen == [False] * 3  # nothing left behind for a later GradScaler
    torch.testing.assert_close(got_norms, want_norms)
    for p, q in zip(want, got):
        torch.testing.assert_close(q, p, rtol=1e-6, atol=1e-7)
    # the clip matters for the large gradients (unclipped steps land elsewhere), and only for them
    unclipped, _ = _runs(fused, grad_size, lambda opt, params: opt.step())
    assert torch.allclose(unclipped[0], want[0], rtol=1e-4, atol=1e-5) == (grad_size < 1)
