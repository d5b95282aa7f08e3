"""The fused-kernel results as one Markdown table (before → after, same process) plus the top kernels.

    python benchmarks/fused_kernels_report.py benchmarks/results/fused-kernels > benchmarks/results/fused-kernels/report.md
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

PRESETS = ["gpt-baseline", "splm-multixi", "splm-multixi-sq3", "parflm-multixi-sq3", "fock-parflm-sq3"]


def main() -> None:
    folder = Path(sys.argv[1])
    bf16 = json.loads((folder / "fused_kernels_bf16.json").read_text())
    fp32 = json.loads((folder / "fused_kernels_fp32.json").read_text())
    comps = [json.loads(f.read_text()) for f in sorted(folder.glob("fused_kernels_compile_*.json"))]
    comp = {"meta": comps[0]["meta"], "rows": [r for c in comps for r in c["rows"]]}
    rows = {r["label"]: r for r in bf16["rows"] + fp32["rows"] + comp["rows"]}
    m = bf16["meta"]
    print(f"# Fused kernels: before → after in one process\n\n{m['gpu']}, driver {m['driver']}, CUDA {m['cuda']}, "
          f"torch {m['torch']}, triton {m['triton']}, {m['date'][:10]}; code {m['commit']} (bf16 eager), "
          f"{fp32['meta']['commit']} (fp32), {comp['meta']['commit']} (compiled). Batch 16 × 512, AdamW (fused), clip 1.0, random tokens, "
          f"median of {m['steps']} steps after {m['warmup']}.\n")
    print("bf16 autocast. *reference*: `SEMSIM_KERNELS=reference` (the paths the kernels replace); *fused*: the "
          "default kernels, eager; *fused + graph*: the default training path — fused kernels, the whole step "
          "replayed as one CUDA graph, no compilation.\n")
    print("| preset | params | reference ms/step · GB | fused ms/step · GB | fused + graph ms/step · GB | tokens/s (graph) | speed-up |")
    print("|---|---|---|---|---|---|---|")
    for p in PRESETS:
        l = p.replace("-", "_")
        ref, fu, gr = rows[f"{l}_ref"], rows[f"{l}_fused"], rows[f"{l}_fused_graph"]
        cell = lambda r: f"{r['step_ms']:.2f} · {r['peak_mem_gb']:.2f}"  # noqa: E731
        print(f"| `{p}` | {ref['params'] / 1e6:.2f}M | {cell(ref)} | {cell(fu)} | {cell(gr)} | "
              f"{gr['tokens_per_s']:,.0f} | {ref['step_ms'] / gr['step_ms']:.2f}× |")
    g = rows["gpt_baseline_fused_graph"]
    if "mfu_vs_989tflops" in g:
        print(f"\nGPT baseline MFU (6N + attention FLOPs, 989 TFLOPS bf16 dense): {100 * g['mfu_vs_989tflops']:.1f}% "
              f"with the graphed step.\n")
    print("fp32, no autocast (`tf32`: TF32 matmuls allowed):\n")
    print("| variant | ms/step | peak GB |\n|---|---|---|")
    for r in fp32["rows"]:
        print(f"| {r['label']} | {r['step_ms']:.2f} | {r['peak_mem_gb']:.2f} |")
    print("\n`torch.compile` (default mode, fused kernels, the compiled step replayed as one CUDA graph; *whole*: the "
          "model, *regional*: one integration step; each variant in a fresh process with empty compile caches; "
          "compile time = first step less a timed one):\n")
    print("| variant | ms/step | compile s | peak GB |\n|---|---|---|---|")
    for r in comp["rows"]:
        print(f"| {r['label']} | {r['step_ms']:.2f} | {r['compile_s']:.1f} | {r['peak_mem_gb']:.2f} |")
    if "mfu_vs_989tflops" in rows.get("gpt_whole_graph", {}):
        print(f"\nGPT baseline MFU, compiled + graph: {100 * rows['gpt_whole_graph']['mfu_vs_989tflops']:.1f}%.")
    after = folder / "graphed_after_ce_row_tile.json"
    if after.exists():  # the default path again after the row-pass retune (another process)
        a = json.loads(after.read_text())
        print(f"\n## Default path after the cross-entropy row-pass retune (code {a['meta']['commit']}, another process)\n")
        print("| preset | fused + graph ms/step · GB | in the table above |\n|---|---|---|")
        for r in a["rows"]:
            print(f"| `{r['preset']}` | {r['step_ms']:.2f} · {r['peak_mem_gb']:.2f} | {rows[r['label']]['step_ms']:.2f} |")
        g = next((r for r in a["rows"] if "mfu_vs_989tflops" in r), None)
        if g:
            print(f"\nGPT baseline MFU: {100 * g['mfu_vs_989tflops']:.1f}%. Row pass alone, side by side "
                  "(`ce-rows-tiles.json`, `benchmarks/ce_rows_tiles.py`): 0.48 → 0.27 ms per 2,048-token chunk.")
    full = folder / "full-schedule" / "summary.json"
    if full.exists():  # benchmarks/scripts/full_schedule.sh
        print("\n## The published 16,000-step schedule, end to end (`benchmarks/scripts/full_schedule.sh`)\n")
        print("Default training path (fused kernels, graphed step, no compile); Tiny Shakespeare in place of "
              "TinyStories. Command wall time includes start-up, corpus preparation, kernel compilation, the causal "
              "probe, 16 validations, checkpoints and the final test evaluation.\n")
        print("| preset | code | command wall | training loop | ms/step (loop) | tokens/s |\n|---|---|---|---|---|---|")
        for p, r in json.loads(full.read_text()).items():
            print(f"| `{p}` | {r['commit']} | {r['command_wall_s']:.0f} s ({r['command_wall_s'] / 60:.1f} min) | "
                  f"{r['train_loop_wall_s']:.0f} s | {r['ms_per_step_overall']:.2f} | {r['tokens_per_s_final']:,} |")
    print("\n## Top CUDA kernels after (device ms per step over 3 profiled steps)\n")
    for p in PRESETS:
        r = rows[f"{p.replace('-', '_')}_fused_graph"]
        print(f"**{p}** (fused + graph)\n\n| kernel | ms/step | calls/step | share |\n|---|---|---|---|")
        for k in r.get("top_kernels", [])[:8]:
            print(f"| `{k['kernel'][:90]}` | {k['ms_per_step']:.2f} | {k['calls_per_step']:.0f} | {100 * k['share']:.0f}% |")
        print()


if __name__ == "__main__":
    main()
