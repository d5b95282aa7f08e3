#!/usr/bin/env bash
# The compiled + graphed GPT step (batch 16 x 512, AdamW, clip 1.0) under the options that could raise its
# MFU: its top CUDA kernels; each attention backend; Inductor's max-autotune (Triton matmul templates with
# fused epilogues; the CUDA graph stays ours). Each option runs in a process of its own, its variants side by
# side in that one process (each compiled variant after torch._dynamo.reset()); results in $OUT.
# Usage: bash benchmarks/scripts/gpt_step_options.sh [profile|sdpa|sdpa-repeat|sdpa-graph|autotune]...
set -uo pipefail
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
cd benchmarks
for what in ${@:-profile sdpa autotune}; do
  case $what in
  profile)
    timeout 200 python3 speed.py --out $OUT/gpt-step-profile.json --steps 20 --warmup 5 --profile 40 \
      gpt_whole_graph=gpt-baseline@whole,graph=1 2>&1 | grep -v -i warn ;;
  sdpa)
    timeout 200 python3 speed.py --out $OUT/gpt-step-sdpa.json --steps 20 --warmup 5 \
      gpt_cudnn=gpt-baseline@whole,graph=1,sdpa=cudnn gpt_flash=gpt-baseline@whole,graph=1,sdpa=flash \
      gpt_efficient=gpt-baseline@whole,graph=1,sdpa=efficient 2>&1 | grep -v -i warn ;;
  autotune)
    timeout 400 python3 speed.py --out $OUT/gpt-step-autotune.json --steps 20 --warmup 5 \
      gpt_default=gpt-baseline@whole,graph=1 gpt_autotune=gpt-baseline:train.compile_mode=max-autotune-no-cudagraphs@whole,graph=1 \
      2>&1 | grep -v -i warn ;;
  sdpa-repeat)  # the two close backends alternated twice in one process
    timeout 300 python3 speed.py --out $OUT/gpt-step-sdpa-repeat.json --steps 20 --warmup 5 \
      flash_1=gpt-baseline@whole,graph=1,sdpa=flash cudnn_1=gpt-baseline@whole,graph=1,sdpa=cudnn \
      flash_2=gpt-baseline@whole,graph=1,sdpa=flash cudnn_2=gpt-baseline@whole,graph=1,sdpa=cudnn \
      2>&1 | grep -v -i warn ;;
  sdpa-graph)  # the same, the graphed step without compilation
    timeout 200 python3 speed.py --out $OUT/gpt-step-sdpa-graph.json --steps 20 --warmup 5 \
      flash_1=gpt-baseline@graph=1,sdpa=flash cudnn_1=gpt-baseline@graph=1,sdpa=cudnn \
      flash_2=gpt-baseline@graph=1,sdpa=flash cudnn_2=gpt-baseline@graph=1,sdpa=cudnn \
      2>&1 | grep -v -i warn ;;
  esac
done
