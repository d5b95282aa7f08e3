"""Bits per byte of a run's models before and after int8 + zlib quantisation, and the artifact's bytes.

    python benchmarks/artifact_eval.py RUN_DIR --out artifact_<arm>.json

For ``best/`` (the weight EMA at its best dev loss) and ``ema/`` (the final EMA) — or ``checkpoint/`` for
a run without EMA — evaluates the float model and the dequantised artifact on the test slice (never read
by selection) and the dev slice, with the same windows, and writes the artifact to RUN_DIR/<name>.ptz.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from provenance import provenance  # sibling script
from semsim.artifact import export_artifact, load_artifact
from semsim.data import prepare_corpus, validation_windows
from semsim.evaluation import evaluate
from semsim.training.checkpoint import load_model
from semsim.training.trainer import autocast_for


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--out", required=True)
    ap.add_argument("--tokens", type=int, default=1 << 20, help="at most this many tokens per slice")
    a = ap.parse_args()
    run_dir = Path(a.run)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    res = {**provenance(), "run": str(run_dir), "models": {}}
    for name in ("best", "ema", "checkpoint"):
        folder = run_dir / name
        if not folder.is_dir() or (name == "checkpoint" and res["models"]):
            continue
        model, run = load_model(folder, device=device)
        corpus = prepare_corpus(run.data, log=lambda m: None)
        tb = corpus.token_bytes()
        auto = autocast_for(device, run.train.dtype)
        art = run_dir / f"{name}.ptz"
        sizes = export_artifact(model.float(), run, art)
        qmodel, _ = load_artifact(art, device)
        row = {"artifact": sizes}
        for split in ("test", "dev"):
            w = validation_windows(corpus.split(split), model.block_size, a.tokens)
            row[split] = {"float": evaluate(model, w, 16, device, auto, tb), "int8_zlib": evaluate(qmodel, w, 16, device, auto, tb)}
        res["models"][name] = row
        print(name, json.dumps({k: (v["float"]["bpb"], v["int8_zlib"]["bpb"]) for k, v in row.items() if k != "artifact"}),
              sizes["artifact_bytes"])
    Path(a.out).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
