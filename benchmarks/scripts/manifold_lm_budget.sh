#!/usr/bin/env bash
# The manifold graph LM against the same-vocabulary GPT (both on the 1,024-token BPE, sized to a 16 MB
# artifact), one arm per device call (a call is limited to 600 s, so BUDGET defaults to 510 s of training,
# set-up and final validation included, not the challenge's 10 minutes):
#   bash benchmarks/scripts/manifold_lm_budget.sh manifold-lm|gpt-bpe1024
# The prepared corpus, its tokenizer and the token manifold are built on the CPU beforehand
# (SEMSIM_CACHE_DIR=.gpu-cache; carried to the device) — the manifold is never built on the GPU machine.
# The schedule's marks (3,400 / 5,500 of 6,500 steps) are kept as fractions of a 65,000-step cap, so the
# wall clock, not the cap, ends the run. Results land in $OUT (benchmarks/results/manifold-lm/).
set -uo pipefail
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1 SEMSIM_CACHE_DIR=$PWD/.gpu-cache
B=${BUDGET:-510}
p=$1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 -c "import torch, triton; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__)"
python3 -m semsim train --preset $p --out /tmp/r/$p --time-budget $B data.corpus=tinyshakespeare \
  train.steps=65000 train.lr_decay_steps=34000 train.lr_hold_steps=55000 train.warmup_steps=1000 \
  train.eval_interval=0 train.eval_interval_s=20 train.eval_tokens=32768 train.ckpt_interval=0 \
  train.progress=false > $OUT/train_$p.log 2>&1
grep -E "rror|step [0-9]+: val|test_|heldout|manifold" $OUT/train_$p.log | tail -8
cp /tmp/r/$p/summary.json $OUT/summary_$p.json; cp /tmp/r/$p/metrics.jsonl $OUT/metrics_$p.jsonl
cd benchmarks && python3 artifact_eval.py /tmp/r/$p --out $OUT/artifact_$p.json 2>&1 | tail -4
