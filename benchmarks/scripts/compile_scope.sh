#!/usr/bin/env bash
# Regional compilation of the SPLM layer vs whole-graph torch.compile vs eager, side by side
# (compile time = first step, and median step time), plus compiled-vs-eager equivalence.
set -uo pipefail
export PYTHONPATH=src PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name --format=csv,noheader
python3 benchmarks/check_compiled.py splm-multixi-sq3 parflm-multixi-sq3 2>&1 | grep -v -i warn
python3 benchmarks/speed.py --out $OUT/speed_compile_modes.json --steps 20 --warmup 5 \
  gpt_whole=gpt-baseline@whole \
  splm_sq3_eager=splm-multixi-sq3 splm_sq3_whole=splm-multixi-sq3@whole splm_sq3_regional=splm-multixi-sq3@model \
  splm_multixi_regional=splm-multixi@model parflm_sq3_regional=parflm-multixi-sq3@model \
  hybrid_regional=hybrid-splm-attn@model 2>&1 | grep -v -i warn
