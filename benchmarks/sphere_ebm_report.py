"""Gather the 540 s comparison (benchmarks/scripts/sphere_ebm_540s.sh) into one JSON, a figure and the
diagnose report.

    python benchmarks/sphere_ebm_report.py benchmarks/results/sphere-ebm-540s

Reads summary_<arm>.json, metrics_<arm>.jsonl and train_<arm>.log (its first two lines name the GPU,
driver, torch, CUDA and triton) for each arm, and diagnose/*.json of the hypersphere model; writes
comparison.json, val_ppl_vs_wall.png and diagnose/report.md there.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ARMS = ("sphere-ebm", "gpt-baseline", "splm-multixi")
DIAGNOSTICS = {"causal": "causal", "coverage": "coverage", "energy-trend": "energy_trend", "langevin": "langevin"}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--commit", default="4dda1e4", help="the commit the runs were made at")
    a = ap.parse_args()
    folder = Path(a.folder)
    from semsim.diagnostics.runner import report
    from semsim.models import build_model
    from semsim.plotting import plot_val_vs_wall
    from semsim.presets import get_preset

    arms = {}
    for arm in ARMS:
        s = json.loads((folder / f"summary_{arm}.json").read_text())
        gpu, versions = (folder / f"train_{arm}.log").read_text().splitlines()[:2]
        rows = [json.loads(line) for line in (folder / f"metrics_{arm}.jsonl").read_text().splitlines()]
        train = [r for r in rows if r["split"] == "train"]
        arms[arm] = {
            "params": build_model(get_preset(arm).model, from_weights=True).num_params(), "steps": s["step"], "wall_s": s["wall_s"],
            "tokens_per_s_last_log": s["tokens_per_s"],
            "tokens_per_s_mean": train[-1]["step"] * 16 * 512 / train[-1]["elapsed"],
            "test_ppl_dev_selected": s["test"]["test_dev_selected"]["ppl"],
            "dev_selected_step": s["test"]["test_dev_selected"]["step"],
            "test_ppl_final": s["test"]["test_final"]["ppl"], "heldout_ppl_final": s["test"]["heldout_final"]["ppl"],
            "test_tokens": s["test"]["test_final"]["tokens"], "gpu": gpu, "versions": versions,
            "warnings": sum(len(r.get("warnings", [])) for r in rows if r["split"] == "val"),
        }
    result = {
        "what": "540 s wall-clock budget per arm (set-up and final validation included), eager bf16, batch 16 × 512, "
                "Tiny Shakespeare (GPT-2 BPE, last 10% held out: dev half for validation and keep_best, test half "
                "never selected on); one seed each",
        "command": "bash benchmarks/scripts/sphere_ebm_540s.sh train <arm>; ... inspect; "
                   "python benchmarks/sphere_ebm_report.py benchmarks/results/sphere-ebm-540s",
        "commit": a.commit, "date": "2026-11-24", "seeds": 1, "arms": arms,
    }
    (folder / "comparison.json").write_text(json.dumps(result, indent=2))
    plot_val_vs_wall({arm: folder / f"metrics_{arm}.jsonl" for arm in ARMS}, folder / "val_ppl_vs_wall.png",
                     title="dev-slice PPL, 540 s each, one H100 (Tiny Shakespeare)")
    diag = {name: json.loads((folder / "diagnose" / f"{f}.json").read_text()) for name, f in DIAGNOSTICS.items()}
    (folder / "diagnose" / "report.md").write_text(report("sphere-ebm, dev-selected checkpoint", diag))
    for arm, r in arms.items():
        print(f"{arm:14s} {r['params']/1e6:6.2f}M {r['steps']:6d} steps  test PPL dev-selected "
              f"{r['test_ppl_dev_selected']:8.2f} (step {r['dev_selected_step']})  final {r['test_ppl_final']:10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
