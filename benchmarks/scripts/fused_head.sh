#!/usr/bin/env bash
# The fused head (tied output matmul + cross-entropy) beside an earlier version, in one process on one GPU.
# Usage: BEFORE=old/linear_ce.py bash benchmarks/scripts/fused_head.sh [kernel|step]; results in $OUT.
#   kernel: the head alone (loss, ∂h, ∂E at 16 × 512 tokens, vocab 50,257, d 256), chunk and tile sweep
#   step:   whole training steps (AdamW, clip 1.0, random tokens, median of 20 after 5) of the GPT and
#           an SPLM, eager + CUDA graph and whole-graph compiled + CUDA graph, earlier head vs this one
set -uo pipefail
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
BEFORE=$(realpath "${BEFORE:?path of the earlier linear_ce.py}")
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
cd benchmarks
case "${1:-kernel}" in
kernel)
  python3 fused_head.py --out $OUT/fused-head.json --before $BEFORE 2>&1 | grep -v -i warn ;;
step)
  python3 speed.py --out $OUT/fused-head-step.json --steps 20 --warmup 5 \
    gpt_before_graph=gpt-baseline@graph=1,swap=$BEFORE gpt_after_graph=gpt-baseline@graph=1 \
    splm_before_graph=splm-multixi-sq3@graph=1,swap=$BEFORE splm_after_graph=splm-multixi-sq3@graph=1 \
    gpt_before_whole_graph=gpt-baseline@whole,graph=1,swap=$BEFORE gpt_after_whole_graph=gpt-baseline@whole,graph=1 \
    2>&1 | grep -v -i warn ;;
esac
