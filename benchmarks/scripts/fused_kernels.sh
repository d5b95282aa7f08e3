#!/usr/bin/env bash
# Fused kernels vs the reference paths they replace, in one process on one GPU: training-step time,
# tokens/s, peak memory (and compile time where compiled) of the five published-size presets, batch
# 16 x 512, AdamW, clip 1.0, random tokens, median of 20 steps after 5; then the top CUDA kernels of
# each fused variant. graph=1: the whole step replayed as a CUDA graph (eager, or compiled in `compile`).
# Usage: bash benchmarks/scripts/fused_kernels.sh [eager|fp32|compile|compile-pair|combo]; results in $OUT.
set -uo pipefail
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
cd benchmarks
case "${1:-eager}" in
eager)
  v=""
  for p in gpt-baseline splm-multixi splm-multixi-sq3 parflm-multixi-sq3 fock-parflm-sq3; do
    l=${p//-/_}
    v="$v ${l}_ref=$p@kernels=reference ${l}_fused=$p ${l}_fused_graph=$p@graph=1"
  done
  python3 speed.py --out $OUT/fused_kernels_bf16.json --steps 20 --warmup 5 --profile 12 $v 2>&1 | grep -v -i warn ;;
fp32)
  python3 speed.py --out $OUT/fused_kernels_fp32.json --steps 20 --warmup 5 \
    gpt_ref_fp32=gpt-baseline@kernels=reference,dtype=fp32 gpt_fused_fp32=gpt-baseline@dtype=fp32 \
    splm_multixi_ref_fp32=splm-multixi@kernels=reference,dtype=fp32 splm_multixi_fused_fp32=splm-multixi@dtype=fp32 \
    splm_multixi_ref_tf32=splm-multixi@kernels=reference,dtype=tf32 splm_multixi_fused_tf32=splm-multixi@dtype=tf32 \
    2>&1 | grep -v -i warn ;;
compile)
  # each variant in its own process with empty Inductor and Triton caches: the compile time is a cold one
  for v in gpt_whole_graph=gpt-baseline@whole,graph=1 \
           splm_multixi_whole_graph=splm-multixi@whole,graph=1 splm_multixi_regional_graph=splm-multixi@model,graph=1 \
           splm_multixi_sq3_whole_graph=splm-multixi-sq3@whole,graph=1 \
           splm_multixi_sq3_regional_graph=splm-multixi-sq3@model,graph=1; do
    TORCHINDUCTOR_CACHE_DIR=$(mktemp -d) TRITON_CACHE_DIR=$(mktemp -d) \
      python3 speed.py --out $OUT/fused_kernels_compile_${v%%=*}.json --steps 20 --warmup 5 $v 2>&1 | grep -v -i warn
  done ;;
compile-pair)
  # the pairwise families, regionally compiled (one integration step), as `compile`
  for v in parflm_multixi_sq3_regional_graph=parflm-multixi-sq3@model,graph=1 \
           fock_parflm_sq3_regional_graph=fock-parflm-sq3@model,graph=1; do
    TORCHINDUCTOR_CACHE_DIR=$(mktemp -d) TRITON_CACHE_DIR=$(mktemp -d) \
      python3 speed.py --out $OUT/fused_kernels_compile_${v%%=*}.json --steps 20 --warmup 5 $v 2>&1 | grep -v -i warn
  done ;;
combo)
  # Inductor's combo kernels (independent small kernels launched as one) off and on, each compiled variant
  # beside its pair in one process, with Inductor's caches off so each pair member compiles from scratch
  TORCHINDUCTOR_FORCE_DISABLE_CACHES=1 TORCHINDUCTOR_CACHE_DIR=$(mktemp -d) TRITON_CACHE_DIR=$(mktemp -d) \
    timeout 560 python3 speed.py --out $OUT/fused_kernels_combo.json --steps 20 --warmup 5 \
    gpt_whole=gpt-baseline@whole,graph=1 gpt_whole_combo=gpt-baseline@whole,graph=1,inductor=combo_kernels \
    splm_multixi_regional=splm-multixi@model,graph=1 \
    splm_multixi_regional_combo=splm-multixi@model,graph=1,inductor=combo_kernels \
    sq3_regional=splm-multixi-sq3@model,graph=1 sq3_regional_combo=splm-multixi-sq3@model,graph=1,inductor=combo_kernels \
    sq3_whole=splm-multixi-sq3@whole,graph=1 sq3_whole_combo=splm-multixi-sq3@whole,graph=1,inductor=combo_kernels \
    splm_multixi_whole=splm-multixi@whole,graph=1 \
    splm_multixi_whole_combo=splm-multixi@whole,graph=1,inductor=combo_kernels 2>&1 | grep -v -i warn ;;
esac
