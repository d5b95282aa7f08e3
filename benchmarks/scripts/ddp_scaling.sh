#!/usr/bin/env bash
# Data parallelism on one host with two GPUs: steady tokens/s on 1 vs 2 GPUs (per-rank batch 16, so
# 2 GPUs train a global batch of 32) for gpt-baseline and splm-multixi, eager; then the same global
# batch (16) on 1 GPU and on 2 GPUs (8 per rank) under one wall-clock budget (BUDGET s, default 120;
# 0 skips it).
# Results land in $OUT (results/ddp/).
set -uo pipefail
export PYTHONPATH=src PYTHONUNBUFFERED=1 SEMSIM_CACHE_DIR=/tmp/semsim-cache
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
S="data.corpus=tinyshakespeare train.steps=300 train.log_interval=20 train.eval_interval=0 train.ckpt_interval=0 train.eval_tokens=4096 train.causal_probe=false train.progress=false"
for p in gpt-baseline splm-multixi; do
  python3 -m semsim train --preset $p --out /tmp/r/speed-$p-1 $S 2>&1 | grep -E "error|Error" ;
  python3 -m semsim train --nproc 2 --preset $p --out /tmp/r/speed-$p-2 $S 2>&1 | grep -E "data parallel|error|Error" ;
done
python3 benchmarks/ddp_report.py --out "$OUT/ddp_speed.json" \
  speed:gpt-baseline:1=/tmp/r/speed-gpt-baseline-1 speed:gpt-baseline:2=/tmp/r/speed-gpt-baseline-2 \
  speed:splm-multixi:1=/tmp/r/speed-splm-multixi-1 speed:splm-multixi:2=/tmp/r/speed-splm-multixi-2
B=${BUDGET:-120}
[ "$B" = 0 ] && exit 0
R="data.corpus=tinyshakespeare train.eval_interval_s=10 train.eval_tokens=32768 train.progress=false train.causal_probe=false"
python3 -m semsim train --preset gpt-baseline --out /tmp/r/budget-1 --time-budget $B $R train.batch_size=16 2>&1 | grep -E "error|Error"
python3 -m semsim train --nproc 2 --preset gpt-baseline --out /tmp/r/budget-2 --time-budget $B $R train.batch_size=8 2>&1 | grep -E "data parallel|error|Error"
python3 benchmarks/ddp_report.py --out "$OUT/ddp_budget.json" budget:gpt-baseline:1=/tmp/r/budget-1 budget:gpt-baseline:2=/tmp/r/budget-2
cp /tmp/r/budget-1/metrics.jsonl "$OUT/metrics_budget_1gpu.jsonl"; cp /tmp/r/budget-2/metrics.jsonl "$OUT/metrics_budget_2gpu.jsonl"
