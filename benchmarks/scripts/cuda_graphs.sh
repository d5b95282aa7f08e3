#!/usr/bin/env bash
# The compiled GPT step is host-bound (profile: GPU-busy share of the wall step), so try
# replaying steps as CUDA graphs (train.compile_mode=reduce-overhead), before/after in one process.
set -uo pipefail
export PYTHONPATH=src PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name --format=csv,noheader
timeout 100 python3 benchmarks/budget_run.py --preset gpt-baseline --compile whole --profile 2>&1 \
  | grep -v -i warn | tee $OUT/profile_gpt-baseline_whole_busy.txt | tail -1
RO=train.compile_mode=reduce-overhead
timeout 420 python3 benchmarks/speed.py --out $OUT/speed_cudagraphs.json --steps 40 --warmup 8 \
  gpt=gpt-baseline@whole gpt_cg=gpt-baseline:$RO@whole \
  splm=splm-multixi@whole splm_cg=splm-multixi:$RO@whole \
  parflm=parflm-multixi-sq3@model parflm_cg=parflm-multixi-sq3:$RO@model 2>&1 | grep -v -i warn
