"""Shared fixtures: the data directory beside the checkout and a per-session corpus cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("SEMSIM_DATA_DIR", REPO.parent / "shared" / "data"))

from semsim.runtime import keep_freed_memory  # noqa: E402

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
keep_freed_memory()  # same CPU allocator tuning as the CLI


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (DATA_DIR / "gpt2" / "encoder.json").is_file():
        pytest.skip(f"shared data not found at {DATA_DIR} (set SEMSIM_DATA_DIR)")
    return DATA_DIR


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("corpora")


@pytest.fixture(autouse=True)
def _data_env(monkeypatch, request):
    """Point semsim at the shared data and the session cache unless a test says otherwise."""
    if DATA_DIR.is_dir():
        monkeypatch.setenv("SEMSIM_DATA_DIR", str(DATA_DIR))
    monkeypatch.setenv("SEMSIM_CACHE_DIR", str(request.getfixturevalue("cache_dir")))


@pytest.fixture(scope="session")
def shakespeare(data_dir, cache_dir):
    from semsim.config import DataConfig
    from semsim.data import prepare_corpus

    return prepare_corpus(DataConfig(data_dir=str(data_dir), cache_dir=str(cache_dir)), log=lambda m: None)
