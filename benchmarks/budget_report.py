"""The 540 s budget table and figure from the budget-run JSON rows (no GPU needed).

    python benchmarks/budget_report.py benchmarks/results/budget-540s \
        gpt-baseline=eval2s splm-multixi=eval2s parflm-multixi-sq3=eval10s fock-parflm-sq3=eval10s

Reads ``budget_runs_{preset}_{tag}.jsonl`` and ``metrics_{preset}_{tag}.jsonl`` from the folder,
prints a markdown table (ratios are to the first preset: separate runs, so machine spread applies)
and writes ``val_ppl_vs_wall.png`` there.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from semsim.plotting import plot_val_vs_wall

# Published validation PPLs on TinyStories (the models' papers: 16,000 steps on one A100)
PUBLISHED = {"gpt-baseline": 7.81, "splm-multixi": 11.51, "parflm-multixi-sq3": 12.27, "fock-parflm-sq3": 10.36}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("folder", type=Path)
    p.add_argument("runs", nargs="+", help="preset=tag")
    a = p.parse_args()
    rows, curves = [], {}
    for spec in a.runs:
        preset, tag = spec.split("=")
        row = json.loads((a.folder / f"budget_runs_{preset}_{tag}.jsonl").read_text().splitlines()[-1])
        rows.append((preset, tag, row))
        curves[preset] = a.folder / f"metrics_{preset}_{tag}.jsonl"
    base = rows[0][2]["tokens_per_s_steady"]
    print("| preset | compile | published PPL (TinyStories) | best val PPL | at step / s | final val PPL "
          "| steps in budget | train wall s | steady tok/s (× first) | ms/step | first log s | peak GB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for preset, tag, r in rows:
        print(f"| `{preset}` ({tag}) | {r['compile']} | {PUBLISHED.get(preset, '')} | {r['best_val_ppl']:.1f} "
              f"| {r['best_step']} / {r['best_at_s']:.0f} | {r['final_val_ppl']:,.0f} | {r['steps']:,} "
              f"| {r['train_wall_s']:.0f} | {r['tokens_per_s_steady']:,.0f} ({r['tokens_per_s_steady'] / base:.2f}) "
              f"| {r['step_ms_steady']:.2f} | {r['first_log_s']:.0f} | {r['peak_mem_gb']:.2f} |")
    png = plot_val_vs_wall(curves, a.folder / "val_ppl_vs_wall.png",
                           title=f"{rows[0][2]['corpus']}, 540 s budget, {rows[0][2]['gpu']}")
    print(f"wrote {png}")


if __name__ == "__main__":
    main()
