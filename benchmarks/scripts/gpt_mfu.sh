#!/usr/bin/env bash
# The baseline's MFU: where the compiled GPT step spends its time (profile; GPU-busy share
# of the wall step), and how MFU moves with batch size (16 = the recipe, 64), side by side; then a
# profile of the regional-compiled PARFLM-SQ3 step for the next speed work.
set -uo pipefail
export PYTHONPATH=src PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name --format=csv,noheader
timeout 120 python3 benchmarks/budget_run.py --preset gpt-baseline --compile whole --profile 2>&1 \
  | grep -v -i warn | tee $OUT/profile_gpt-baseline_whole.txt | tail -32
timeout 150 python3 benchmarks/speed.py --out $OUT/speed_gpt_batch.json --steps 30 --warmup 5 \
  b16=gpt-baseline@whole b64=gpt-baseline:train.batch_size=64@whole 2>&1 | grep -v -i warn
timeout 200 python3 benchmarks/budget_run.py --preset parflm-multixi-sq3 --compile regional --profile 2>&1 \
  | grep -v -i warn | tee $OUT/profile_parflm-multixi-sq3_regional.txt | tail -32
