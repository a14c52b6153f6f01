"""Tests for rnnkit.data.bigcorpus: streamed vocabulary, ids on disk, batches from disk."""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pytest
from conftest import need

import rnnkit.data.bigcorpus as bigcorpus
from rnnkit.data.batching import num_stream_batches, stream_batches
from rnnkit.data.bigcorpus import StreamBatches, count_vocab, encode_to_memmap
from rnnkit.data.formats import read_sentences, read_stream
from rnnkit.data.text import Vocab
from rnnkit.errors import RnnkitError

PTB_LINES = [
    " no it was n't black monday",
    " but while the new york stock exchange did n't fall apart friday the <unk> fell N points",
    " some circuit breakers installed after the october N crash failed their first test",
    " heavy selling of standard & poor 's 500-stock index futures in chicago <unk> beat stocks",
    " the N stock specialist firms on the big board floor could n't handle the selling",
]
PROSE = (
    "The history of the company goes back to 1886. Two brothers founded it. Dr. Smith\n"
    "joined them later; e.g. in 1900 it had 12 employees. It's a well-known firm\n"
    "in the U.S. and abroad.\n\nToday J. R. R. Smith runs it. Sales rose 3.5% to $1,000,000.\n"
)


@pytest.fixture
def ptb_file(tmp_path):
    rng = np.random.default_rng(0)
    lines = [PTB_LINES[i] for i in rng.integers(0, len(PTB_LINES), size=60)]
    p = tmp_path / "ptb.train.txt"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


@pytest.fixture
def small_chunks(monkeypatch):
    """Read ~100 bytes of lines at a time and encode 7 tokens at a time: many chunks."""
    monkeypatch.setattr(bigcorpus, "CHUNK_BYTES", 100)
    monkeypatch.setattr(bigcorpus, "_ENCODE_BUFFER", 7)


@pytest.mark.parametrize("fmt", ["auto", "tokens", "lines", "text"])
def test_count_vocab_matches_in_memory_build(tmp_path, ptb_file, small_chunks, fmt):
    prose_file = tmp_path / "prose.txt"
    prose_file.write_text(PROSE * 5, encoding="utf-8")
    for path in (ptb_file, prose_file):
        text = path.read_text(encoding="utf-8")
        expected = Vocab.build(read_sentences(text, fmt), max_size=30)
        assert count_vocab(path, fmt, max_size=30, progress=False) == expected


def test_count_vocab_streams_in_chunks(ptb_file, monkeypatch):
    """The file is read through readlines(hint) about CHUNK_BYTES at a time, never whole."""
    sizes: list[int] = []

    class SpyFile:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def read(self, n):  # format detection: one bounded read of the head
            assert 0 < n <= 1 << 20
            return self.f.read(n)

        def readlines(self, hint):
            out = self.f.readlines(hint)
            sizes.append(sum(map(len, out)))
            return out

    monkeypatch.setattr(bigcorpus, "CHUNK_BYTES", 256)
    monkeypatch.setattr(bigcorpus, "open", lambda p, mode: SpyFile(open(p, mode)), raising=False)
    v = count_vocab(ptb_file, "auto", progress=False)
    assert v.itos.count("<unk>") == 1 and "n't" in v and "N" in v
    assert len(sizes) > 10 and max(sizes) < 256 + 200  # about CHUNK_BYTES of whole lines
    assert sum(sizes) == ptb_file.stat().st_size


def test_encode_to_memmap_matches_in_memory_encoding(tmp_path, ptb_file, small_chunks):
    text = ptb_file.read_text(encoding="utf-8")
    v = count_vocab(ptb_file, max_size=25, progress=False)
    ids = encode_to_memmap(ptb_file, v, "auto", tmp_path / "cache")
    assert isinstance(ids, np.memmap) and ids.dtype == np.int32 and ids.ndim == 1
    expected = v.encode(read_stream(text))
    np.testing.assert_array_equal(ids, expected)
    assert int(ids[-1]) == v.eos_id and (np.asarray(ids) == v.eos_id).sum() == 60
    assert (np.asarray(ids) == v.unk_id).sum() > 0  # <unk> and words beyond max_size

    files = sorted(os.listdir(tmp_path / "cache"))
    assert len(files) == 2 and files[0].startswith("ids-") and files[0].endswith(".bin")
    meta = json.loads((tmp_path / "cache" / files[1]).read_text())
    st = ptb_file.stat()
    assert meta["size"] == st.st_size and meta["mtime_ns"] == st.st_mtime_ns
    assert meta["n_tokens"] == ids.shape[0] and meta["fmt"] == "tokens"
    digest = hashlib.blake2b(ptb_file.read_bytes(), digest_size=16).hexdigest()
    assert meta["content_hash"] == digest


def test_encode_to_memmap_reuses_and_invalidates(tmp_path, ptb_file, monkeypatch):
    cache = tmp_path / "cache"
    v = count_vocab(ptb_file, progress=False)
    v2 = count_vocab(ptb_file, max_size=10, progress=False)
    first = np.array(encode_to_memmap(ptb_file, v, "tokens", cache))
    (bin_path,) = cache.glob("ids-*.bin")
    written = bin_path.stat().st_mtime_ns

    encodes = []
    real_iter = bigcorpus.iter_sentences

    def counting_iter(*args, **kwargs):
        encodes.append(1)
        return real_iter(*args, **kwargs)

    monkeypatch.setattr(bigcorpus, "iter_sentences", counting_iter)
    # same file, same vocabulary: mapped again, not encoded
    np.testing.assert_array_equal(encode_to_memmap(ptb_file, v, "tokens", cache), first)
    # touched but unchanged: the content hash matches, still not encoded
    os.utime(ptb_file, ns=(written + 10**9, written + 10**9))
    np.testing.assert_array_equal(encode_to_memmap(ptb_file, v, "tokens", cache), first)
    np.testing.assert_array_equal(
        encode_to_memmap(ptb_file, v, "tokens", cache, verify=True), first
    )
    assert encodes == [] and bin_path.stat().st_mtime_ns == written

    # same size, different content: encoded again
    data = ptb_file.read_bytes().replace(b"monday", b"friday")
    ptb_file.write_bytes(data)
    again = encode_to_memmap(ptb_file, v, "tokens", cache)
    assert encodes == [1]
    np.testing.assert_array_equal(again, v.encode(read_stream(data.decode(), "tokens")))
    # another vocabulary: another file
    encode_to_memmap(ptb_file, v2, "tokens", cache)
    assert encodes == [1, 1] and len(list(cache.glob("ids-*.bin"))) == 2
    assert not list(cache.glob("*.tmp-*"))


def test_errors(tmp_path):
    v = Vocab.build([["a"]])
    with pytest.raises(RnnkitError, match="not found"):
        count_vocab(tmp_path / "nope.txt")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"good line\nbad \xff byte\n")
    with pytest.raises(RnnkitError, match=r"UTF-8.*byte 14"):
        count_vocab(bad, "tokens", progress=False)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(RnnkitError, match="no tokens"):
        count_vocab(empty, "tokens", progress=False)
    with pytest.raises(RnnkitError, match="no tokens"):
        encode_to_memmap(empty, v, "tokens", tmp_path / "c")
    assert not list((tmp_path / "c").iterdir())
    with pytest.raises(RnnkitError, match="</s>"):
        encode_to_memmap(bad, Vocab.build([["a"]], specials=(Vocab.UNK,)), "tokens", tmp_path)


def test_progress_bar(ptb_file, capsys):
    need("tqdm")
    v = count_vocab(ptb_file, "tokens", progress=True)
    assert "n't" in v
    assert "counting" in capsys.readouterr().err


@pytest.mark.parametrize(
    "n, batch_size, bptt", [(100, 4, 5), (101, 3, 7), (64, 8, 3), (37, 2, 100), (10, 5, 1)]
)
def test_stream_batches_equal_stream_batches(n, batch_size, bptt):
    ids = np.random.default_rng(n).integers(0, 50, size=n)
    sb = StreamBatches(ids, batch_size, bptt)
    expected = list(stream_batches(ids, batch_size, bptt))
    assert len(sb) == len(expected) == num_stream_batches(n, batch_size, bptt)
    for (x, y), (ex, ey) in zip(sb, expected):
        assert x.dtype == y.dtype == np.int64
        assert x.shape == ex.shape and x.flags.c_contiguous
        np.testing.assert_array_equal(x, ex)
        np.testing.assert_array_equal(y, ey)
    np.testing.assert_array_equal(sb[-1][1], expected[-1][1])
    with pytest.raises(IndexError):
        sb[len(sb)]


def test_stream_batches_from_memmap(tmp_path, ptb_file):
    v = count_vocab(ptb_file, progress=False)
    ids = encode_to_memmap(ptb_file, v, "tokens", tmp_path / "cache")
    sb = StreamBatches(ids, 4, 9)
    for (x, y), (ex, ey) in zip(sb, stream_batches(np.asarray(ids), 4, 9)):
        np.testing.assert_array_equal(x, ex)
        np.testing.assert_array_equal(y, ey)
    with pytest.raises(RnnkitError, match="too short"):
        StreamBatches(ids[:7], 4, 9)
    with pytest.raises(RnnkitError, match="bptt"):
        StreamBatches(ids, 4, 0)
    with pytest.raises(RnnkitError, match="1-D"):
        StreamBatches(np.zeros((4, 4), dtype=np.int64), 2, 2)
