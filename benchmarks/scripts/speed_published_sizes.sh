#!/usr/bin/env bash
# Training-step time, tokens/s and peak memory of every full-size preset at the published sizes
# (batch 16 x 512, bf16 autocast, AdamW, eager), all in one process beside the GPT baseline.
# Results land in $OUT (benchmarks/results/speed-published-sizes/).
set -uo pipefail
export PYTHONPATH=src SEMSIM_CACHE_DIR=/tmp/semsim-cache PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 benchmarks/speed.py --out $OUT/speed_published_sizes.json --steps 20 --warmup 5 \
  gpt_baseline=gpt-baseline splm_vanilla=splm-vanilla splm_multixi=splm-multixi \
  splm_multixi_autograd=splm-multixi:model.force=autograd splm_multixi_sq3=splm-multixi-sq3 \
  parflm_multixi=parflm-multixi parflm_multixi_sq3=parflm-multixi-sq3 fock_parflm_sq3=fock-parflm-sq3 \
  hybrid_splm_attn=hybrid-splm-attn 2>&1
