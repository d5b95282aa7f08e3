#!/usr/bin/env bash
# Decoding cost per token vs context length, SPLM incremental vs GPT KV cache (and both by full
# recomputation): on the GPU (batch 1 and 32), then on the same host's CPU (batch 1 to 16,384 tokens;
# batch 32 to 1,024). Results land in $OUT (results/decode/).
set -uo pipefail
export PYTHONPATH=src PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 benchmarks/decode.py --out "$OUT/decode_cuda.json" --lengths 16 64 256 1024 4096 16384 --batches 1 32 2>&1 | grep -v -i warn
python3 benchmarks/decode.py --device cpu --out "$OUT/decode_cpu.json" --lengths 16 64 256 1024 4096 16384 \
  --batches 1 32 --prefill-max-tokens 32768 --full-max-tokens 32768 --steps 10 2>&1 | grep -v -i warn
python3 benchmarks/decode_report.py "$OUT/decode_cuda.json" "$OUT/decode_cpu.json" --png "$OUT/ms_per_token_vs_T.png"
