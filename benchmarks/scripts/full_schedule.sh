#!/usr/bin/env bash
# The published 16,000-step schedule of a preset, end to end on one GPU, timed as a user would run it:
# start-up, corpus preparation, kernel compilation, causal probe, 16 validations, checkpoints and the
# final test evaluation all inside the command's wall time. Tiny Shakespeare stands in for TinyStories
# (it ships with the package); the step cost does not depend on the corpus.
# Usage: bash benchmarks/scripts/full_schedule.sh parflm-multixi-sq3 [fock-parflm-sq3 ...]; results in $OUT, then
# python benchmarks/full_schedule_summary.py $OUT --provenance $OUT/provenance.json writes summary.json.
set -uo pipefail
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
(cd benchmarks && python3 -c "import json, provenance; print(json.dumps(provenance.provenance()))") > "$OUT/provenance.json"
for p in "$@"; do
  start=$(date +%s)
  python3 -m semsim train --preset "$p" --out "/tmp/full-schedule-$p" --force data.corpus=tinyshakespeare \
    train.progress=false > "$OUT/$p.log" 2>&1
  echo "$p: rc $? command_wall_s $(( $(date +%s) - start ))" | tee -a "$OUT/$p.log"
  # the log names the run's paths by role, not by where this machine keeps them
  sed -i -e "s|$PWD/||g" -e "s|$HOME/.cache/semsim|~/.cache/semsim|g" -e "s|/tmp/full-schedule-$p|RUN|g" "$OUT/$p.log"
  cp "/tmp/full-schedule-$p/metrics.jsonl" "$OUT/$p.metrics.jsonl"
done
