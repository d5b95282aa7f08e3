#!/usr/bin/env bash
# Issue 4 table: one 9-minute (540 s) budget run of one preset, one device call each; validation every
# EVAL_EVERY seconds (default 10; 32,768 tokens) because on Tiny Shakespeare the best model comes early
# and the run then overfits.
#   bash benchmarks/budget_table.sh PRESET COMPILE_SCOPE [EVAL_EVERY [OVERRIDES...]]   (COMPILE_SCOPE: none | whole | regional)
# Needs .carry/data (copies of ../shared/data/gpt2 and tinyshakespeare); writes to $OUT.
set -uo pipefail
export PYTHONPATH=src PYTHONUNBUFFERED=1 SEMSIM_DATA_DIR=.carry/data SEMSIM_CACHE_DIR=/tmp/semsim-cache
nvidia-smi --query-gpu=name --format=csv,noheader
python3 benchmarks/budget_run.py --preset "$1" --compile "$2" --budget 540 --eval-every "${3:-10}" "${@:4}" \
  --out "$OUT/budget_runs.jsonl" --run-dir /tmp/run 2>&1 | grep -v -i warn
cp /tmp/run/metrics.jsonl "$OUT/metrics_$1_eval${3:-10}s.jsonl"
