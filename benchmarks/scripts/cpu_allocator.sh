#!/usr/bin/env bash
# CPU: 40 training steps of the demo preset with glibc's default allocator behaviour vs semsim's
# keep_freed_memory (src/semsim/runtime.py), same machine, back to back. Writes cpu_allocator.json.
set -euo pipefail
out=${1:-benchmarks/results/cpu-allocator/cpu_allocator.json}
run() {  # $1 = SEMSIM_KEEP_FREED_MEMORY value
  SEMSIM_KEEP_FREED_MEMORY=$1 /usr/bin/time -f "%e %U %S" -o /tmp/semsim_time_$1 .venv/bin/semsim train --preset demo \
    --out /tmp/semsim_alloc_$1 train.steps=40 train.eval_interval=0 train.causal_probe=false train.progress=false \
    > /tmp/semsim_alloc_$1.log 2>&1
  python3 - "$1" <<'PY'
import json, sys
k = sys.argv[1]
wall, user, sys_t = open(f"/tmp/semsim_time_{k}").read().split()
s = json.load(open(f"/tmp/semsim_alloc_{k}/summary.json"))
print(json.dumps({"keep_freed_memory": k != "0", "process_wall_s": float(wall), "user_s": float(user),
                  "sys_s": float(sys_t), "train_wall_s": s["wall_s"], "tokens_per_s_last_interval": s["tokens_per_s"]}))
PY
}
{ echo "["; run 0; echo ","; run 1; echo "]"; } > "$out"
cat "$out"
