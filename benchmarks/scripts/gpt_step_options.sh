#!/usr/bin/env bash
# The compiled + graphed GPT step (batch 16 x 512, AdamW, clip 1.0) under the options that could raise its
# MFU: its top CUDA kernels; each attention backend; Inductor's max-autotune (Triton matmul templates with
# fused epilogues; the CUDA graph stays ours) and other Inductor flags; clipping folded into AdamW or not.
# Each option runs in a process of its own, its variants side by side in that one process (each compiled
# variant after torch._dynamo.reset()); results in $OUT.
# Usage: bash benchmarks/scripts/gpt_step_options.sh [profile|sdpa|sdpa-repeat|sdpa-graph|autotune|clip|inductor|combo|final|cold]...
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
  clip)  # clip_grad_norm_ + step() against the clip folded into fused AdamW, alternated twice
    timeout 400 python3 speed.py --out $OUT/gpt-step-clip.json --steps 20 --warmup 5 \
      gpt_separate_1=gpt-baseline@whole,graph=1,clip=separate gpt_folded_1=gpt-baseline@whole,graph=1 \
      gpt_separate_2=gpt-baseline@whole,graph=1,clip=separate gpt_folded_2=gpt-baseline@whole,graph=1 \
      gpt_graph_separate=gpt-baseline@graph=1,clip=separate gpt_graph_folded=gpt-baseline@graph=1 \
      sq3_graph_separate=splm-multixi-sq3@graph=1,clip=separate sq3_graph_folded=splm-multixi-sq3@graph=1 \
      2>&1 | grep -v -i warn ;;
  inductor)  # Inductor flags that tune or merge its own kernels (the cuBLAS / head kernels are untouched)
    timeout 550 python3 speed.py --out $OUT/gpt-step-inductor.json --steps 20 --warmup 5 \
      gpt_default=gpt-baseline@whole,graph=1 \
      gpt_coordinate_descent=gpt-baseline@whole,graph=1,inductor=coordinate_descent_tuning \
      gpt_combo_kernels=gpt-baseline@whole,graph=1,inductor=combo_kernels \
      gpt_aggressive_fusion=gpt-baseline@whole,graph=1,inductor=aggressive_fusion \
      gpt_default_2=gpt-baseline@whole,graph=1 2>&1 | grep -v -i warn ;;
  combo)  # the GPT's compile now has combo kernels on (GPT.compile_for_training); what else helps beside them
    timeout 500 python3 speed.py --out $OUT/gpt-step-combo.json --steps 20 --warmup 5 \
      gpt_combo=gpt-baseline@whole,graph=1 gpt_combo_pdl=gpt-baseline@whole,graph=1,inductor=triton.enable_pdl \
      gpt_combo_benchmarked=gpt-baseline@whole,graph=1,inductor=benchmark_combo_kernel \
      gpt_combo_flash=gpt-baseline@whole,graph=1,sdpa=flash gpt_combo_2=gpt-baseline@whole,graph=1 \
      2>&1 | grep -v -i warn ;;
  final)  # the code's choice (flash first, combo kernels, launch overlap) against cuDNN attention, alternated
    timeout 400 python3 speed.py --out $OUT/gpt-step-final.json --steps 20 --warmup 5 \
      compiled_1=gpt-baseline@whole,graph=1 compiled_cudnn_1=gpt-baseline@whole,graph=1,sdpa=cudnn \
      compiled_2=gpt-baseline@whole,graph=1 compiled_cudnn_2=gpt-baseline@whole,graph=1,sdpa=cudnn \
      graphed_1=gpt-baseline@graph=1 graphed_cudnn_1=gpt-baseline@graph=1,sdpa=cudnn \
      graphed_2=gpt-baseline@graph=1 graphed_cudnn_2=gpt-baseline@graph=1,sdpa=cudnn \
      2>&1 | grep -v -i warn ;;
  cold)  # the compiled + graphed GPT in a process of its own with empty Inductor and Triton caches
    TORCHINDUCTOR_CACHE_DIR=$(mktemp -d) TRITON_CACHE_DIR=$(mktemp -d) timeout 200 python3 speed.py \
      --out $OUT/gpt-step-cold.json --steps 20 --warmup 5 gpt_whole_graph=gpt-baseline@whole,graph=1 \
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
