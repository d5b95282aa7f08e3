"""Collect the paper's Tiny Shakespeare runs (benchmarks/scripts/shakespeare_paper.sh) into one JSON and a figure.

Each arm is a ``semsim train --seeds`` folder: its seeds.json holds, per seed, the final and the
dev-selected (``keep_best``) checkpoints on the test slice and the final checkpoint on the whole held-out
slice (the last 5% of the token stream, as the paper reported), and their mean ± std over seeds.

    python benchmarks/shakespeare_report.py RUNS_ROOT --out FOLDER
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from provenance import provenance  # sibling script

ARMS = {"gpt": "gpt-shakespeare", "splm": "splm-shakespeare", "parf": "parf-shakespeare",
        "hybrid-AAAASSSS": "hybrid-shakespeare", "hybrid-SASASASA": "hybrid-shakespeare",
        "hybrid-SSAAAASS": "hybrid-shakespeare"}


def _val_curve(run: Path) -> list[tuple[int, float]]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [(r["step"], r["ppl"]) for r in rows if r.get("split") == "val"]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    root, out = Path(args.root), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    arms, curves = {}, {}
    for arm, preset in ARMS.items():
        seeds_file = root / arm / "seeds.json"
        if not seeds_file.is_file():
            print(f"missing: {seeds_file}", file=sys.stderr)
            continue
        rep = json.loads(seeds_file.read_text())
        cfg = json.loads((root / arm / f"seed{rep['seeds'][0]}" / "config.json").read_text())
        arms[arm] = {"preset": preset, "schedule": cfg["model"].get("schedule"), **rep}
        curves[arm] = {s: _val_curve(root / arm / f"seed{s}") for s in rep["seeds"]}
    result = {"provenance": provenance(), "protocol": (
        "Tiny Shakespeare, GPT-2 BPE, last 5% of the token stream held out (321,124 train / 16,901 held-out "
        "tokens); the held-out stream's first half is the dev slice (validation every 200 steps, keep_best), "
        "its second half the test slice nobody selects on. test_final: final checkpoint on test; "
        "test_dev_selected: best-dev checkpoint on test; heldout_final: final checkpoint on the whole held-out "
        "slice, as the paper reported. std is the sample std over seeds (n-1)."), "arms": arms, "val_curves": curves}
    (out / "shakespeare_paper.json").write_text(json.dumps(result, indent=2))
    print(f"{'arm':<18} {'seeds':>5}  {'test final':>16}  {'test dev-sel.':>16}  {'held-out final':>16}")
    for arm, rep in arms.items():
        m = rep["mean_std"]
        cells = [f"{m[k]['ppl_mean']:7.2f} ± {m[k]['ppl_std']:5.2f}" if k in m else "–"
                 for k in ("test_final", "test_dev_selected", "heldout_final")]
        print(f"{arm:<18} {len(rep['seeds']):>5}  {cells[0]:>16}  {cells[1]:>16}  {cells[2]:>16}")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4.2))
        for i, (arm, per_seed) in enumerate(curves.items()):
            for j, (seed, pts) in enumerate(per_seed.items()):
                ax.plot([p[0] for p in pts], [p[1] for p in pts], color=f"C{i}", alpha=0.9 if j == 0 else 0.45,
                        label=arm if j == 0 else None)
        ax.set(xlabel="step", ylabel="dev-slice perplexity", yscale="log",
               title=f"Tiny Shakespeare, 4,000 × 16 × 128 — {result['provenance'].get('gpu', '')}")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "dev_ppl_vs_step.png", dpi=120)
    except ImportError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
