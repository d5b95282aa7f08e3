"""A small byte-level BPE (e.g. 1,024 tokens) trained on a corpus's training text only, with Hugging Face
``tokenizers``; and the UTF-8 byte length of every token id, for bits per byte.

Byte-level: every string encodes (no unknown token) and every id decodes to exact bytes, so the bytes a
run of ids stands for is the sum of its tokens' byte lengths — what bits per byte divides by.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from semsim.data.tokenizer import EOT_TOKEN

TOKENIZERS = ("gpt2", "bpe1024")


def bpe_vocab_size(name: str) -> int:
    """The vocabulary size a ``bpe<N>`` tokenizer name asks for."""
    return int(name.removeprefix("bpe"))


def train_bpe(texts: list[str], vocab_size: int):
    """A byte-level BPE of ``vocab_size`` ids (256 bytes, ``<|endoftext|>``, merges) fitted to ``texts``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOT_TOKEN], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


@functools.lru_cache(maxsize=8)
def load_bpe(path: str):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(path)


def bpe_token_bytes(tok) -> np.ndarray:
    """Byte length of each id of a byte-level BPE; 0 for special tokens (they stand for no text)."""
    special = {t.content for t in tok.get_added_tokens_decoder().values()}
    out = np.zeros(tok.get_vocab_size(), dtype=np.int64)
    for piece, i in tok.get_vocab().items():
        out[i] = 0 if piece in special else len(piece)  # one alphabet char per byte
    return out


def gpt2_token_bytes(enc) -> np.ndarray:
    """Byte length of each GPT-2 id; 0 for ``<|endoftext|>``."""
    out = np.zeros(enc.n_vocab, dtype=np.int64)
    for i in range(enc.n_vocab):
        try:
            out[i] = len(enc.decode_single_token_bytes(i))
        except KeyError:  # ids without a token
            out[i] = 0
    out[enc.eot_token] = 0
    return out


def encode_long(tok, text: str, chunk_chars: int = 1 << 20) -> np.ndarray:
    """Ids of ``text``, encoded in chunks that end at a newline followed by a non-space character (the
    pre-tokeniser splits there anyway, so the result equals encoding the whole text at once)."""
    chunks, start = [], 0
    while start < len(text):
        end = min(len(text), start + chunk_chars)
        while end < len(text) and not (text[end - 1] == "\n" and not text[end].isspace()):
            end += 1
        chunks.append(text[start:end])
        start = end
    ids = [np.asarray(e.ids, dtype=np.uint16) for e in tok.encode_batch(chunks)] if chunks else []
    return np.concatenate(ids) if ids else np.zeros(0, dtype=np.uint16)


@functools.lru_cache(maxsize=1)
def _byte_of_char() -> dict[str, int]:
    """The byte-level alphabet's char → byte: printable bytes stand for themselves, the other 68 take
    the code points from 256 up, in byte order (the GPT-2 convention ``tokenizers`` follows)."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = {b: chr(b) for b in keep}, 0
    for b in range(256):
        if b not in chars:
            chars[b] = chr(256 + extra)
            extra += 1
    return {c: b for b, c in chars.items()}


class BPETokenizer:
    """encode/decode of a saved ``tokenizer.json`` (what generation and evaluation need)."""

    def __init__(self, path: str | Path):
        self.tok = load_bpe(str(path))
        self.n_vocab = self.tok.get_vocab_size()
        self.eot_token = self.tok.token_to_id(EOT_TOKEN)

    def decode_single_token_bytes(self, i: int) -> bytes:
        piece = self.tok.id_to_token(i)
        if i == self.eot_token or piece is None:
            return b""
        table = _byte_of_char()
        return bytes(table[ch] for ch in piece)

    def encode(self, text: str) -> list[int]:
        return self.tok.encode(text).ids

    encode_ordinary = encode

    def decode(self, ids: list[int]) -> str:
        return self.tok.decode(ids, skip_special_tokens=False)
