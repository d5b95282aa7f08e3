"""Prepared corpora: text → memory-mapped uint16 token files + a JSON manifest.

Layout of a prepared corpus (under the cache directory)::

    <cache>/<name>[-cap<N>]/
        train.bin        uint16 tokens, documents separated by <|endoftext|> (50256)
        val.bin          uint16 tokens
        surprisal.npy    float32[V], -log p(token) over train.bin, add-one smoothed
        tokenizer.json   the fitted BPE (``data.tokenizer=bpe1024`` only)
        manifest.json    tokenizer, sources with sha256, token counts, options

With ``data.tokenizer=bpe1024`` the held-out text is cut off *before* the tokenizer is fitted (single
files: the last ``val_fraction`` of the characters, from a line start), so the tokenizer — and the token
manifold built later from train.bin — never see held-out text.

Preparation runs once: a later call whose sources still hash the same reuses the files.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from semsim.assets import asset_path, file_sha256
from semsim.config import DataConfig
from semsim.data.tokenizer import EOT_ID, EOT_TOKEN, VOCAB_SIZE, gpt2_tokenizer
from semsim.errors import SemsimError

MANIFEST_VERSION = 2  # 2: TinyStories joined with "\n\n" as published (was EOT-separated)


def resolve_data_dir(cfg: DataConfig) -> Path:
    """Raw corpora and tokenizer files: flag > $SEMSIM_DATA_DIR > ~/.cache/semsim/data."""
    d = cfg.data_dir or os.environ.get("SEMSIM_DATA_DIR") or "~/.cache/semsim/data"
    return Path(d).expanduser()


def resolve_cache_dir(cfg: DataConfig) -> Path:
    d = cfg.cache_dir or os.environ.get("SEMSIM_CACHE_DIR") or "~/.cache/semsim/corpora"
    return Path(d).expanduser()


SPLITS = ("train", "dev", "test", "heldout")


@dataclass
class Corpus:
    """A prepared corpus: memory-mapped train and held-out token streams plus the surprisal table.

    The held-out stream (a corpus's validation file, or the last ``val_fraction`` of a single file)
    is cut in two disjoint slices: ``dev`` (its first part), which validation during training,
    ``keep_best`` and early stopping read, and ``test`` (its last ``test_share``), which results report
    and nothing selects on. ``heldout`` is the whole stream (the published runs report on it)."""

    name: str
    root: Path
    train: np.ndarray
    heldout: np.ndarray
    surprisal: np.ndarray
    manifest: dict
    test_share: float = 0.5
    val_token_cap: int | None = None

    @property
    def vocab_size(self) -> int:
        return self.manifest["tokenizer"]["vocab_size"]

    def tokenizer(self, data_dir: str | None = None):
        """encode/decode for this corpus's ids (tiktoken GPT-2, or the fitted BPE)."""
        if self.manifest["tokenizer"]["name"] == "gpt2":
            return gpt2_tokenizer(data_dir)
        from semsim.data.bpe import BPETokenizer

        return BPETokenizer(self.root / "tokenizer.json")

    def token_bytes(self, data_dir: str | None = None) -> np.ndarray:
        """UTF-8 bytes each id stands for (0 for <|endoftext|>): the denominator of bits per byte."""
        path = self.root / "token_bytes.npy"
        if path.is_file():
            return np.load(path)
        from semsim.data.bpe import gpt2_token_bytes

        table = gpt2_token_bytes(gpt2_tokenizer(data_dir))
        try:  # cached beside the corpus (a read-only cache just recomputes)
            np.save(path, table)
        except OSError:
            pass
        return table

    @property
    def dev(self) -> np.ndarray:
        return self.heldout[: self._dev_len()][: self.val_token_cap]

    @property
    def test(self) -> np.ndarray:
        return self.heldout[self._dev_len() :][: self.val_token_cap]

    def split(self, name: str) -> np.ndarray:
        if name not in SPLITS:
            raise SemsimError(f"unknown split {name!r} ({', '.join(SPLITS)})")
        return self.heldout[: self.val_token_cap] if name == "heldout" else getattr(self, name)

    def _dev_len(self) -> int:
        return len(self.heldout) - int(round(len(self.heldout) * self.test_share))

    def surprisal_tensor(self):
        """The unigram surprisal table as a tensor: what a ``logfreq`` mass is built from."""
        import torch

        return torch.from_numpy(self.surprisal.copy())

    @classmethod
    def open(cls, root: Path, val_token_cap: int | None = None, test_share: float = 0.5) -> "Corpus":
        try:
            manifest = json.loads((root / "manifest.json").read_text())
            train = np.memmap(root / "train.bin", dtype=np.uint16, mode="r")
            heldout = np.memmap(root / "val.bin", dtype=np.uint16, mode="r")
            surprisal = np.load(root / "surprisal.npy")
        except (OSError, ValueError) as e:
            raise SemsimError(f"prepared corpus at {root} is unreadable ({e}); delete it to rebuild") from None
        return cls(manifest["corpus"], root, train, heldout, surprisal, manifest, test_share, val_token_cap)


# ----------------------------------------------------------------------------- sources
@dataclass
class _Source:
    """Where a corpus's text comes from: train files and optionally separate validation files."""

    train: list[Path]
    val: list[Path] | None  # None: the last val_fraction of the train stream is held out
    split_docs: bool  # .txt: documents separated by <|endoftext|> lines (.parquet: one per row of `text`)
    # documents joined by this text, with no <|endoftext|> token (the published TinyStories pipeline);
    # None: <|endoftext|> after every document
    join: str | None = None

    @property
    def files(self) -> list[Path]:
        return self.train + (self.val or [])


def _tinystories_files(root: Path) -> tuple[list[Path], list[Path]] | None:
    """The two layouts the published runs read: train.txt + valid.txt (stories between <|endoftext|>
    lines), or parquet shards with a `text` column named train-*.parquet / validation-*.parquet."""
    if (root / "train.txt").is_file():
        return [root / "train.txt"], [root / "valid.txt"] if (root / "valid.txt").is_file() else []
    train, val = sorted(root.rglob("train-*.parquet")), sorted(root.rglob("validation-*.parquet"))
    return (train, val) if train else None


def _locate(cfg: DataConfig) -> tuple[str, _Source]:
    data_dir = resolve_data_dir(cfg)
    name = cfg.corpus
    if name == "tinyshakespeare":
        path = data_dir / "tinyshakespeare" / "input.txt"
        if not path.is_file():  # the copy shipped inside semsim
            path = asset_path("tinyshakespeare/input.txt")
        return name, _Source([path], None, split_docs=False)
    if name == "tinystories":
        root = data_dir / "tinystories"
        found = _tinystories_files(root)
        if found is None:
            train, val = _tinystories_from_hub(resolve_cache_dir(cfg) / "raw" / "tinystories", root)
            found = [train], [val]
        train, val = found
        if not val:
            raise SemsimError(f"TinyStories at {root} has training stories but no validation split "
                              "(valid.txt or validation-*.parquet)")
        return name, _Source(train, val, split_docs=True, join="\n\n")
    path = Path(name).expanduser()
    if path.is_dir():  # a folder with train.txt [+ valid.txt]
        train, val = path / "train.txt", path / "valid.txt"
        if not train.is_file():
            raise SemsimError(f"corpus folder {path} has no train.txt")
        return path.name, _Source([train], [val] if val.is_file() else None, split_docs=True)
    if path.is_file():
        return path.stem, _Source([path], None, split_docs=True)
    raise SemsimError(
        f"unknown corpus {name!r}: use tinyshakespeare, tinystories, a .txt file or a folder "
        "with train.txt/valid.txt"
    )


def _tinystories_from_hub(cache: Path, local_root: Path) -> tuple[Path, Path]:
    """Write the hub dataset as local .txt files once (needs `datasets` and network)."""
    train, val = cache / "train.txt", cache / "valid.txt"
    if train.is_file():
        return train, val
    try:
        import datasets  # optional dependency

        ds = datasets.load_dataset("roneneldan/TinyStories")
    except Exception as e:
        raise SemsimError(
            f"TinyStories not found at {local_root} (train.txt + valid.txt, or train-*.parquet + "
            f"validation-*.parquet) and the hub download failed ({e.__class__.__name__}); put them there"
        ) from None
    cache.mkdir(parents=True, exist_ok=True)
    for split, path in (("train", train), ("validation", val)):
        with open(path, "w") as f:
            for row in ds[split]:
                f.write(row["text"].strip() + f"\n{EOT_TOKEN}\n")
    return train, val


# ----------------------------------------------------------------------------- preparation
def _documents(paths: list[Path], split_docs: bool) -> Iterator[str]:
    """Stream documents: each .parquet row's `text`; for text files, the whole file or the text
    between ``<|endoftext|>`` lines."""
    for path in paths:
        if path.suffix == ".parquet":
            yield from _parquet_texts(path)
        elif not split_docs:
            yield path.read_text(encoding="utf-8")
        else:
            yield from _eot_separated(path)


def _parquet_texts(path: Path) -> Iterator[str]:
    try:
        import pyarrow.parquet as pq  # optional dependency (pip install semsim[parquet])
    except ImportError:
        raise SemsimError(f"reading {path} needs pyarrow (pip install pyarrow)") from None
    try:
        f = pq.ParquetFile(path)
        if "text" not in f.schema_arrow.names:
            raise SemsimError(f"{path} has no `text` column (columns: {', '.join(f.schema_arrow.names)})")
        for batch in f.iter_batches(columns=["text"], batch_size=4096):
            yield from (t for t in batch.column(0).to_pylist() if t is not None)
    except (OSError, ValueError) as e:  # pyarrow's errors derive from these
        raise SemsimError(f"{path} is not a readable parquet file ({str(e).splitlines()[0][:160]})") from None


def _eot_separated(path: Path) -> Iterator[str]:
    buf: list[str] = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip() == EOT_TOKEN:
                if buf:
                    yield "".join(buf).strip("\n")
                buf = []
            else:
                buf.append(line)
    if buf and "".join(buf).strip():
        yield "".join(buf).strip("\n")


def _tokenize(src: _Source, paths: list[Path], data_dir: Path, cap: int | None, chunk_docs: int = 2048) -> np.ndarray:
    """The token stream of ``paths``: documents joined by ``src.join``, or each followed by EOT. Stops
    early once ``cap`` tokens are reached."""
    enc = gpt2_tokenizer(str(data_dir))
    docs = _documents(paths, src.split_docs)
    if src.join is not None:
        tokens = _joined_tokens(docs, src.join, enc, cap, chunk_docs)
        return tokens[:cap] if cap is not None else tokens
    out: list[np.ndarray] = []
    total = 0
    batch: list[str] = []

    def flush() -> bool:
        nonlocal total, batch
        for ids in enc.encode_ordinary_batch(batch, num_threads=4):
            ids.append(EOT_ID)
            out.append(np.asarray(ids, dtype=np.uint16))
            total += len(ids)
        batch = []
        return cap is not None and total >= cap

    for doc in docs:
        batch.append(doc)
        if len(batch) >= chunk_docs and flush():
            break
    else:
        flush()
    tokens = np.concatenate(out) if out else np.zeros(0, dtype=np.uint16)
    if not src.split_docs and len(tokens):  # a single-document corpus needs no trailing separator
        tokens = tokens[:-1]
    return tokens[:cap] if cap is not None else tokens


def _joined_tokens(docs: Iterator[str], sep: str, enc, cap: int | None, chunk_docs: int) -> np.ndarray:
    """Tokens of ``sep.join(docs)``, encoded a chunk of documents at a time. Equal to encoding the whole
    text: a chunk ends only after a document whose last character is not whitespace, and GPT-2's
    pre-tokeniser always splits between such a character and the whitespace of ``sep``."""
    out: list[np.ndarray] = []
    total, chunk, first = 0, [], True

    def flush() -> None:
        nonlocal total, chunk, first
        text = ("" if first else sep) + sep.join(chunk)
        ids = np.asarray(enc.encode_ordinary(text), dtype=np.uint16)
        out.append(ids)
        total, chunk, first = total + len(ids), [], False

    for doc in docs:
        chunk.append(doc)
        if len(chunk) >= chunk_docs and doc and not doc[-1].isspace():
            flush()
            if cap is not None and total >= cap:
                break
    else:
        if chunk:
            flush()
    return np.concatenate(out) if out else np.zeros(0, dtype=np.uint16)


def _raw_texts(src: _Source, cfg: DataConfig) -> tuple[str, str]:
    """(training text, held-out text) before any tokenizer sees them; documents joined by the corpus's
    separator (\n\n where it has none). A single file is cut at the last ``val_fraction`` of its
    characters, moved forward to the next line start."""
    join = src.join if src.join is not None else "\n\n"
    if src.val is not None:
        return join.join(_documents(src.train, src.split_docs)), join.join(_documents(src.val, src.split_docs))
    text = join.join(_documents(src.train, src.split_docs))
    cut = len(text) - int(round(len(text) * cfg.val_fraction))
    nl = text.find("\n", cut)
    cut = nl + 1 if nl != -1 else cut
    return text[:cut], text[cut:]


def unigram_surprisal(tokens: np.ndarray, vocab_size: int = VOCAB_SIZE, alpha: float = 1.0) -> np.ndarray:
    """−log p(token) with add-alpha smoothing, so unseen tokens get a finite (large) surprisal."""
    counts = np.bincount(tokens.astype(np.int64), minlength=vocab_size).astype(np.float64)
    p = (counts + alpha) / (counts.sum() + alpha * vocab_size)
    return (-np.log(p)).astype(np.float32)


def corpus_context(model_cfg, corpus: "Corpus", log=print) -> dict:
    """What ``build_model`` needs from a corpus beside the config: a ``logfreq`` mass's surprisal table;
    a graph LM's token manifold (built once from the training tokens, cached beside the corpus)."""
    ctx = {}
    if getattr(model_cfg, "mass", None) == "logfreq":
        ctx["surprisal"] = corpus.surprisal_tensor()
    if hasattr(model_cfg, "manifold_spec"):
        from semsim.manifold import manifold_for_corpus

        ctx["manifold"] = manifold_for_corpus(corpus, model_cfg.manifold_spec(), log=log)
    return ctx


def model_context(model_cfg, data_cfg: DataConfig) -> dict:
    """:func:`corpus_context` of ``data_cfg``'s corpus (prepared once if need be), for a fresh model."""
    if getattr(model_cfg, "mass", None) != "logfreq" and not hasattr(model_cfg, "manifold_spec"):
        return {}
    return corpus_context(model_cfg, prepare_corpus(data_cfg, log=lambda m: None), log=lambda m: None)


def prepare_corpus(cfg: DataConfig, force: bool = False, log=print) -> Corpus:
    """Prepare (once) and open the corpus named by ``cfg``."""
    name, src = _locate(cfg)
    data_dir = resolve_data_dir(cfg)
    from semsim.data.bpe import TOKENIZERS

    if cfg.tokenizer not in TOKENIZERS:
        raise SemsimError(f"unknown data.tokenizer {cfg.tokenizer!r} ({', '.join(TOKENIZERS)})")
    slug = name + (f"-cap{cfg.train_token_cap}" if cfg.train_token_cap else "")
    slug += f"-{cfg.tokenizer}" if cfg.tokenizer != "gpt2" else ""
    if src.val is None:
        slug += f"-vf{cfg.val_fraction:g}"
    root = resolve_cache_dir(cfg) / slug
    hashes = [{"path": str(p.resolve()), "sha256": file_sha256(p), "bytes": p.stat().st_size} for p in src.files]
    manifest_path = root / "manifest.json"
    if manifest_path.is_file() and not force:
        try:
            old = json.loads(manifest_path.read_text())
            if old.get("version") == MANIFEST_VERSION and [s["sha256"] for s in old["sources"]] == [
                s["sha256"] for s in hashes
            ]:
                return Corpus.open(root, cfg.val_token_cap, cfg.test_share)
        except (OSError, ValueError, KeyError):
            pass  # unreadable manifest: rebuild

    t0 = time.time()
    log(f"preparing corpus {name} from {', '.join(map(str, src.train[:3]))}{' …' if len(src.train) > 3 else ''} ...")
    bpe = None
    if cfg.tokenizer != "gpt2":
        from semsim.data.bpe import bpe_vocab_size, encode_long, train_bpe

        train_text, val_text = _raw_texts(src, cfg)
        bpe = train_bpe([train_text], bpe_vocab_size(cfg.tokenizer))  # the training text only
        train, val = encode_long(bpe, train_text), encode_long(bpe, val_text)
        if cfg.train_token_cap is not None:
            train = train[: cfg.train_token_cap]
    elif src.val is None:
        stream = _tokenize(src, src.train, data_dir, None)
        n_val = int(round(len(stream) * cfg.val_fraction))
        train, val = stream[: len(stream) - n_val], stream[len(stream) - n_val :]
        if cfg.train_token_cap is not None:
            train = train[: cfg.train_token_cap]
    else:
        train = _tokenize(src, src.train, data_dir, cfg.train_token_cap)
        val = _tokenize(src, src.val, data_dir, None)
    if len(train) == 0 or len(val) == 0:
        raise SemsimError(
            f"corpus {name} is empty after tokenisation (train {len(train)} tokens, val {len(val)}); "
            f"check {src.train[0]}"
        )

    tmp = root.with_name(root.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    train.tofile(tmp / "train.bin")
    val.tofile(tmp / "val.bin")
    if bpe is not None:
        from semsim.data.bpe import bpe_token_bytes

        bpe.save(str(tmp / "tokenizer.json"))
        np.save(tmp / "token_bytes.npy", bpe_token_bytes(bpe))
        tokenizer = {"name": cfg.tokenizer, "library": "tokenizers (byte-level BPE)", "vocab_size": bpe.get_vocab_size(),
                     "eot_id": bpe.token_to_id(EOT_TOKEN), "fitted_on": "train split only"}
    else:
        tokenizer = {"name": "gpt2", "library": "tiktoken", "vocab_size": VOCAB_SIZE, "eot_id": EOT_ID}
    np.save(tmp / "surprisal.npy", unigram_surprisal(train, tokenizer["vocab_size"]))
    manifest = {
        "version": MANIFEST_VERSION,
        "corpus": name,
        "tokenizer": tokenizer,
        "sources": hashes,
        "train_tokens": int(len(train)),
        "val_tokens": int(len(val)),
        "train_token_cap": cfg.train_token_cap,
        "val_split": "file" if src.val else (f"last {cfg.val_fraction:g} of the characters" if bpe is not None
                                             else f"last {cfg.val_fraction:g} of the stream"),
        "documents": f"joined with {src.join!r}" if src.join is not None else "<|endoftext|> after each",
        "dtype": "uint16",
        "surprisal": "-log((count+1)/(N+V)) over train.bin",
        "seconds": round(time.time() - t0, 2),
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
    shutil.rmtree(root, ignore_errors=True)
    tmp.rename(root)  # atomic publish: a killed preparation never leaves a half-written corpus
    log(f"prepared {name}: {len(train):,} train / {len(val):,} val tokens in {manifest['seconds']}s -> {root}")
    return Corpus.open(root, cfg.val_token_cap, cfg.test_share)
