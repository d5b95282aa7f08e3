"""Named run configurations (litgpt-style registry). ``semsim presets`` lists them.

Full-size presets follow the published recipe (TinyStories capped at 5M training tokens,
16,000 steps of 16 × 512 tokens, AdamW lr 5e-4 cosine, 400 warm-up steps, weight decay 0.01,
clip 1.0); ``*-tiny`` presets are for tests and CPU smoke runs on Tiny Shakespeare.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from semsim.config import DataConfig, RunConfig, TrainConfig
from semsim.errors import SemsimError
from semsim.models.fock import FockConfig
from semsim.models.gpt import GPTConfig
from semsim.models.hybrid import HybridConfig
from semsim.models.manifold_lm import ManifoldLMConfig
from semsim.models.parflm import PARFLMConfig
from semsim.models.sphere_ebm import SphereEBMConfig
from semsim.models.splm import SPLMConfig

_PRESETS: dict[str, tuple[str, Callable[[], RunConfig]]] = {}


def preset(name: str, summary: str):
    def deco(fn: Callable[[], RunConfig]) -> Callable[[], RunConfig]:
        _PRESETS[name] = (summary, fn)
        return fn

    return deco


# Published parameter counts the presets are sized to (each within 0.5%, tested), with where they come from.
PUBLISHED_PARAMS: dict[str, tuple[float, str]] = {
    "gpt-baseline": (19_446_528, "matched attention baseline, reference implementation"),
    "splm-multixi": (16_539_912, "multi-ξ SPLM, reference implementation (paper: 16.5M)"),
    "parflm-multixi": (16_583_635, "reference run summary of the multi-ξ PARF scale-up, MLP V_θ, v_depth 3"),
    "parflm-multixi-sq3": (17_335_568, "PARFLM-SQ3, paper"),
    "fock-parflm-sq3": (17.4e6, "Fock-PARFLM v2.1, paper"),
    "gpt-shakespeare": (8.05e6, "paper, Tiny Shakespeare matched attention"),
    "splm-shakespeare": (7.12e6, "paper, Tiny Shakespeare SPLM"),
    "parf-shakespeare": (6.54e6, "paper, PARF structural cell"),
    "hybrid-shakespeare": (7_916_163, "reference, AAAASSSS at v_hidden 512"),
}


def preset_names() -> list[str]:
    return sorted(_PRESETS)


def describe() -> list[tuple[str, str]]:
    return [(n, _PRESETS[n][0]) for n in preset_names()]


def get_preset(name: str) -> RunConfig:
    if name not in _PRESETS:
        raise SemsimError(f"unknown preset {name!r}; run `semsim presets` to list them")
    return _PRESETS[name][1]()


def _published_train() -> TrainConfig:
    return TrainConfig(steps=16000, batch_size=16, lr=5e-4, warmup_steps=400, weight_decay=0.01,
                       grad_clip=1.0, eval_interval=1000, ckpt_interval=2000)


def _tinystories() -> DataConfig:
    return DataConfig(corpus="tinystories", train_token_cap=5_000_000)


def _tiny_train() -> TrainConfig:
    return TrainConfig(steps=300, batch_size=16, lr=3e-3, warmup_steps=30, eval_interval=100,
                       eval_tokens=16384, ckpt_interval=0, log_interval=10)


# The published full-size models train on 512-token windows with a 1024-row position table.
PUBLISHED_POSITIONS = 1024


def _published_splm(cls=SPLMConfig, **kw):
    return cls(n_positions=PUBLISHED_POSITIONS, **kw)


def _tiny_splm(**kw) -> SPLMConfig:
    return SPLMConfig(block_size=64, d_model=64, n_layer=4, hidden=128, **kw)


# ---------------------------------------------------------------------------- baseline
@preset("gpt-baseline", "matched GPT decoder: d=256, 8 layers, 8 heads, 1024 positions (published 19,446,528)")
def _gpt_baseline() -> RunConfig:
    return RunConfig(GPTConfig(n_positions=PUBLISHED_POSITIONS), _published_train(), _tinystories())


@preset("gpt-tiny", "2-layer d=64 GPT for tests and CPU smoke runs")
def _gpt_tiny() -> RunConfig:
    return RunConfig(GPTConfig(block_size=64, d_model=64, n_layer=2, n_head=4), _tiny_train(), DataConfig())


# ---------------------------------------------------------------------------- SPLM
@preset("splm-vanilla", "SPLM, cumulative-mean ξ, MLP V_θ (hidden 1024, depth 3)")
def _splm_vanilla() -> RunConfig:
    return RunConfig(_published_splm(context="cummean"), _published_train(), _tinystories())


@preset("splm-multixi", "SPLM, 4 learnable EMAs ξ (Multi-ξ), MLP V_θ")
def _splm_multixi() -> RunConfig:
    return RunConfig(_published_splm(context="ema"), _published_train(), _tinystories())


@preset("splm-multixi-sq3", "SPLM, Multi-ξ, SQ3 mixture of 8 diagonal wells")
def _splm_multixi_sq3() -> RunConfig:
    return RunConfig(_published_splm(context="ema", potential="sq3"), _published_train(), _tinystories())


@preset("splm-tiny", "tiny SPLM (cumulative mean, MLP) for tests")
def _splm_tiny() -> RunConfig:
    return RunConfig(_tiny_splm(context="cummean"), _tiny_train(), DataConfig())


@preset("splm-multixi-tiny", "tiny Multi-ξ SPLM (MLP) for tests")
def _splm_multixi_tiny() -> RunConfig:
    return RunConfig(_tiny_splm(context="ema"), _tiny_train(), DataConfig())


@preset("splm-multixi-sq3-tiny", "tiny Multi-ξ SPLM with SQ3 wells for tests")
def _splm_multixi_sq3_tiny() -> RunConfig:
    return RunConfig(_tiny_splm(context="ema", potential="sq3"), _tiny_train(), DataConfig())


# ---------------------------------------------------------------------------- pairwise, registers, hybrid
@preset("parflm-multixi", "PARFLM: Multi-ξ SPLM + pairwise V_φ over top-8 earlier tokens, MLP V_θ")
def _parflm_multixi() -> RunConfig:
    return RunConfig(_published_splm(PARFLMConfig, context="ema"), _published_train(), _tinystories())


@preset("parflm-multixi-sq3", "PARFLM with SQ3 V_θ (published 12.27 val PPL, 17.3M params)")
def _parflm_multixi_sq3() -> RunConfig:
    return RunConfig(_published_splm(PARFLMConfig, context="ema", potential="sq3"), _published_train(), _tinystories())


@preset("fock-parflm", "Fock-PARFLM v2.1: PARFLM + 16 register particles on a LIFO stack, MLP V_θ")
def _fock_parflm() -> RunConfig:
    return RunConfig(_published_splm(FockConfig, context="ema"), _published_train(), _tinystories())


@preset("fock-parflm-sq3", "Fock-PARFLM v2.1 with SQ3 V_θ (published 10.36 val PPL, 17.4M params)")
def _fock_parflm_sq3() -> RunConfig:
    return RunConfig(_published_splm(FockConfig, context="ema", potential="sq3"), _published_train(), _tinystories())


@preset("hybrid-splm-attn", "layer schedule AAAASSSS: 4 causal attention blocks, then 4 Multi-ξ SPLM steps")
def _hybrid() -> RunConfig:
    return RunConfig(_published_splm(HybridConfig, context="ema", schedule="AAAASSSS", n_layer=4), _published_train(),
                     _tinystories())


def _tiny_pair(**kw) -> dict:
    return dict(block_size=64, d_model=64, n_layer=4, hidden=128, context="ema", pair_k=4, pair_score_dim=16,
                pair_type_dim=16, pair_angle_dim=16, pair_hidden=32, **kw)


@preset("parflm-tiny", "tiny PARFLM (SQ3) for tests")
def _parflm_tiny() -> RunConfig:
    return RunConfig(PARFLMConfig(**_tiny_pair(potential="sq3")), _tiny_train(), DataConfig())


@preset("fock-parflm-tiny", "tiny Fock-PARFLM (SQ3) for tests")
def _fock_tiny() -> RunConfig:
    return RunConfig(FockConfig(**_tiny_pair(potential="sq3"), registers=8, register_key_dim=16), _tiny_train(),
                     DataConfig())


@preset("hybrid-tiny", "tiny SPLM+attention hybrid for tests")
def _hybrid_tiny() -> RunConfig:
    return RunConfig(HybridConfig(block_size=64, d_model=64, n_layer=2, hidden=128, context="ema",
                                  schedule="AASS", n_head=4), _tiny_train(), DataConfig())


# ---------------------------------------------------------------------------- hypersphere energy model
@preset("sphere-ebm", "hypersphere EBM: 640-d sphere, splats 5K → 30K → 50K (k=64, T 1.0 → 0.7 → 0.5), 3-scale "
        "causal encoder, top-2 of 4 experts, criticality-driven merge/prune; AdamW 1e-4")
def _sphere_ebm() -> RunConfig:
    model = SphereEBMConfig(splats=50_000, curriculum=(5_000, 30_000, 50_000), curriculum_temperature=(1.0, 0.7, 0.5))
    return RunConfig(model, dataclasses.replace(_published_train(), lr=1e-4), _tinystories())


@preset("sphere-ebm-tiny", "tiny hypersphere EBM for tests")
def _sphere_ebm_tiny() -> RunConfig:
    model = SphereEBMConfig(block_size=64, d_embed=64, latent=32, scales=(4, 16, 64), splats=256, k=16,
                            expert_hidden=128, curriculum=(64, 128, 256), curriculum_temperature=(1.0, 0.8, 0.6),
                            soc_every=10, soc_history=3, dead_age=40)
    return RunConfig(model, _tiny_train(), DataConfig())


# ---------------------------------------------------------------------------- the manifold graph LM (1,024-token BPE)
# Both arms of the small-model comparison: the same vocabulary (a byte-level BPE fitted to the training text),
# the same recipe (cosine to 0.1× by step 3,400, hold to 5,500, linear warm-down; weight EMA 0.999 with the
# best dev snapshot), sized to fit a 16,000,000-byte int8 + zlib artifact.
def _bpe1024_train() -> TrainConfig:
    return TrainConfig(steps=6500, batch_size=16, lr=1e-3, warmup_steps=100, lr_schedule="cosine-hold",
                       lr_decay_steps=3400, lr_hold_steps=5500, ema=0.999, keep_best=True, eval_interval=250)


@preset("manifold-lm", "manifold-guided graph LM: hidden 500, 4 hops of graph message passing (sparsemax routing, "
        "parallel transport) + 2-head manifold attention; 1,024-token BPE; EMA 0.999")
def _manifold_lm() -> RunConfig:
    return RunConfig(ManifoldLMConfig(), _bpe1024_train(), DataConfig(tokenizer="bpe1024"))


@preset("gpt-bpe1024", "GPT baseline on the same 1,024-token BPE, sized to the same 16 MB artifact: d=384, 8 layers")
def _gpt_bpe1024() -> RunConfig:
    return RunConfig(GPTConfig(vocab_size=1024, d_model=384, n_layer=8, n_head=6), _bpe1024_train(),
                     DataConfig(tokenizer="bpe1024"))


@preset("manifold-lm-tiny", "tiny manifold graph LM for tests (a 40-step manifold)")
def _manifold_lm_tiny() -> RunConfig:
    model = ManifoldLMConfig(block_size=64, d_model=64, hops=2, window=32, manifold_steps=40, spectral_modes=32,
                             svd_dims=16, graph_k=8)
    return RunConfig(model, dataclasses.replace(_tiny_train(), ema=0.99), DataConfig(tokenizer="bpe1024"))


@preset("gpt-bpe1024-tiny", "tiny GPT on the 1,024-token BPE for tests")
def _gpt_bpe1024_tiny() -> RunConfig:
    return RunConfig(GPTConfig(vocab_size=1024, block_size=64, d_model=64, n_layer=2, n_head=4), _tiny_train(),
                     DataConfig(tokenizer="bpe1024"))


# ---------------------------------------------------------------------------- the paper's Tiny Shakespeare runs
# d = 128, 8 layers, 128-token windows with a 256-row position table; 4,000 steps of 16 × 128, AdamW 5e-4
# cosine, 200 warm-up, weight decay 0.01, clip 1.0; the last 5% of the GPT-2 token stream held out
# (321,124 train / 16,901 held-out tokens), split into a dev slice (validation, keep_best) and a test slice.
SHAKESPEARE_POSITIONS = 256


def _shakespeare_train() -> TrainConfig:
    return TrainConfig(steps=4000, batch_size=16, lr=5e-4, warmup_steps=200, weight_decay=0.01, grad_clip=1.0,
                       eval_interval=200, keep_best=True, eval_tokens=65536, ckpt_interval=1000)


def _shakespeare_data() -> DataConfig:
    return DataConfig(corpus="tinyshakespeare", val_fraction=0.05)


def _shakespeare_splm(cls=SPLMConfig, **kw):
    base = dict(block_size=128, n_positions=SHAKESPEARE_POSITIONS, d_model=128, n_layer=8, hidden=512, depth=3,
                context="cummean", gamma=0.30, mass="logfreq", layer_norm=True)
    return cls(**{**base, **kw})


@preset("gpt-shakespeare", "paper's matched attention baseline: d=128, 8 layers, 4 heads, MLP×4, block 128 (~8.05M)")
def _gpt_shakespeare() -> RunConfig:
    model = GPTConfig(block_size=128, n_positions=SHAKESPEARE_POSITIONS, d_model=128, n_layer=8, n_head=4, mlp_ratio=4)
    return RunConfig(model, _shakespeare_train(), _shakespeare_data())


@preset("splm-shakespeare", "paper's SPLM: cumulative-mean ξ, V_θ 512×3 hidden, γ=0.30 fixed, logfreq mass, "
        "LayerNorm after each step (~7.12M)")
def _splm_shakespeare() -> RunConfig:
    return RunConfig(_shakespeare_splm(), _shakespeare_train(), _shakespeare_data())


@preset("parf-shakespeare", "paper's PARF structural cell: the SPLM with V_θ 128×3 hidden and a structural V_φ "
        "over every earlier token (k = block), learned γ (~6.54M)")
def _parf_shakespeare() -> RunConfig:
    model = _shakespeare_splm(PARFLMConfig, hidden=128, learn_gamma=True, pair_k=128, pair_variant="structural",
                              pair_score_dim=16, pair_type_dim=16, pair_angle_dim=16, pair_hidden=32)
    return RunConfig(model, _shakespeare_train(), _shakespeare_data())


@preset("hybrid-shakespeare", "paper's layer-schedule hybrid AAAASSSS at the Shakespeare shape (set "
        "model.schedule=SASASASA, SSAAAASS, …; n_layer = the number of S)")
def _hybrid_shakespeare() -> RunConfig:
    model = _shakespeare_splm(HybridConfig, schedule="AAAASSSS", n_layer=4, n_head=4, mlp_ratio=4)
    return RunConfig(model, _shakespeare_train(), _shakespeare_data())


@preset("demo", "the README's main job: a small Multi-ξ SPLM on Tiny Shakespeare, a few CPU minutes")
def _demo() -> RunConfig:
    model = SPLMConfig(block_size=64, d_model=96, n_layer=4, hidden=192, context="ema")
    train = dataclasses.replace(_tiny_train(), steps=600, batch_size=16, lr=4e-3, warmup_steps=50,
                                eval_interval=150, eval_tokens=32768)
    return RunConfig(model, train, DataConfig())
