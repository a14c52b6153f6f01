"""Tests for rnnkit.data: tokenizers, Vocab, the built-in corpus, loading and batching."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnkit.data import (
    Vocab,
    default_corpus_text,
    default_sentences,
    load_text,
    num_stream_batches,
    pad_batch,
    sentence_batches,
    split_sentences,
    stream_batches,
    tokenize_chars,
    tokenize_words,
    train_valid_split,
    unigram_entropy_bits,
)
from rnnkit.errors import RnnkitError

# ---------------------------------------------------------------------------- tokenizers


def test_tokenize_words_keeps_punctuation():
    assert tokenize_words("Hello, world!") == ["hello", ",", "world", "!"]


def test_tokenize_words_apostrophes_hyphens_numbers():
    toks = tokenize_words("Don't stop: a well-known rule (42 or 3.14)...")
    assert toks == [  # Penn Treebank conventions: contractions split, "..." one token
        "do",
        "n't",
        "stop",
        ":",
        "a",
        "well-known",
        "rule",
        "(",
        "42",
        "or",
        "3.14",
        ")",
        "...",
    ]


def test_tokenize_words_case_and_whitespace():
    assert tokenize_words("The  CAT\n\tsat", lower=False) == ["The", "CAT", "sat"]
    assert tokenize_words("   \n ") == []
    # trailing / leading apostrophes are punctuation, not part of the word
    assert tokenize_words("'quoted' dogs'") == ["'", "quoted", "'", "dogs", "'"]


def test_tokenize_chars():
    assert tokenize_chars("ab c") == ["a", "b", " ", "c"]


def test_split_sentences():
    text = "First one. Second one! Is it third? yes it is.\n\nNew paragraph without end\nLast."
    assert split_sentences(text) == [
        "First one.",
        "Second one!",
        "Is it third? yes it is.",
        "New paragraph without end\nLast.",
    ]
    assert split_sentences("  \n\n  ") == []
    assert split_sentences('He said "stop." Then left.') == ['He said "stop."', "Then left."]


# ---------------------------------------------------------------------------- Vocab

SEQS = [["b", "a", "c", "a"], ["c", "d", "a", "e"], ["b", "f"]]
# counts: a=3, b=2, c=2, d=1, e=1, f=1; first appearance order: b a c d e f


def test_vocab_specials_and_frequency_order():
    v = Vocab.build(SEQS)
    assert v.itos == ["<pad>", "<unk>", "<s>", "</s>", "a", "b", "c", "d", "e", "f"]
    assert (v.pad_id, v.unk_id, v.bos_id, v.eos_id) == (0, 1, 2, 3)
    assert len(v) == 10
    assert v.id("a") == 4 and v.token(4) == "a"


def test_vocab_max_size_and_tie_break():
    v = Vocab.build(SEQS, max_size=7)
    assert len(v) == 7
    # a (3) first, then b and c tie at 2: b appeared first
    assert v.itos[4:] == ["a", "b", "c"]
    v2 = Vocab.build(SEQS, max_size=6)
    assert v2.itos[4:] == ["a", "b"]
    assert Vocab.build(SEQS, min_count=2).itos[4:] == ["a", "b", "c"]


def test_vocab_max_size_too_small():
    with pytest.raises(RnnkitError, match="max_size"):
        Vocab.build(SEQS, max_size=4)
    assert len(Vocab.build(SEQS, max_size=5)) == 5


def test_vocab_unk_mapping_and_decode():
    v = Vocab.build(SEQS, max_size=6)  # keeps a, b only
    ids = v.encode(["a", "zzz", "c", "b"])
    assert ids.dtype == np.int64 and ids.shape == (4,)
    assert ids.tolist() == [v.id("a"), v.unk_id, v.unk_id, v.id("b")]
    assert v.decode(ids) == ["a", "<unk>", "<unk>", "b"]
    assert v.id("never-seen") == v.unk_id
    assert v.encode([]).shape == (0,)
    with pytest.raises(RnnkitError, match="out of range"):
        v.decode([0, len(v)])
    with pytest.raises(RnnkitError, match="out of range"):
        v.token(-1)


def test_vocab_unknown_without_unk_raises():
    v = Vocab.build(SEQS, specials=(Vocab.PAD,))
    assert v.unk_id is None and v.bos_id is None and v.pad_id == 0
    with pytest.raises(RnnkitError, match="zzz"):
        v.encode(["a", "zzz"])
    with pytest.raises(RnnkitError, match="qq"):
        v.id("qq")


def test_vocab_no_specials_and_pad_position():
    v = Vocab.build(SEQS, specials=())
    assert v.itos == ["a", "b", "c", "d", "e", "f"]
    assert v.pad_id is None
    with pytest.raises(RnnkitError, match="<pad>"):
        Vocab.build(SEQS, specials=(Vocab.UNK, Vocab.PAD))
    with pytest.raises(RnnkitError, match="duplicate"):
        Vocab(["a", "b", "a"])


def test_vocab_specials_in_data_are_not_duplicated():
    v = Vocab.build([["<unk>", "x", "<s>"]])
    assert v.itos == ["<pad>", "<unk>", "<s>", "</s>", "x"]


def test_vocab_json_round_trip():
    v = Vocab.build(SEQS, max_size=8)
    d = json.loads(json.dumps(v.to_json()))
    w = Vocab.from_json(d)
    assert w == v and w.itos == v.itos
    assert w.unk_id == v.unk_id and w.eos_id == v.eos_id
    with pytest.raises(RnnkitError):
        Vocab.from_json({"tokens": []})


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.text(min_size=1, max_size=4), max_size=12), min_size=1, max_size=6))
def test_vocab_encode_decode_round_trip(seqs):
    v = Vocab.build(seqs)
    for seq in seqs:
        ids = v.encode(seq)
        assert ids.dtype == np.int64
        assert v.decode(ids) == list(seq)
    # every distinct non-special token got exactly one id
    distinct = {t for s in seqs for t in s} - {Vocab.PAD, Vocab.UNK, Vocab.BOS, Vocab.EOS}
    assert len(v) == 4 + len(distinct)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(st.sampled_from("abcdefghij"), max_size=10), min_size=1, max_size=6),
    st.integers(min_value=5, max_value=14),
)
def test_vocab_cap_keeps_most_frequent(seqs, max_size):
    v = Vocab.build(seqs, max_size=max_size)
    assert len(v) <= max_size
    counts: dict[str, int] = {}
    for s in seqs:
        for t in s:
            counts[t] = counts.get(t, 0) + 1
    kept = v.itos[4:]
    dropped = set(counts) - set(kept)
    if kept and dropped:
        assert min(counts[t] for t in kept) >= max(counts[t] for t in dropped)
    assert [counts[t] for t in kept] == sorted((counts[t] for t in kept), reverse=True)


# ---------------------------------------------------------------------------- entropy


def test_unigram_entropy_bits():
    uniform = np.tile(np.arange(4), 25)
    assert unigram_entropy_bits(uniform, 4) == pytest.approx(2.0)
    assert unigram_entropy_bits(np.zeros(10, dtype=np.int64), 5) == 0.0
    # p = (1/2, 1/4, 1/4): H = 1.5 bits
    assert unigram_entropy_bits(np.array([0, 0, 1, 2]), 3) == pytest.approx(1.5)
    with pytest.raises(RnnkitError, match="out of range"):
        unigram_entropy_bits(np.array([0, 4]), 4)
    with pytest.raises(RnnkitError):
        unigram_entropy_bits(np.array([], dtype=np.int64), 4)


# ---------------------------------------------------------------------------- corpus


def test_default_corpus_is_english_prose():
    text = default_corpus_text()
    assert len(text) > 1_000_000
    nonspace = [c for c in text if not c.isspace()]
    letters = sum(c.isalpha() for c in nonspace)
    assert letters / len(nonspace) > 0.85
    assert "``" not in text
    assert "*PEP" not in text and "***" not in text and ">>>" not in text and "::=" not in text
    lines = text.split("\n")
    assert lines[-1] == "" and all(lines[:-1])  # one sentence per line, newline-terminated
    assert all(line == line.strip() for line in lines)  # no indented code lines
    assert "\n\n" not in text
    assert "assignment statement" in text.lower()


def test_default_corpus_deterministic():
    a = default_corpus_text()
    default_corpus_text.cache_clear()
    assert default_corpus_text() == a


def test_default_sentences():
    sents = default_sentences()
    assert len(sents) >= 19_060  # ten times the former pydoc-topics-only corpus
    assert sents == default_corpus_text().split("\n")[:-1]
    assert all(3 <= len(s.split()) <= 40 for s in sents)
    assert all("\n" not in s for s in sents)
    assert default_sentences(10) == sents[:10]
    with pytest.raises(RnnkitError):
        default_sentences(0)


def test_load_text_ok(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text("héllo wörld\n", encoding="utf-8")
    assert load_text(p) == "héllo wörld\n"
    assert load_text(str(p)) == "héllo wörld\n"


def test_load_text_missing(tmp_path):
    p = tmp_path / "nope.txt"
    with pytest.raises(RnnkitError, match="not found") as exc:
        load_text(p)
    assert str(p) in str(exc.value)


def test_load_text_directory(tmp_path):
    with pytest.raises(RnnkitError, match="directory") as exc:
        load_text(tmp_path)
    assert str(tmp_path) in str(exc.value)


def test_load_text_bad_utf8(tmp_path):
    p = tmp_path / "bad.txt"
    p.write_bytes(b"ok \xff\xfe\xfa")
    with pytest.raises(RnnkitError, match="UTF-8") as exc:
        load_text(p)
    assert str(p) in str(exc.value) and "byte 3" in str(exc.value)


def test_load_text_empty(tmp_path):
    p = tmp_path / "empty.txt"
    p.write_text(" \n\t\n", encoding="utf-8")
    with pytest.raises(RnnkitError, match="empty") as exc:
        load_text(p)
    assert str(p) in str(exc.value)


# ---------------------------------------------------------------------------- batching


def test_pad_batch():
    ids, lengths = pad_batch([np.array([5, 6, 7]), np.array([8]), np.array([9, 10])], pad_id=0)
    assert ids.shape == (3, 3) and ids.dtype == np.int64
    assert lengths.tolist() == [3, 1, 2] and lengths.dtype == np.int64
    assert ids[:, 0].tolist() == [5, 6, 7]
    assert ids[:, 1].tolist() == [8, 0, 0]
    assert ids[:, 2].tolist() == [9, 10, 0]
    ids2, _ = pad_batch([[1], [1, 2]], pad_id=-1)
    assert ids2[:, 0].tolist() == [1, -1]


def test_pad_batch_errors():
    with pytest.raises(RnnkitError):
        pad_batch([])
    with pytest.raises(RnnkitError, match="empty"):
        pad_batch([np.array([1, 2]), np.array([], dtype=np.int64)])
    with pytest.raises(RnnkitError):
        pad_batch([np.zeros((2, 2), dtype=np.int64)])


def _check_sentence_batch(inputs, targets, lengths, bos, eos, pad):
    assert inputs.shape == targets.shape
    assert inputs.shape[1] == lengths.shape[0]
    assert inputs.shape[0] == lengths.max()
    for b, n in enumerate(lengths.tolist()):
        assert inputs[0, b] == bos
        assert targets[n - 1, b] == eos
        # targets are the inputs shifted by one step
        assert inputs[1:n, b].tolist() == targets[: n - 1, b].tolist()
        assert (inputs[n:, b] == pad).all() and (targets[n:, b] == pad).all()


def test_sentence_batches_shift_and_eos():
    sents = [
        np.array([10, 11, 12]),
        np.array([13]),
        np.array([], dtype=np.int64),
        np.array([14, 15]),
        np.array([16, 17, 18, 19]),
    ]
    batches = list(sentence_batches(sents, 2, None, bos_id=2, eos_id=3, pad_id=0))
    assert [b[0].shape[1] for b in batches] == [2, 2, 1]  # last partial batch kept
    for inputs, targets, lengths in batches:
        _check_sentence_batch(inputs, targets, lengths, 2, 3, 0)
    inputs, targets, lengths = batches[0]
    assert lengths.tolist() == [4, 2]
    assert inputs[:, 0].tolist() == [2, 10, 11, 12]
    assert targets[:, 0].tolist() == [10, 11, 12, 3]


@pytest.mark.parametrize("bucket", [False, True])
def test_sentence_batches_shuffled_covers_all(bucket):
    rng = np.random.default_rng(0)
    sents = [np.arange(100 + 10 * i, 100 + 10 * i + (i % 7)) for i in range(53)]
    seen = []
    for inputs, targets, lengths in sentence_batches(sents, 8, rng, 2, 3, 0, bucket=bucket):
        _check_sentence_batch(inputs, targets, lengths, 2, 3, 0)
        for b, n in enumerate(lengths.tolist()):
            seen.append(tuple(targets[: n - 1, b].tolist()))
    assert sorted(seen) == sorted(tuple(s.tolist()) for s in sents)
    # shuffled: not the input order
    assert seen != [tuple(s.tolist()) for s in sents]


def test_stream_batches_reconstructs_columns():
    ids = np.arange(103)
    B, bptt = 4, 7
    chunks = list(stream_batches(ids, B, bptt))
    assert len(chunks) == num_stream_batches(len(ids), B, bptt) == 4  # R=25 -> 24 steps
    assert [c[0].shape for c in chunks] == [(7, 4), (7, 4), (7, 4), (3, 4)]
    inputs = np.concatenate([c[0] for c in chunks], axis=0)
    targets = np.concatenate([c[1] for c in chunks], axis=0)
    columns = ids[:100].reshape(B, 25).T  # (R, B): column b is a contiguous slice
    assert np.array_equal(inputs, columns[:-1])
    assert np.array_equal(targets, columns[1:])
    for x, y in chunks:
        assert x.dtype == np.int64 and y.dtype == np.int64
        assert np.array_equal(x[1:], y[:-1])


def test_stream_batches_too_short():
    with pytest.raises(RnnkitError, match="too short"):
        list(stream_batches(np.arange(7), 4, 5))
    with pytest.raises(RnnkitError, match="too short"):
        num_stream_batches(7, 4, 5)
    chunks = list(stream_batches(np.arange(8), 4, 5))  # R=2: one chunk of one step
    assert len(chunks) == 1 and chunks[0][0].shape == (1, 4)
    with pytest.raises(RnnkitError, match="bptt"):
        list(stream_batches(np.arange(100), 4, 0))


@settings(max_examples=80, deadline=None)
@given(
    st.integers(min_value=2, max_value=300),
    st.integers(min_value=1, max_value=9),
    st.integers(min_value=1, max_value=40),
)
def test_stream_batches_covers_expected_tokens(n, batch_size, bptt):
    ids = np.arange(n, dtype=np.int64)
    if n // batch_size < 2:
        with pytest.raises(RnnkitError):
            list(stream_batches(ids, batch_size, bptt))
        return
    chunks = list(stream_batches(ids, batch_size, bptt))
    assert len(chunks) == num_stream_batches(n, batch_size, bptt)
    assert all(1 <= x.shape[0] <= bptt and x.shape[1] == batch_size for x, _ in chunks)
    rows = n // batch_size
    seen_inputs = np.sort(np.concatenate([x.ravel() for x, _ in chunks]))
    seen_targets = np.sort(np.concatenate([y.ravel() for _, y in chunks]))
    used = ids[: rows * batch_size].reshape(batch_size, rows)
    assert np.array_equal(seen_inputs, np.sort(used[:, :-1].ravel()))
    assert np.array_equal(seen_targets, np.sort(used[:, 1:].ravel()))
    for x, y in chunks:
        assert np.array_equal(y, x + 1)  # arange stream: the target is the next token


def test_train_valid_split_list_deterministic():
    items = [f"s{i}" for i in range(100)]
    tr, va = train_valid_split(items, 0.1, rng_seed=3)
    assert len(va) == 10 and len(tr) == 90
    assert sorted(tr + va) == sorted(items)
    assert (tr, va) == train_valid_split(items, 0.1, rng_seed=3)
    assert va != items[-10:]  # random, not contiguous
    assert tr == [s for s in items if s in set(tr)]  # original order kept


def test_train_valid_split_array_contiguous():
    ids = np.arange(50)
    tr, va = train_valid_split(ids, 0.2, rng_seed=0)
    assert np.array_equal(tr, ids[:40]) and np.array_equal(va, ids[40:])


@pytest.mark.parametrize("frac", [0.0, 1.0, -0.1, 1.5])
def test_train_valid_split_bad_fraction(frac):
    with pytest.raises(RnnkitError, match="valid_fraction"):
        train_valid_split([1, 2, 3], frac, rng_seed=0)
