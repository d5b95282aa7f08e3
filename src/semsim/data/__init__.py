"""Text → token streams: the GPT-2 tokenizer, prepared corpora, training batches."""

from semsim.data.batches import BatchSampler, validation_windows
from semsim.data.corpus import Corpus, prepare_corpus, resolve_data_dir
from semsim.data.tokenizer import EOT_ID, VOCAB_SIZE, gpt2_tokenizer

__all__ = [
    "BatchSampler",
    "Corpus",
    "EOT_ID",
    "VOCAB_SIZE",
    "gpt2_tokenizer",
    "prepare_corpus",
    "resolve_data_dir",
    "validation_windows",
]
