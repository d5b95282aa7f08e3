"""The fused-kernel results as one Markdown table (before → after, same process) plus the top kernels.

    python benchmarks/fused_kernels_report.py benchmarks/results/fused-kernels > benchmarks/results/fused-kernels/report.md
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from semsim.kernels import linear_ce, pair_force, wells_force  # the tiles the code runs

PRESETS = ["gpt-baseline", "splm-multixi", "splm-multixi-sq3", "parflm-multixi-sq3", "fock-parflm-sq3"]


def side_by_side(folder: Path) -> None:
    """The kernel-level before → after figures (each pair measured in one process), at the tiles the code runs."""
    print("\n## Kernels side by side (one process each; device ms per call at the published size)\n")
    print("| kernel | before | after | source |\n|---|---|---|---|")
    wells = folder / "wells-force-tiles.json"
    if wells.exists():  # benchmarks/wells_force_tiles.py: the two-pass kernels vs the (tokens, K, d) tile
        rs = json.loads(wells.read_text())["rows"]
        before = next(r for r in rs if r["version"] == "before")
        for d in ("fwd", "bwd"):  # at the tile the code runs
            now = next(r for r in rs if r["version"] == "after" and (r["elems"], r["warps"]) == wells_force.TILE[d])
            print(f"| SQ3 wells {d} | {before[f'{d}_ms']:.3f} | {now[f'{d}_ms']:.3f} ({now['elems']} elements × "
                  f"{now['warps']} warps) | `{wells.name}` |")
    pair = folder / "pair-force-tiles.json"
    if pair.exists():  # benchmarks/pair_force_tiles.py: the former tile (16 tokens × 4 warps) vs the best
        rs = [r for r in json.loads(pair.read_text())["rows"] if r.get("matches_torch")]
        old = next(r for r in rs if (r["BN"], r["warps"]) == (16, 4))
        for d in ("fwd", "bwd"):
            now = next(r for r in rs if (r["BN"], r["warps"]) == pair_force.TILE[d])
            print(f"| PARFLM pair force {d} | {old[f'{d}_ms']:.3f} (16 × 4) | {now[f'{d}_ms']:.3f} ({now['BN']} × "
                  f"{now['warps']}) | `{pair.name}` |")
    cf = folder / "causal-filter.json"
    if cf.exists():  # benchmarks/causal_filter.py: matmul's 2-D @ 3-D fold vs one broadcast bmm
        rs = {r["version"]: r for r in json.loads(cf.read_text())["rows"]}
        print(f"| multi-ξ context filter fwd + bwd | {rs['before']['device_ms_fwd_bwd']:.3f} | "
              f"{rs['after']['device_ms_fwd_bwd']:.3f} | `{cf.name}` |")
    ce = folder / "ce-rows-tiles.json"
    if ce.exists():  # benchmarks/ce_rows_tiles.py: the former (4096, 4) row tile vs the best
        rs = [r for r in json.loads(ce.read_text())["rows"] if r.get("matches_torch")]
        old = next(r for r in rs if (r["block"], r["warps"]) == (4096, 4))
        now = next(r for r in rs if (r["block"], r["warps"]) == linear_ce.ROW_TILE)
        print(f"| head row pass, fp32 path (2,048 tokens) | {old['ms']:.3f} (4,096 × 4) | {now['ms']:.3f} "
              f"({now['block']} × {now['warps']}) | `{ce.name}` |")


def head(folder: Path) -> None:
    """The tile head beside the matmul + row-pass head it replaced (benchmarks/scripts/fused_head.sh)."""
    kern, step = folder / "fused-head.json", folder / "fused-head-step.json"
    if not (kern.exists() and step.exists()):
        return
    k = json.loads(kern.read_text())
    rs = {r["label"]: r for r in k["rows"]}
    ran = {name: list(t) for name, t in linear_ce.HEAD_TILE.items()}
    before = rs["before"]
    after = next(r for r in k["rows"] if r["label"] == f"after chunk {linear_ce.CHUNK}" and r.get("tiles") == ran)
    pointer = rs.get(f"after chunk {linear_ce.CHUNK}, pointer loads")
    best = rs["after, chosen tiles"]
    mm = next(r for r in k["rows"] if r["label"].startswith("cuBLAS"))
    print(f"\n## The tied head + cross-entropy (`{kern.name}`, `{step.name}`; code {k['meta']['commit']})\n")
    print(f"Loss, ∂h and ∂E at 16 × 512 tokens, vocab 50,257, d = 256, bf16 autocast; device ms per call, each "
          f"direction replayed as a CUDA graph. *before*: the earlier `linear_ce.py` given as `--before` "
          f"({before['chunk']:,}-token chunks); *after*: this one at {after['chunk']:,}-token chunks and the tiles "
          f"(rows, columns, warps, stages, vocab splits) it runs, {tuple(ran['stats'])} for the statistics and "
          f"{tuple(ran['grad'])} for G. One cuBLAS logits matmul alone takes {mm['ms']:.3f} ms.\n")
    print("| head | forward + backward ms | loss only (validation) ms | ∂h rel. error | ∂E rel. error |\n|---|---|---|---|---|")
    shown = [("before", before), ("after", after)] + ([("after, pointer loads", pointer)] if pointer else [])
    for name, r in shown + [(f"best of the tile sweep {tuple(best['tiles']['stats'])} / {tuple(best['tiles']['grad'])}", best)]:
        print(f"| {name} | {r['total_ms']:.3f} | {r['loss_only_ms']:.3f} | {r['dh_rel_err']:.1e} | {r['dW_rel_err']:.1e} |")
    print("\nWhole training steps, earlier head vs this one in one process (`speed.py … swap=linear_ce.py`):\n")
    print("| variant | ms/step | peak GB | MFU |\n|---|---|---|---|")
    for r in json.loads(step.read_text())["rows"]:
        mfu = f"{100 * r['mfu_vs_989tflops']:.1f}%" if r.get("mfu_vs_989tflops") else "–"
        print(f"| {r['label']} | {r['step_ms']:.2f} | {r['peak_mem_gb']:.2f} | {mfu} |")


def main() -> None:
    folder = Path(sys.argv[1])
    bf16 = json.loads((folder / "fused_kernels_bf16.json").read_text())
    fp32 = json.loads((folder / "fused_kernels_fp32.json").read_text())
    comps = [json.loads(f.read_text()) for f in sorted(folder.glob("fused_kernels_compile_*.json"))]
    rows = {r["label"]: r for r in bf16["rows"] + fp32["rows"] + [r for c in comps for r in c["rows"]]}
    m = bf16["meta"]
    print(f"# Fused kernels: before → after in one process\n\n{m['gpu']}, driver {m['driver']}, CUDA {m['cuda']}, "
          f"torch {m['torch']}, triton {m['triton']}, {m['date'][:10]}; code {m['commit']} (bf16 eager), "
          f"{fp32['meta']['commit']} (fp32), compiled rows as listed. Batch 16 × 512, AdamW (fused), clip 1.0, random tokens, "
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
    print("| variant | code | ms/step | compile s | peak GB |\n|---|---|---|---|---|")
    for c in comps:
        for r in c["rows"]:
            print(f"| {r['label']} | {c['meta']['commit']} | {r['step_ms']:.2f} | {r['compile_s']:.1f} | {r['peak_mem_gb']:.2f} |")
    if "mfu_vs_989tflops" in rows.get("gpt_whole_graph", {}):
        print(f"\nGPT baseline MFU, compiled + graph: {100 * rows['gpt_whole_graph']['mfu_vs_989tflops']:.1f}%.")
    side_by_side(folder)
    head(folder)
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
