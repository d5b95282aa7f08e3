"""GPT-2 BPE through tiktoken, built from local files only.

tiktoken would download its tables from the network, which offline machines cannot do, so we
build the identical encoding from ``encoder.json`` + ``vocab.bpe``: the copy under
``<data_dir>/gpt2/`` when there is one, else the copy shipped inside semsim (``semsim.assets``).
"""

from __future__ import annotations

import functools
from pathlib import Path

import tiktoken
from tiktoken.load import data_gym_to_mergeable_bpe_ranks

from semsim.assets import asset_path

EOT_TOKEN = "<|endoftext|>"
EOT_ID = 50256
VOCAB_SIZE = 50257

# GPT-2's pre-tokeniser regex (the one tiktoken's own "gpt2" encoding uses).
_GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def tokenizer_files(data_dir: str | None = None) -> tuple[Path, Path]:
    """(encoder.json, vocab.bpe): the data directory's copy if complete, else the shipped one."""
    if data_dir is not None:
        enc_json, vocab_bpe = Path(data_dir) / "gpt2" / "encoder.json", Path(data_dir) / "gpt2" / "vocab.bpe"
        if enc_json.is_file() and vocab_bpe.is_file():
            return enc_json, vocab_bpe
    return asset_path("gpt2/encoder.json"), asset_path("gpt2/vocab.bpe")


@functools.lru_cache(maxsize=4)
def gpt2_tokenizer(data_dir: str | None = None) -> tiktoken.Encoding:
    """The GPT-2 encoding (50,257 ids, ``<|endoftext|>`` = 50256), never downloaded."""
    enc_json, vocab_bpe = tokenizer_files(data_dir)
    ranks = data_gym_to_mergeable_bpe_ranks(str(vocab_bpe), str(enc_json))
    return tiktoken.Encoding(
        name="gpt2", pat_str=_GPT2_PATTERN, mergeable_ranks=ranks, special_tokens={EOT_TOKEN: EOT_ID}
    )


def encode(enc: tiktoken.Encoding, text: str) -> list[int]:
    """Encode text, letting ``<|endoftext|>`` through as the document separator."""
    return enc.encode_ordinary(text) if EOT_TOKEN not in text else enc.encode(
        text, allowed_special={EOT_TOKEN}
    )
