"""Warnings on a run's monitored trends, read from its metrics rows (``metrics.jsonl``).

Three signs that a run is going wrong, each judged on the last few rows so one noisy value does not
trigger it:
- validation PPL worsens: the last ``n`` validations are each above the best one so far by > 2%;
- energy rises: a family's monitored mean energy (``monitor.splat_energy``) rose over the last ``n``
  validations, each time;
- consolidation accelerates: the consolidation rate rose over the last ``n`` criticality checks, each
  time, and the last one is above zero.
"""

from __future__ import annotations

import json
from pathlib import Path


def read_rows(metrics: str | Path) -> list[dict]:
    """The rows of a run's ``metrics.jsonl``."""
    return [json.loads(line) for line in Path(metrics).read_text().splitlines() if line.strip()]


def _rising(values: list[float]) -> bool:
    return len(values) >= 2 and all(b > a for a, b in zip(values, values[1:]))


def trend_warnings(rows: list[dict], n: int = 3) -> list[str]:
    """Human-readable warnings for the trends above (empty when all is well)."""
    out = []
    val = [r for r in rows if r.get("split") == "val"]
    if len(val) > n:
        best = min(r["ppl"] for r in val[:-n])
        last = val[-n:]
        if all(r["ppl"] > 1.02 * best for r in last):
            shown = ", ".join(f"{r['ppl']:.1f}" for r in last)
            out.append(f"validation PPL worsens: the last {n} validations ({shown}) are all above the best "
                       f"{best:.1f} (overfitting or divergence)")
    energy = [r["monitor"]["splat_energy"] for r in val if "splat_energy" in r.get("monitor", {})]
    if len(energy) >= n and _rising(energy[-n:]):
        out.append(f"energy rises: mean splat energy over the last {n} validations "
                   f"{' → '.join(f'{e:.3f}' for e in energy[-n:])}")
    rate = [r["consolidation_rate"] for r in rows if r.get("split") == "event" and "consolidation_rate" in r]
    if len(rate) >= n and _rising(rate[-n:]) and rate[-1] > 0:
        out.append(f"consolidation accelerates: {' → '.join(f'{x:.0f}' for x in rate[-n:])} splats merged or "
                   "pruned per 1,000 steps")
    return out
