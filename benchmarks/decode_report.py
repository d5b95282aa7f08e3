"""Figure and table from the JSON files of ``decode.py`` (no GPU needed).

    python benchmarks/decode_report.py benchmarks/results/decode/decode_cuda.json benchmarks/results/decode/decode_cpu.json \
        --png benchmarks/results/decode/ms_per_token_vs_T.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from decode import crossovers  # noqa: E402

STYLE = {("splm", "incremental"): ("tab:blue", "-", "SPLM incremental"),
         ("splm", "cuda-graph"): ("tab:cyan", "--", "SPLM incremental, CUDA graph"),
         ("splm", "full"): ("tab:blue", ":", "SPLM full recompute"),
         ("gpt", "incremental"): ("tab:red", "-", "GPT + KV cache"),
         ("gpt", "cuda-graph"): ("tab:orange", "--", "GPT + static KV cache, CUDA graph"),
         ("gpt", "full"): ("tab:red", ":", "GPT full recompute")}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("results", nargs="+")
    p.add_argument("--png", required=True)
    a = p.parse_args()
    panels = []
    for path in a.results:
        res = json.loads(Path(path).read_text())
        for B in sorted({r["batch"] for r in res["rows"]}):
            panels.append((res["meta"], B, [r for r in res["rows"] if r["batch"] == B and "ms_per_step" in r]))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.2), squeeze=False)
    for ax, (meta, B, rows) in zip(axes[0], panels):
        for (model, mode), (color, ls, label) in STYLE.items():
            pts = sorted((r["T"], r["ms_per_step"]) for r in rows if r["model"] == model and r["mode"] == mode)
            if pts:
                ax.plot(*zip(*pts), color=color, ls=ls, marker="o", ms=3, label=label)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("context length T (tokens)")
        ax.set_ylabel("ms per decode step (one token per sequence)")
        where = meta["gpu"] if meta["device"] == "cuda" else f"CPU ({meta['cpu']}), {meta['threads']} threads"
        ax.set_title(f"{where}, batch {B}, {meta['dtype']}", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        print(f"{where} batch {B}, eager: {json.dumps(crossovers(rows)[str(B)])}")
        if any(r["mode"] == "cuda-graph" for r in rows):
            print(f"{where} batch {B}, CUDA graphs: {json.dumps(crossovers(rows, 'cuda-graph')[str(B)])}")
    fig.text(0.01, 0.005, f"torch {panels[0][0]['torch']}, commit {panels[0][0]['commit']}, {panels[0][0]['date'][:10]}; "
             "splm-multixi vs gpt-baseline, random weights; dotted: full recompute per token", fontsize=7)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(a.png, dpi=130)
    print(f"wrote {a.png}")


if __name__ == "__main__":
    main()
