#!/usr/bin/env bash
# Step-time table (closed-form vs autograd force, SPLM variants vs GPT) + fixed-step training of the
# GPT baseline and splm-multixi on Tiny Shakespeare. Run from the repo root on a GPU machine;
# results land in $OUT (results/splm-vs-gpt/).
set -uo pipefail
export PYTHONPATH=src SEMSIM_CACHE_DIR=/tmp/semsim-cache PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $OUT/gpu.txt
python3 -c "import torch; print('torch', torch.__version__)" | tee -a $OUT/gpu.txt

python3 benchmarks/speed.py --out $OUT/speed_splm_vs_gpt.json --steps 20 --warmup 5 \
  gpt_baseline=gpt-baseline \
  splm_multixi_closed=splm-multixi \
  splm_multixi_autograd=splm-multixi:model.force=autograd \
  splm_vanilla=splm-vanilla \
  splm_multixi_sq3=splm-multixi-sq3 2>&1

STEPS=${STEPS:-1000}
for p in gpt-baseline splm-multixi; do
  python3 -m semsim train --preset $p --out /tmp/runs/$p data.corpus=tinyshakespeare data.train_token_cap=null \
    train.steps=$STEPS train.eval_interval=100 train.ckpt_interval=0 train.eval_tokens=32768 \
    train.warmup_steps=100 train.progress=false 2>&1 | tail -n 8
  cp /tmp/runs/$p/metrics.jsonl $OUT/metrics_$p.jsonl
  cp /tmp/runs/$p/summary.json $OUT/summary_$p.json
done
