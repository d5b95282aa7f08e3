#!/usr/bin/env bash
# Train splm-multixi and the matched GPT baseline on Tiny Shakespeare with the same
# budget (1,000 steps of 16 x 512), then run the separator and STP measurements on both.
# Also a size-matched GPT (3 layers, 15.4M params) beside splm-multixi in one speed run.
set -uo pipefail
export PYTHONPATH=src SEMSIM_CACHE_DIR=/tmp/semsim-cache PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name --format=csv,noheader
python3 benchmarks/speed.py --out $OUT/speed_matched.json --steps 20 --warmup 5 \
  splm_multixi=splm-multixi gpt_3layer_15M=gpt-baseline:model.n_layer=3 gpt_baseline=gpt-baseline 2>&1
for p in gpt-baseline splm-multixi; do
  python3 -m semsim train --preset $p --out /tmp/runs/$p data.corpus=tinyshakespeare data.train_token_cap=null \
    train.steps=1000 train.eval_interval=250 train.ckpt_interval=0 train.eval_tokens=32768 \
    train.warmup_steps=100 train.progress=false 2>&1 | grep -E "val loss" | tail -n 1
done
python3 -m semsim diagnose all /tmp/runs/splm-multixi --out /tmp/diag/splm --seqs 64 --seq-len 128 --quiet > /tmp/diag_splm.log 2>&1; tail -3 /tmp/diag_splm.log
python3 -m semsim diagnose separator /tmp/runs/gpt-baseline --out /tmp/diag/gpt --seqs 64 --seq-len 128 --quiet > /dev/null 2>&1
python3 -m semsim diagnose stp /tmp/runs/gpt-baseline --out /tmp/diag/gpt --seqs 64 --seq-len 128 --quiet > /dev/null 2>&1
python3 -m semsim diagnose jacobian-symmetry /tmp/runs/gpt-baseline --out /tmp/diag/gpt --seqs 64 --seq-len 128 --quiet > /dev/null 2>&1
python3 - <<'PY'
import json, os
out = os.environ["OUT"]
res = {}
for who in ("splm", "gpt"):
    d = f"/tmp/diag/{who}"
    res[who] = {f[:-5]: json.load(open(f"{d}/{f}")) for f in os.listdir(d) if f.endswith(".json")}
for who in ("splm", "gpt"):
    s, t = res[who]["separator"], res[who]["stp"]["layer"]
    print(f"{who}: separator median R2 {s['median_r2']:.3f} (velocity-only {s['velocity_only']['median_r2']:.3f}) "
          f"per-layer {[round(x, 2) for x in s['r2']]}; STP(layer) {t['stp_mean']:.3f} decel {t['frac_decelerating']:.3f} "
          f"tan/norm {t['tangential_over_normal']:.2f} z {t['z']:.1f}")
json.dump(res, open(f"{out}/diagnostics_splm_vs_gpt.json", "w"), indent=1)
PY
cp /tmp/diag/splm/report.md $OUT/report_splm.md
cp /tmp/diag/splm/separator.png $OUT/separator_splm.png
cp /tmp/diag/gpt/separator.png $OUT/separator_gpt.png
