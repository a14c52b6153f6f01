"""Text data: tokenizers, vocabulary, the built-in corpus, and time-major batching."""

from rnnkit.data.batching import (
    num_stream_batches,
    pad_batch,
    sentence_batches,
    stream_batches,
    train_valid_split,
)
from rnnkit.data.corpus import default_corpus_text, default_sentences, load_text
from rnnkit.data.formats import FORMATS, detect_format, iter_sentences, read_sentences, read_stream
from rnnkit.data.text import (
    Vocab,
    split_sentences,
    tokenize_chars,
    tokenize_simple,
    tokenize_treebank,
    tokenize_words,
    unigram_entropy_bits,
)

__all__ = [
    "FORMATS",
    "detect_format",
    "iter_sentences",
    "read_sentences",
    "read_stream",
    "tokenize_simple",
    "tokenize_treebank",
    "Vocab",
    "default_corpus_text",
    "default_sentences",
    "load_text",
    "num_stream_batches",
    "pad_batch",
    "sentence_batches",
    "split_sentences",
    "stream_batches",
    "tokenize_chars",
    "tokenize_words",
    "train_valid_split",
    "unigram_entropy_bits",
]
