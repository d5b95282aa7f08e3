"""Values that type-check but cannot run: refused before any work, naming the field.

``RunConfig`` parsing already checks types; these are the ranges. Model configs of every family
are checked by the same generic rules (counts ≥ 1, finite numbers) plus the few relations a
family needs (heads divide the width, decays inside (0, 1)).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from semsim.errors import SemsimError

_ZERO_ALLOWED: set[str] = {"soc_every", "manifold_seed"}  # model fields that may be 0
# Model floats that must be > 0 (steps, temperatures, scales of a division).
_POSITIVE = {"dt", "tau", "legt_theta", "gumbel_tau_start", "gumbel_tau_end", "creation_temp", "temperature",
             "settle_dt", "kappa_min", "kappa_max"}
_NON_NEGATIVE = {"gamma", "mass_scale", "v_reg", "dropout", "settle_friction", "pull", "dsm_weight",
                 "balance_weight", "geometry_weight"}
_UNIT_OPEN = {"salience_decay", "salience_floor", "merge_cos", "soc_threshold"}  # strictly inside (0, 1)
_MAX_SIZE = 2**31 - 1  # larger model sizes overflow tensor shapes before they could be allocated


def _fail(key: str, value: Any, need: str) -> None:
    raise SemsimError(f"{key} = {value!r} is out of range: {need}")


def check_model_config(cfg: Any) -> None:
    for f in dataclasses.fields(cfg):
        key, v = f"model.{f.name}", getattr(cfg, f.name)
        if isinstance(v, bool) or v is None or isinstance(v, str):
            continue
        if isinstance(v, int):
            if v < 0 or (v == 0 and f.name not in _ZERO_ALLOWED):
                _fail(key, v, "must be ≥ 1" if f.name not in _ZERO_ALLOWED else "must be ≥ 0")
            if v > _MAX_SIZE:
                _fail(key, v, f"must be ≤ {_MAX_SIZE:,} (a size, not a count of atoms)")
        elif isinstance(v, float):
            if not math.isfinite(v):
                _fail(key, v, "must be finite")
            if f.name in _POSITIVE and v <= 0:
                _fail(key, v, "must be > 0")
            if f.name in _NON_NEGATIVE and v < 0:
                _fail(key, v, "must be ≥ 0")
            if f.name in _UNIT_OPEN and not 0 < v < 1:
                _fail(key, v, "must lie strictly between 0 and 1")
        elif isinstance(v, tuple) and f.name == "ema_alphas":
            if not v or any(not 0 < a < 1 for a in v):
                _fail(key, v, "needs one or more decays, each strictly between 0 and 1")
        elif isinstance(v, tuple) and f.name in ("scales", "dsm_sigmas", "curriculum_temperature") and (
                v or f.name != "curriculum_temperature"):
            if not v or any(not (isinstance(a, (int, float)) and a > 0) for a in v):
                _fail(key, v, "needs one or more values, each > 0")
    if getattr(cfg, "kappa_min", 0) >= getattr(cfg, "kappa_max", 1):
        _fail("model.kappa_min", cfg.kappa_min, f"must be below model.kappa_max = {cfg.kappa_max} (κ bounds inverted)")
    if getattr(cfg, "k", 0) > getattr(cfg, "splats", 2**62):
        _fail("model.k", cfg.k, f"nearest splats must be ≤ model.splats = {cfg.splats}")
    curriculum = getattr(cfg, "curriculum", ())
    if curriculum:
        if any(not cfg.k <= n <= cfg.splats for n in curriculum) or list(curriculum) != sorted(curriculum):
            _fail("model.curriculum", curriculum, f"needs splats per phase, non-decreasing, each between model.k = "
                  f"{cfg.k} and model.splats = {cfg.splats} (the capacity)")
    temps = getattr(cfg, "curriculum_temperature", ())
    if curriculum and temps and len(temps) != len(curriculum):
        _fail("model.curriculum_temperature", temps, f"needs one temperature per curriculum phase ({len(curriculum)})")
    if getattr(cfg, "top_experts", 0) > getattr(cfg, "experts", 2**62):
        _fail("model.top_experts", cfg.top_experts, f"must be ≤ model.experts = {cfg.experts}")
    if getattr(cfg, "dropout", 0.0) >= 1:
        _fail("model.dropout", cfg.dropout, "must be < 1")
    if getattr(cfg, "block_size", 2) < 2:
        _fail("model.block_size", cfg.block_size, "must be ≥ 2 (a next-token target needs two tokens)")
    n_positions = getattr(cfg, "n_positions", None)
    if n_positions is not None and n_positions < cfg.block_size:
        _fail("model.n_positions", n_positions, f"must be ≥ model.block_size = {cfg.block_size} (or null)")
    schedule = getattr(cfg, "schedule", None)
    if schedule is not None:
        from semsim.models.hybrid import check_schedule

        why = check_schedule(schedule, cfg.n_layer)
        if why:
            _fail("model.schedule", schedule, why)
    n_head = getattr(cfg, "n_head", None)
    if n_head and cfg.d_model % n_head:
        _fail("model.n_head", n_head, f"must divide model.d_model = {cfg.d_model}")


def check_train_config(tc: Any) -> None:
    at_least_one = ("steps", "batch_size", "grad_accum", "eval_tokens", "eval_batch_size", "log_interval")
    for name in at_least_one:
        if getattr(tc, name) < 1:
            _fail(f"train.{name}", getattr(tc, name), "must be ≥ 1")
    for name in ("warmup_steps", "eval_interval", "ckpt_interval", "seed", "patience"):
        if getattr(tc, name) < 0:
            _fail(f"train.{name}", getattr(tc, name), "must be ≥ 0")
    for name in ("lr", "grad_clip"):
        v = getattr(tc, name)
        if not (math.isfinite(v) and v > 0):
            _fail(f"train.{name}", v, "must be a finite number > 0")
    for name in ("weight_decay", "eval_interval_s"):
        v = getattr(tc, name)
        if not (math.isfinite(v) and v >= 0):
            _fail(f"train.{name}", v, "must be a finite number ≥ 0")
    for name in ("beta1", "beta2"):
        if not 0 <= getattr(tc, name) < 1:
            _fail(f"train.{name}", getattr(tc, name), "must lie in [0, 1)")
    if not 0 <= tc.min_lr_ratio <= 1:
        _fail("train.min_lr_ratio", tc.min_lr_ratio, "must lie in [0, 1]")
    if tc.time_budget is not None and not (math.isfinite(tc.time_budget) and tc.time_budget > 0):
        _fail("train.time_budget", tc.time_budget, "must be a number of seconds > 0")
    if tc.lr_schedule not in ("cosine", "cosine-hold"):
        _fail("train.lr_schedule", tc.lr_schedule, "cosine or cosine-hold")
    if tc.lr_schedule == "cosine-hold" and not tc.warmup_steps <= tc.lr_decay_steps <= tc.lr_hold_steps:
        _fail("train.lr_decay_steps", tc.lr_decay_steps, f"needs train.warmup_steps ≤ lr_decay_steps ≤ lr_hold_steps "
              f"(= {tc.lr_hold_steps})")
    if not 0 <= tc.ema < 1:
        _fail("train.ema", tc.ema, "must lie in [0, 1) (0: no EMA of the weights)")
    if tc.compile_scope not in ("whole", "regional"):
        _fail("train.compile_scope", tc.compile_scope, "whole or regional")
    if tc.dtype not in ("auto", "fp32", "bf16"):
        _fail("train.dtype", tc.dtype, "auto, fp32 or bf16")
    if not (tc.device in ("auto", "cpu", "cuda") or tc.device.startswith("cuda:")):
        _fail("train.device", tc.device, "auto, cpu, cuda or cuda:N")


def check_data_config(dc: Any) -> None:
    for name in ("val_fraction", "test_share"):
        if not 0 < getattr(dc, name) < 1:
            _fail(f"data.{name}", getattr(dc, name), "must lie strictly between 0 and 1")
    for name in ("train_token_cap", "val_token_cap"):
        v = getattr(dc, name)
        if v is not None and v < 1:
            _fail(f"data.{name}", v, "must be ≥ 1 (or null for no cap)")
    if not dc.corpus:
        _fail("data.corpus", dc.corpus, "name a corpus or a path")
    if dc.tokenizer not in ("gpt2", "bpe1024"):
        _fail("data.tokenizer", dc.tokenizer, "gpt2 or bpe1024")
