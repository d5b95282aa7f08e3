"""GPT-2 BPE through tiktoken, built from local files when they are there.

Offline machines cannot let tiktoken download its files, so we build the identical encoding
from ``gpt2/encoder.json`` + ``gpt2/vocab.bpe`` under the data directory; only when those are
absent do we fall back to ``tiktoken.get_encoding("gpt2")`` (which downloads and caches).
"""

from __future__ import annotations

import functools
from pathlib import Path

import tiktoken
from tiktoken.load import data_gym_to_mergeable_bpe_ranks

from semsim.errors import SemsimError

EOT_TOKEN = "<|endoftext|>"
EOT_ID = 50256
VOCAB_SIZE = 50257

# GPT-2's pre-tokeniser regex (the one tiktoken's own "gpt2" encoding uses).
_GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


@functools.lru_cache(maxsize=4)
def gpt2_tokenizer(data_dir: str | None = None) -> tiktoken.Encoding:
    """The GPT-2 encoding (50,257 ids, ``<|endoftext|>`` = 50256)."""
    if data_dir is not None:
        enc_json = Path(data_dir) / "gpt2" / "encoder.json"
        vocab_bpe = Path(data_dir) / "gpt2" / "vocab.bpe"
        if enc_json.is_file() and vocab_bpe.is_file():
            ranks = data_gym_to_mergeable_bpe_ranks(str(vocab_bpe), str(enc_json))
            return tiktoken.Encoding(
                name="gpt2",
                pat_str=_GPT2_PATTERN,
                mergeable_ranks=ranks,
                special_tokens={EOT_TOKEN: EOT_ID},
            )
    try:
        return tiktoken.get_encoding("gpt2")
    except Exception as e:  # network errors come in many types
        where = f"{data_dir}/gpt2/" if data_dir else "the data directory (set --data-dir or SEMSIM_DATA_DIR)"
        raise SemsimError(
            f"GPT-2 tokenizer files (encoder.json, vocab.bpe) not found in {where} "
            f"and the download failed ({type(e).__name__}); are you offline?"
        ) from None


def encode(enc: tiktoken.Encoding, text: str) -> list[int]:
    """Encode text, letting ``<|endoftext|>`` through as the document separator."""
    return enc.encode_ordinary(text) if EOT_TOKEN not in text else enc.encode(
        text, allowed_special={EOT_TOKEN}
    )
