#!/usr/bin/env bash
# Where the time of an SPLM / PARFLM step goes (profiler, eager), and the
# time-budget harness end to end (short budgets, compiled) on Tiny Shakespeare.
set -uo pipefail
export PYTHONPATH=src SEMSIM_CACHE_DIR=/tmp/semsim-cache PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name --format=csv,noheader
for p in splm-multixi-sq3 parflm-multixi-sq3; do
  python3 benchmarks/budget_run.py --preset $p --profile > $OUT/profile_$p.txt 2>&1; head -n 20 $OUT/profile_$p.txt | cut -c1-150
done
for p in gpt-baseline splm-multixi; do
  python3 benchmarks/budget_run.py --preset $p --budget 90 --compile --out $OUT/budget_runs.jsonl 2>&1 | grep -v -i warn | tail -n 1
done
