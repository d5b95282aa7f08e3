"""Validation loss, perplexity and bits per byte on a fixed slice.

Bits per byte, the same for every model and tokenizer: Σ cross-entropy (nats) / ln 2 / Σ UTF-8 bytes of the
predicted tokens — the same targets the loss is summed over, each counted with the bytes its id stands for.
"""

from __future__ import annotations

import contextlib
import math

import torch


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    windows: torch.Tensor,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
    autocast: contextlib.AbstractContextManager | None = None,
    token_bytes=None,
) -> dict:
    """Mean next-token cross-entropy (nats) over every position of every window; with ``token_bytes``
    (bytes per id, e.g. ``Corpus.token_bytes()``) also ``bpb``."""
    was_training = model.training
    model.eval()
    total, count, n_bytes = 0.0, 0, 0
    table = None if token_bytes is None else torch.as_tensor(token_bytes, dtype=torch.int64)
    for i in range(0, len(windows), batch_size):
        w = windows[i : i + batch_size].to(device, non_blocking=True)
        with autocast or contextlib.nullcontext():
            out = model(w[:, :-1], targets=w[:, 1:])
        n = w[:, 1:].numel()
        total += out.loss.item() * n
        count += n
        if table is not None:
            n_bytes += int(table[windows[i : i + batch_size, 1:].long()].sum())
    model.train(was_training)
    loss = total / max(count, 1)
    # no cap: a perplexity too large for a float is reported as inf, never as a made-up ceiling
    res = {"loss": loss, "ppl": math.exp(loss) if loss < 709.0 else math.inf, "tokens": count}
    if table is not None:
        res.update(bpb=total / math.log(2) / max(n_bytes, 1), bytes=n_bytes)
    return res


def summarise_seeds(summaries: dict[int, dict]) -> dict:
    """Mean ± sample standard deviation (n − 1) over seeds of each test result a run reports
    (``test_final``, ``test_dev_selected``, ``heldout_final``: see ``Trainer.test_report``)."""
    import statistics

    names = sorted({k for s in summaries.values() for k in (s.get("test") or {})})
    agg = {}
    for name in names:
        rows = [s["test"][name] for s in summaries.values() if name in (s.get("test") or {})]
        loss, ppl = [r["loss"] for r in rows], [r["ppl"] for r in rows]
        agg[name] = {
            "n": len(rows), "split": rows[0]["split"], "tokens": rows[0]["tokens"],
            "loss_mean": statistics.fmean(loss), "loss_std": statistics.stdev(loss) if len(rows) > 1 else 0.0,
            "ppl_mean": statistics.fmean(ppl), "ppl_std": statistics.stdev(ppl) if len(rows) > 1 else 0.0,
        }
    return {"seeds": sorted(summaries), "mean_std": agg, "runs": {str(k): v for k, v in summaries.items()}}
