#!/usr/bin/env bash
# The paper's small-scale Tiny Shakespeare experiments, as presets: the matched attention baseline and
# the SPLM with 3 seeds each, the PARF structural cell and the AAAASSSS / SASASASA / SSAAAASS hybrids with
# one seed each; 4,000 steps of 16 × 128 (recipe in semsim/presets.py). All runs share the GPU at once.
# Results (one JSON, one figure, the log) land in $OUT (benchmarks/results/shakespeare-paper/).
set -uo pipefail
export PYTHONPATH=src PYTHONUNBUFFERED=1 SEMSIM_CACHE_DIR=/tmp/semsim-cache
R=/tmp/shakespeare-paper
rm -rf $R; mkdir -p $R
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 -m semsim data prepare tinyshakespeare --val-fraction 0.05   # once, before the runs read it
Q="train.progress=false"
python3 -m semsim train --preset gpt-shakespeare --seeds 0,1,2 --out $R/gpt $Q > $R/gpt.log 2>&1 &
python3 -m semsim train --preset splm-shakespeare --seeds 0,1,2 --out $R/splm $Q > $R/splm.log 2>&1 &
python3 -m semsim train --preset parf-shakespeare --seeds 0 --out $R/parf $Q > $R/parf.log 2>&1 &
for s in AAAASSSS SASASASA SSAAAASS; do
  python3 -m semsim train --preset hybrid-shakespeare --seeds 0 --out $R/hybrid-$s model.schedule=$s $Q > $R/hybrid-$s.log 2>&1 &
done
wait
tail -n 4 $R/*.log
python3 benchmarks/shakespeare_report.py $R --out "$OUT"
