"""Summarise data-parallel runs (run folders of ``semsim train``) into one JSON: steady tokens/s per
run, 2-vs-1 GPU scaling per preset, and the loss curves of same-global-batch budget runs.

    python benchmarks/ddp_report.py --out results/ddp/ddp_h200x2.json speed:gpt-baseline:1=/tmp/r/g1 ...
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import provenance  # noqa: E402


def rows(run: Path) -> list[dict]:
    return [json.loads(r) for r in (run / "metrics.jsonl").read_text().splitlines()]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("runs", nargs="+", help="kind:preset:gpus=run_folder (kind: speed | budget)")
    a = p.parse_args()
    res = {"meta": provenance(), "speed": {}, "budget": {}}
    for spec in a.runs:
        key, folder = spec.split("=", 1)
        kind, preset, gpus = key.split(":")
        r, summary = rows(Path(folder)), json.loads((Path(folder) / "summary.json").read_text())
        train = [x for x in r if x["split"] == "train"]
        entry = {"gpus": int(gpus), "global_batch": summary["global_batch"], "world_size": summary["world_size"],
                 "steps": summary["step"], "wall_s": summary["wall_s"], "final_val_loss": summary["val_loss"]}
        if kind == "speed":
            entry["tokens_per_s_steady"] = statistics.median(x["tokens_per_s"] for x in train[2:])
            res["speed"].setdefault(preset, {})[gpus] = entry
        else:
            entry["train_curve"] = [(x["step"], round(x["elapsed"], 2), x["loss"]) for x in train]
            entry["val_curve"] = [(x["step"], round(x["elapsed"], 2), x["loss"]) for x in r if x["split"] == "val"]
            res["budget"].setdefault(preset, {})[gpus] = entry
    for preset, by in res["speed"].items():
        if "1" in by and "2" in by:
            by["scaling_2_over_1"] = by["2"]["tokens_per_s_steady"] / by["1"]["tokens_per_s_steady"]
            print(f"{preset}: 1 GPU {by['1']['tokens_per_s_steady']:,.0f} tok/s, 2 GPUs "
                  f"{by['2']['tokens_per_s_steady']:,.0f} tok/s, scaling {by['scaling_2_over_1']:.2f}x")
    for preset, by in res["budget"].items():
        for g, e in sorted(by.items()):
            print(f"budget {preset} {g} GPU(s): {e['steps']} steps, global batch {e['global_batch']}, "
                  f"final val loss {e['final_val_loss']:.4f}")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
