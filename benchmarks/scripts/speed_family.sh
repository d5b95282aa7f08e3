#!/usr/bin/env bash
# Step time / tokens/s of every pairwise and register preset beside the GPT baseline and
# splm-multixi-sq3 (one process, one GPU); the pair force's share of a step is the marginal cost
# 1 - t(splm-multixi-sq3) / t(parflm-multixi-sq3), the same model without V_phi. Then a
# torch.compile probe, and 1,000-step Tiny Shakespeare runs of the two published headline presets.
set -uo pipefail
export PYTHONPATH=src SEMSIM_CACHE_DIR=/tmp/semsim-cache PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name --format=csv,noheader
python3 benchmarks/speed.py --out $OUT/speed_family.json --steps 20 --warmup 5 \
  gpt_baseline=gpt-baseline splm_multixi_sq3=splm-multixi-sq3 parflm_multixi_sq3=parflm-multixi-sq3 \
  parflm_multixi=parflm-multixi fock_parflm_sq3=fock-parflm-sq3 fock_parflm=fock-parflm \
  hybrid_splm_attn=hybrid-splm-attn parflm_multixi_sq3_autograd=parflm-multixi-sq3:model.force=autograd 2>&1
timeout 240 python3 benchmarks/speed.py --compile --out $OUT/speed_compiled.json --steps 20 --warmup 5 \
  gpt_baseline=gpt-baseline splm_multixi_sq3=splm-multixi-sq3 2>&1 | grep -v Warning | tail -4
for p in parflm-multixi-sq3 fock-parflm-sq3; do
  python3 -m semsim train --preset $p --out /tmp/runs/$p data.corpus=tinyshakespeare data.train_token_cap=null \
    train.steps=1000 train.eval_interval=250 train.ckpt_interval=0 train.eval_tokens=32768 \
    train.warmup_steps=100 train.progress=false 2>&1 | grep -E "val loss|error" | tail -n 2
  cp /tmp/runs/$p/metrics.jsonl $OUT/metrics_$p.jsonl
done
