import hashlib
import json

import numpy as np
import pytest
import torch

from semsim.config import DataConfig
from semsim.data import EOT_ID, BatchSampler, gpt2_tokenizer, prepare_corpus, validation_windows
from semsim.data.corpus import unigram_surprisal
from semsim.errors import SemsimError


def test_gpt2_ids_and_round_trip(data_dir):
    enc = gpt2_tokenizer(str(data_dir))
    assert enc.n_vocab == 50257
    assert enc.encode_ordinary("Hello world") == [15496, 995]
    text = "First Citizen:\nBefore we proceed any further, hear me speak. — café 123"
    assert enc.decode(enc.encode_ordinary(text)) == text
    assert enc.encode("<|endoftext|>", allowed_special="all") == [50256]


def test_shipped_tokenizer_and_corpus_serve_an_empty_data_dir(tmp_path, data_dir):
    """A fresh offline install: no data folder at all, yet the tokenizer and Tiny Shakespeare work."""
    from semsim.assets import asset_path
    from semsim.data.tokenizer import tokenizer_files

    empty = tmp_path / "no-data"
    empty.mkdir()
    enc_json, vocab = tokenizer_files(str(empty))
    assert enc_json == asset_path("gpt2/encoder.json") and vocab == asset_path("gpt2/vocab.bpe")
    enc = gpt2_tokenizer(str(empty))
    assert enc.encode_ordinary("Hello world") == [15496, 995]
    corpus = prepare_corpus(DataConfig(data_dir=str(empty), cache_dir=str(tmp_path / "c")), log=lambda m: None)
    shipped = asset_path("tinyshakespeare/input.txt")
    assert shipped.stat().st_size == 1_115_394
    assert corpus.manifest["sources"][0]["sha256"] == hashlib.sha256(shipped.read_bytes()).hexdigest()
    assert corpus.manifest["train_tokens"] + corpus.manifest["val_tokens"] == 338_025


def test_a_damaged_shipped_file_is_refused(tmp_path, monkeypatch):
    from semsim import assets

    monkeypatch.setitem(assets.SHA256, "gpt2/vocab.bpe", "0" * 64)
    assets.asset_path.cache_clear()
    try:
        with pytest.raises(SemsimError, match="reinstall semsim"):
            assets.asset_path("gpt2/vocab.bpe")
    finally:
        assets.asset_path.cache_clear()


def test_tinystories_absent_offline_is_one_clear_error(tmp_path):
    with pytest.raises(SemsimError, match="TinyStories not found"):
        prepare_corpus(DataConfig(corpus="tinystories", data_dir=str(tmp_path), cache_dir=str(tmp_path / "c")),
                       log=lambda m: None)


def test_prepare_tinyshakespeare_manifest(shakespeare, data_dir):
    m = shakespeare.manifest
    src = data_dir / "tinyshakespeare" / "input.txt"
    assert m["sources"][0]["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert m["tokenizer"]["vocab_size"] == 50257
    assert m["train_tokens"] == len(shakespeare.train) and m["val_tokens"] == len(shakespeare.heldout)
    total = m["train_tokens"] + m["val_tokens"]
    assert total == len(gpt2_tokenizer(str(data_dir)).encode_ordinary(src.read_text()))
    assert abs(m["val_tokens"] / total - 0.1) < 1e-3
    assert shakespeare.train.dtype == np.uint16 and isinstance(shakespeare.train, np.memmap)
    # Surprisal: -log of add-one smoothed unigram frequencies, finite everywhere.
    s = shakespeare.surprisal
    assert s.shape == (50257,) and np.isfinite(s).all()
    counts = np.bincount(np.asarray(shakespeare.train), minlength=50257)
    top = counts.argmax()
    assert s[top] == s.min() and np.isclose(np.exp(-s).sum(), 1.0, atol=1e-4)


def test_preparation_runs_once(shakespeare, data_dir, cache_dir):
    before = (shakespeare.root / "train.bin").stat().st_mtime_ns
    again = prepare_corpus(DataConfig(data_dir=str(data_dir), cache_dir=str(cache_dir)), log=lambda m: None)
    assert (again.root / "train.bin").stat().st_mtime_ns == before


def test_local_txt_with_document_separators_and_cap(tmp_path, data_dir):
    docs = ["Once upon a time there was a cat.", "The dog ran home.", "A bird sang."] * 50
    path = tmp_path / "stories.txt"
    path.write_text("".join(d + "\n<|endoftext|>\n" for d in docs))
    cfg = DataConfig(corpus=str(path), data_dir=str(data_dir), cache_dir=str(tmp_path / "c"), val_fraction=0.2)
    c = prepare_corpus(cfg, log=lambda m: None)
    stream = np.concatenate([c.train, c.heldout])
    assert (stream == 50256).sum() == len(docs)  # one separator after every document
    capped = prepare_corpus(
        DataConfig(corpus=str(path), data_dir=str(data_dir), cache_dir=str(tmp_path / "c"), train_token_cap=100),
        log=lambda m: None,
    )
    assert len(capped.train) == 100 and json.loads((capped.root / "manifest.json").read_text())["train_token_cap"] == 100


def test_empty_corpus_is_an_error(tmp_path, data_dir):
    path = tmp_path / "empty.txt"
    path.write_text("")
    with pytest.raises(SemsimError, match="empty"):
        prepare_corpus(DataConfig(corpus=str(path), data_dir=str(data_dir), cache_dir=str(tmp_path)), log=lambda m: None)


def test_batches_are_a_function_of_the_step(shakespeare):
    s = BatchSampler(shakespeare.train, 32, 4, seed=1)
    x1, y1 = s.get(7)
    x2, y2 = s.get(7)
    assert torch.equal(x1, x2) and torch.equal(x1[:, 1:], y1[:, :-1])
    assert not torch.equal(s.get(8)[0], x1)
    with pytest.raises(SemsimError, match="block size"):
        BatchSampler(shakespeare.heldout[:20], 32, 4, seed=1)


def test_validation_windows_are_fixed_and_disjoint(shakespeare):
    w = validation_windows(shakespeare.heldout, 64, max_tokens=64 * 10 + 1)
    assert w.shape == (10, 65)
    assert torch.equal(w[1, 0], w[0, -1])  # consecutive windows share only their boundary token
    assert torch.equal(w, validation_windows(shakespeare.heldout, 64, max_tokens=64 * 10 + 1))


def test_surprisal_smoothing():
    s = unigram_surprisal(np.array([0, 0, 1], dtype=np.uint16), vocab_size=4)
    assert np.allclose(np.exp(-s), [3 / 7, 2 / 7, 1 / 7, 1 / 7])


# ----------------------------------------------------------------------------- TinyStories, as published
_STORIES = ["Once upon a time, there was a cat.", "Tom had a red ball. He liked it!", "The end is near ",
            "  She said: \"hello\"\n\nand ran.", "Lily saw 3 birds.", "Sam's dog was big.", "Ben ran home."]
_VALID = ["A small bird sang.", "The sun was hot, so they swam."]


def _write_layout(root, layout: str) -> None:
    root.mkdir(parents=True)
    if layout == "txt":
        for name, stories in (("train.txt", _STORIES), ("valid.txt", _VALID)):
            (root / name).write_text("".join(f"{s}\n<|endoftext|>\n" for s in stories))
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        (root / "data").mkdir()
        half = len(_STORIES) // 2  # two training shards, read in name order
        pq.write_table(pa.table({"text": _STORIES[:half]}), root / "data/train-00000-of-00002.parquet")
        pq.write_table(pa.table({"text": _STORIES[half:], "id": list(range(len(_STORIES) - half))}),
                       root / "data/train-00001-of-00002.parquet")
        pq.write_table(pa.table({"text": _VALID}), root / "data/validation-00000-of-00001.parquet")


@pytest.mark.parametrize("layout", ["txt", "parquet"])
def test_tinystories_follows_the_published_pipeline(tmp_path, data_dir, layout):
    """Stories joined with "\\n\\n" (no <|endoftext|> tokens), GPT-2 BPE, the training stream capped at its
    first N tokens, validation from the separate split — in both layouts the reference read."""
    import shutil

    from semsim.data.corpus import _joined_tokens

    data = tmp_path / "data"
    shutil.copytree(data_dir / "gpt2", data / "gpt2")
    _write_layout(data / "tinystories", layout)
    enc = gpt2_tokenizer(str(data))
    stories = [s.strip("\n") for s in _STORIES] if layout == "txt" else _STORIES
    whole = enc.encode_ordinary("\n\n".join(stories))
    cap = len(whole) - 7
    c = prepare_corpus(DataConfig(corpus="tinystories", data_dir=str(data), cache_dir=str(tmp_path / "c"),
                                  train_token_cap=cap), log=lambda m: None)
    assert c.train.tolist() == whole[:cap]
    assert c.heldout.tolist() == enc.encode_ordinary("\n\n".join(_VALID))
    assert EOT_ID not in c.train.tolist() and c.manifest["documents"] == "joined with '\\n\\n'"
    # chunked encoding equals encoding the whole text, also where a story ends in whitespace
    for chunk in (1, 2, 3):
        assert _joined_tokens(iter(stories), "\n\n", enc, None, chunk).tolist() == whole


def test_parquet_without_a_text_column_is_refused(tmp_path, data_dir):
    import shutil

    import pyarrow as pa
    import pyarrow.parquet as pq

    data = tmp_path / "data"
    shutil.copytree(data_dir / "gpt2", data / "gpt2")
    (data / "tinystories").mkdir()
    pq.write_table(pa.table({"story": ["x"]}), data / "tinystories/train-0.parquet")
    pq.write_table(pa.table({"story": ["y"]}), data / "tinystories/validation-0.parquet")
    with pytest.raises(SemsimError, match="no `text` column"):
        prepare_corpus(DataConfig(corpus="tinystories", data_dir=str(data), cache_dir=str(tmp_path / "c")),
                       log=lambda m: None)


# ----------------------------------------------------------------------------- held-out slices
def test_dev_and_test_slices_are_disjoint_halves_of_the_held_out_stream(shakespeare):
    h, dev, test = shakespeare.heldout, shakespeare.dev, shakespeare.test
    assert len(dev) + len(test) == len(h) and abs(len(dev) - len(test)) <= 1
    assert np.array_equal(np.concatenate([dev, test]), h)
    assert np.array_equal(shakespeare.split("heldout"), h)
    with pytest.raises(SemsimError, match="unknown split"):
        shakespeare.split("val")
