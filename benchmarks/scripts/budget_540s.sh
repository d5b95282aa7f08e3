#!/usr/bin/env bash
# One row of the 540 s budget table: a 9-minute budget run of one preset; validation every
# EVAL_EVERY seconds (default 10; 32,768 tokens) because on Tiny Shakespeare the best model comes early
# and the run then overfits.
#   bash benchmarks/scripts/budget_540s.sh PRESET COMPILE_SCOPE [EVAL_EVERY [OVERRIDES...]]   (COMPILE_SCOPE: none | whole | regional)
# Writes to $OUT.
set -uo pipefail
export PYTHONPATH=src PYTHONUNBUFFERED=1 SEMSIM_CACHE_DIR=/tmp/semsim-cache
nvidia-smi --query-gpu=name --format=csv,noheader
python3 benchmarks/budget_run.py --preset "$1" --compile "$2" --budget 540 --eval-every "${3:-10}" "${@:4}" \
  --out "$OUT/budget_runs.jsonl" --run-dir /tmp/run 2>&1 | grep -v -i warn
cp /tmp/run/metrics.jsonl "$OUT/metrics_$1_eval${3:-10}s.jsonl"
