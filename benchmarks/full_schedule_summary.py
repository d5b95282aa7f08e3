"""One summary.json from the runs of benchmarks/scripts/full_schedule.sh.

    python benchmarks/full_schedule_summary.py FOLDER [--provenance FILE]

FOLDER holds ``<preset>.log`` (its last line: ``<preset>: rc R command_wall_s S``) and
``<preset>.metrics.jsonl`` for each run; the training-loop time is the last train record's ``elapsed``.
``--provenance`` is the JSON that ``full_schedule.sh`` wrote beside them (GPU, versions, commit, date).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def summarise(log: Path, metrics: Path) -> dict:
    rc, wall = log.read_text().strip().splitlines()[-1].split("rc ")[1].split(" command_wall_s ")
    recs = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    train = [r for r in recs if r.get("split") == "train"]
    val = [r["loss"] for r in recs if r.get("split") == "val"]
    loop = train[-1]["elapsed"]
    return {"rc": int(rc), "steps": train[-1]["step"], "command_wall_s": float(wall), "train_loop_wall_s": round(loop, 1),
            "tokens_per_s_final": round(train[-1]["tokens_per_s"]), "ms_per_step_overall": round(1e3 * loop / train[-1]["step"], 2),
            "validations": len(val), "val_loss_final": round(val[-1], 4), "val_loss_best": round(min(val), 4)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("folder", type=Path)
    p.add_argument("--provenance", type=Path)
    a = p.parse_args()
    prov = json.loads(a.provenance.read_text()) if a.provenance else {}
    out = {}
    for log in sorted(a.folder.glob("*.log")):
        preset = log.name[: -len(".log")]
        out[preset] = {**prov, "command": f"python -m semsim train --preset {preset} --out RUN --force "
                       "data.corpus=tinyshakespeare train.progress=false", **summarise(log, a.folder / f"{preset}.metrics.jsonl")}
    (a.folder / "summary.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
