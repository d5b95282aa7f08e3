#!/usr/bin/env bash
# The Fock LIFO kernel (equality, before/after), the PARFLM
# regional-compile gradient check by parameter, and the compile cost of PARFLM / Fock per scope.
set -uo pipefail
export PYTHONPATH=src PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -c "import torch, triton; print(torch.__version__, triton.__version__)"
timeout 150 python3 benchmarks/lifo_kernel.py --out $OUT/lifo_kernel.json 2>&1 | grep -v -i warn
timeout 120 python3 benchmarks/check_compiled.py --scope regional parflm-multixi-sq3 2>&1 | grep -v -i warn
timeout 290 python3 benchmarks/speed.py --out $OUT/speed_compile_pair.json --steps 20 --warmup 3 \
  fock_regional=fock-parflm-sq3@model parflm_whole=parflm-multixi-sq3@whole fock_whole=fock-parflm-sq3@whole \
  2>&1 | grep -v -i warn
