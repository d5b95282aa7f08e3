"""Causal-violation probe: does any output at t' < t depend on the input at t?

(a) Perturb the layer-0 state at position t and require |Δlogits_{t'}| ≤ tol for all t' < t.
(b) Require ∂logits_{t'}/∂x_t = 0 for t' < t (one backward pass of a random projection).
(c) Change the token id at t and require |Δlogits_{t'}| ≤ tol for t' < t: catches paths that read
    ids directly rather than through the embedding (a per-token mass, a register's creation gate).
Works for every :class:`~semsim.models.base.LanguageModel`, since all expose ``embed`` and
``forward_embeddings``.
"""

from __future__ import annotations

import torch


def causal_probe(
    model,
    seq_len: int = 32,
    batch: int = 2,
    positions: tuple[int, ...] | None = None,
    tol: float = 1e-6,
    seed: int = 0,
    train_mode: bool = False,
) -> dict:
    """Return the worst leak found and whether the model passed."""
    device = next(model.parameters()).device
    was_training = model.training
    model.train(train_mode)
    g = torch.Generator(device="cpu").manual_seed(seed)
    T = min(seq_len, model.block_size)
    vocab = model.config.vocab_size
    idx = torch.randint(0, vocab, (batch, T), generator=g).to(device)
    positions = positions or tuple(sorted({1, T // 2, T - 1}))

    def run(x, ids=None):
        # Identical noise (e.g. Gumbel) in every pass, without disturbing the caller's RNG stream.
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            if ids is not None:
                return model(ids).logits.float()
            return model.forward_embeddings(x, idx)[0].float()

    with torch.no_grad():
        x0 = model.embed(idx).float()
        base = run(x0)
    worst_delta, worst_grad, worst_ids, effect = 0.0, 0.0, 0.0, float("inf")
    for t in positions:
        ids = idx.clone()
        ids[:, t] = (ids[:, t] + 1 + torch.randint(0, vocab - 1, (batch,), generator=g).to(device)) % vocab
        with torch.no_grad():
            worst_ids = max(worst_ids, (run(None, ids)[:, :t] - base[:, :t]).abs().max().item())

        x1 = x0.clone()
        x1[:, t] += torch.randn(x1[:, t].shape, generator=g).to(device)
        with torch.no_grad():
            out = run(x1)
        worst_delta = max(worst_delta, (out[:, :t] - base[:, :t]).abs().max().item())
        effect = min(effect, (out[:, t:] - base[:, t:]).abs().max().item())

        xg = x0.detach().clone().requires_grad_(True)
        logits = run(xg)
        w = torch.randn(logits[:, :t].shape, generator=g).to(device)
        (grad,) = torch.autograd.grad((logits[:, :t] * w).sum(), xg)
        worst_grad = max(worst_grad, grad[:, t:].abs().max().item())
    model.train(was_training)
    return {
        "passed": worst_delta <= tol and worst_grad <= tol and worst_ids <= tol,
        "max_abs_dlogits_before_t": worst_delta,
        "max_abs_grad_from_future": worst_grad,
        "max_abs_dlogits_before_t_token_ids": worst_ids,
        "min_effect_at_or_after_t": effect,  # > 0: the perturbation did reach the outputs
        "positions": list(positions),
        "seq_len": T,
        "tol": tol,
    }
