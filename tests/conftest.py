"""Shared fixtures: a data directory ($SEMSIM_DATA_DIR, else semsim's shipped files) and a corpus cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from hypothesis import settings

# Without a GPU the Triton kernels are checked through Triton's interpreter (tests/test_kernels.py); the
# choice must be made before the kernels are defined. CPU tensors elsewhere still take the PyTorch paths.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

from semsim.assets import asset_path
from semsim.runtime import keep_freed_memory


def _data_dir() -> Path:
    """$SEMSIM_DATA_DIR when it holds the tokenizer and Tiny Shakespeare, else the shipped assets folder,
    which has the data directory's layout: with no local data the tests run on what a fresh install has."""
    local = os.environ.get("SEMSIM_DATA_DIR")
    needed = ("gpt2/encoder.json", "gpt2/vocab.bpe", "tinyshakespeare/input.txt")
    if local and all((Path(local) / f).is_file() for f in needed):
        return Path(local)
    return asset_path("gpt2/encoder.json").parents[1]


DATA_DIR = _data_dir()

settings.register_profile("default", max_examples=150)
settings.register_profile("thorough", max_examples=3000)
settings.load_profile(os.environ.get("SEMSIM_HYPOTHESIS_PROFILE", "default"))

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
keep_freed_memory()  # same CPU allocator tuning as the CLI


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA_DIR


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("corpora")


@pytest.fixture(autouse=True)
def _data_env(monkeypatch, request):
    """Point semsim at the data directory and the shared corpus cache unless a test says otherwise."""
    monkeypatch.setenv("SEMSIM_DATA_DIR", str(DATA_DIR))
    monkeypatch.setenv("SEMSIM_CACHE_DIR", str(request.getfixturevalue("cache_dir")))


@pytest.fixture(scope="session")
def shakespeare(data_dir, cache_dir):
    from semsim.config import DataConfig
    from semsim.data import prepare_corpus

    return prepare_corpus(DataConfig(data_dir=str(data_dir), cache_dir=str(cache_dir)), log=lambda m: None)


def make_model(cfg, **context):
    """A random-weight model for tests. A ``logfreq`` mass gets a Zipf-shaped surprisal table
    (u = log(rank + 1) + 1), so masses differ per token as they would on a corpus."""
    from semsim.models import build_model

    if getattr(cfg, "mass", None) == "logfreq" and "surprisal" not in context:
        context["surprisal"] = torch.log(torch.arange(cfg.vocab_size, dtype=torch.float32) + 2.0) + 1.0
    if hasattr(cfg, "manifold_spec") and "manifold" not in context:
        context["manifold"] = random_manifold(cfg)
    return build_model(cfg, **context)


def random_manifold(cfg, seed: int = 0):
    """A token manifold of the right shapes with random content (building a real one takes minutes at
    full size; the tests that use this check decoding and causality, not the manifold)."""
    import numpy as np

    from semsim.manifold import TokenManifold

    rng = np.random.default_rng(seed)
    V, k = cfg.vocab_size, cfg.graph_k
    nbr = (np.arange(V)[:, None] + rng.integers(1, V, (V, k))) % V  # never the token itself
    return TokenManifold(positions=rng.standard_normal((V, cfg.manifold_dim)),
                         features=rng.standard_normal((V, cfg.spectral_modes + cfg.svd_dims)).astype(np.float32),
                         coords=rng.standard_normal((V, cfg.svd_dims)).astype(np.float32),
                         neighbours=nbr.astype(np.int64), weights=rng.uniform(0.1, 1.0, (V, k)).astype(np.float32),
                         eigenvalues=np.sort(rng.standard_normal(cfg.spectral_modes)))
