"""Small public files shipped inside the package so an offline machine runs everything.

* ``gpt2/encoder.json``, ``gpt2/vocab.bpe`` — OpenAI's GPT-2 BPE tables (MIT licence).
* ``tinyshakespeare/input.txt`` — Tiny Shakespeare (public domain, 1,115,394 bytes).

Each file is checked against its published sha256 on first use, so a damaged install is refused
with a clear message instead of silently tokenising differently.
"""

from __future__ import annotations

import functools
import hashlib
from importlib import resources
from pathlib import Path

from semsim.errors import SemsimError

SHA256 = {
    "gpt2/encoder.json": "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
    "gpt2/vocab.bpe": "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
    "tinyshakespeare/input.txt": "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
}


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


@functools.lru_cache(maxsize=None)
def asset_path(name: str) -> Path:
    """Path of a shipped file (``"gpt2/vocab.bpe"``), verified against its sha256 once per process."""
    if name not in SHA256:
        raise KeyError(f"no shipped asset {name!r}; shipped: {sorted(SHA256)}")
    path = Path(str(resources.files(__package__).joinpath(name)))
    if not path.is_file():
        raise SemsimError(f"shipped file {name} is missing from the semsim install at {path}; reinstall semsim")
    got = file_sha256(path)
    if got != SHA256[name]:
        raise SemsimError(
            f"shipped file {path} has sha256 {got[:12]}…, expected {SHA256[name][:12]}…; reinstall semsim"
        )
    return path
