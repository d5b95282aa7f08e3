#!/usr/bin/env bash
# The hypersphere EBM against the GPT baseline and splm-multixi under one 540 s wall-clock budget each
# (set-up and final validation included), eager bf16, Tiny Shakespeare, one H100. One arm per call:
#   bash benchmarks/scripts/sphere_ebm_540s.sh train sphere-ebm|gpt-baseline|splm-multixi
#   bash benchmarks/scripts/sphere_ebm_540s.sh inspect      # sphere-ebm: samples + semsim diagnose all
# Results land in $OUT; benchmarks/sphere_ebm_report.py gathers them (results/sphere-ebm-540s/).
set -uo pipefail
export PYTHONPATH=src PYTHONUNBUFFERED=1 SEMSIM_CACHE_DIR=/tmp/semsim-cache
B=${BUDGET:-540}
R="data.corpus=tinyshakespeare train.eval_interval_s=30 train.keep_best=true train.eval_tokens=32768 train.progress=false"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 -c "import torch, triton; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__)"
if [ "$1" = train ]; then
  p=$2
  python3 -m semsim train --preset $p --out /tmp/r/$p --time-budget $B $R > $OUT/train_$p.log 2>&1
  grep -E "rror|warning|step [0-9]+: val|test_|heldout" $OUT/train_$p.log | tail -12
  cp /tmp/r/$p/summary.json $OUT/summary_$p.json; cp /tmp/r/$p/metrics.jsonl $OUT/metrics_$p.jsonl
  [ -f /tmp/r/$p/monitor.png ] && cp /tmp/r/$p/monitor.png $OUT/monitor_$p.png
else
  for prompt in "ROMEO:" "First Citizen:" "KING HENRY:"; do
    python3 -m semsim generate /tmp/r/sphere-ebm/best --prompt "$prompt" --max-new-tokens 60 --top-k 50 \
      --seed 0 --no-stream >> $OUT/samples_sphere-ebm.txt 2>&1; echo "----" >> $OUT/samples_sphere-ebm.txt
  done
  cat $OUT/samples_sphere-ebm.txt
  python3 -m semsim diagnose all /tmp/r/sphere-ebm/best --data tinyshakespeare --out $OUT/diagnose --seqs 32 \
    --seq-len 512 --quiet > $OUT/diagnose.log 2>&1; tail -30 $OUT/diagnose.log
  cp /tmp/r/sphere-ebm/metrics.jsonl $OUT/diagnose/ 2>/dev/null
fi
