#!/usr/bin/env bash
# First look at the hypersphere EBM on a GPU: sphere-ebm, gpt-baseline and splm-multixi, one after the
# other, each under the same wall-clock budget (BUDGET s, default 150) on Tiny Shakespeare, eager, bf16;
# then a sample from the EBM. Results land in $OUT (benchmarks/results/sphere-ebm-first-look/).
set -uo pipefail
export PYTHONPATH=src PYTHONUNBUFFERED=1 SEMSIM_CACHE_DIR=/tmp/semsim-cache
B=${BUDGET:-150}
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
R="data.corpus=tinyshakespeare train.eval_interval_s=30 train.keep_best=true train.eval_tokens=32768 train.progress=false"
for p in sphere-ebm gpt-baseline splm-multixi; do
  python3 -m semsim train --preset $p --out /tmp/r/$p --time-budget $B $R > /tmp/r-$p.log 2>&1
  grep -E "error|Error|step [0-9]+: val|test_|heldout" /tmp/r-$p.log | tail -5
  cp /tmp/r/$p/summary.json $OUT/summary_$p.json; cp /tmp/r/$p/metrics.jsonl $OUT/metrics_$p.jsonl
done
python3 -m semsim generate /tmp/r/sphere-ebm --prompt "ROMEO:" --max-new-tokens 60 --top-k 50 --no-stream \
  --stats > $OUT/sample_sphere-ebm.txt 2>&1; cat $OUT/sample_sphere-ebm.txt
