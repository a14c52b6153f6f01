"""Corpora larger than memory: a streamed vocabulary count, ids on disk, batches read from disk.

* :func:`count_vocab` reads the corpus file once, about 1 MiB of whole lines at a time, and
  builds a :class:`~rnnkit.data.text.Vocab` from the token counts;
* :func:`encode_to_memmap` writes the token ids (``int32``, each sentence followed by the
  ``</s>`` id) once to ``out_dir/ids-<key>.bin`` with a JSON sidecar, and maps that file on
  later calls instead of encoding again;
* :class:`StreamBatches` serves the ``(inputs, targets)`` chunks of
  :func:`rnnkit.data.batching.stream_batches` by index, reading only the rows it needs.

Memory held at any time: the token counts (one entry per distinct token), one chunk of lines
and its tokens, and the pages of the memory map that are in use.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.data.batching import num_stream_batches
from rnnkit.data.formats import _check_fmt, detect_format, iter_sentences
from rnnkit.data.text import Vocab
from rnnkit.errors import RnnkitError

__all__ = ["count_vocab", "encode_to_memmap", "StreamBatches"]

CHUNK_BYTES = 1 << 20  # lines are read about this many bytes at a time
_ENCODE_BUFFER = 1 << 18  # tokens encoded and written at a time
_HEAD_BYTES = 1 << 20  # what detect_format sees of a file
_SIDECAR_VERSION = 1


# ---------------------------------------------------------------------------- reading
class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(total: int, desc: str, progress: bool | None) -> Any:
    """A tqdm bar over bytes (``progress=None``: only when stderr is a terminal and tqdm is
    installed; ``True``: tqdm required), or a bar that shows nothing."""
    if progress is False or (progress is None and not sys.stderr.isatty()):
        return _NoBar()
    try:
        from tqdm import tqdm
    except ImportError:
        if progress:
            raise RnnkitError("progress=True needs tqdm: pip install tqdm") from None
        return _NoBar()
    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, leave=False)


def _check_file(path: str | os.PathLike) -> Path:
    p = Path(path)
    if not p.exists():
        raise RnnkitError(f"corpus file not found: {p}")
    if p.is_dir():
        raise RnnkitError(f"corpus path is a directory, not a file: {p}")
    return p


def _iter_lines(path: Path, progress: bool | None, desc: str, hasher: Any = None) -> Iterator[str]:
    """The decoded lines of ``path``, read about :data:`CHUNK_BYTES` of whole lines at a time.

    ``hasher`` (a hashlib object) is fed every byte read, in order.
    """
    bar = _progress_bar(path.stat().st_size, desc, progress)
    offset = 0
    try:
        with open(path, "rb") as f:
            while True:
                chunk = f.readlines(CHUNK_BYTES)
                if not chunk:
                    break
                data = b"".join(chunk)
                del chunk
                if hasher is not None:
                    hasher.update(data)
                try:
                    text = data.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise RnnkitError(
                        f"corpus file is not valid UTF-8: {path} (byte {offset + exc.start})"
                    ) from None
                offset += len(data)
                bar.update(len(data))
                del data
                yield from text.splitlines()
    except OSError as exc:
        raise RnnkitError(f"cannot read corpus file: {path} ({exc.strerror or exc})") from exc
    finally:
        bar.close()


def _resolve(path: Path, fmt: str, lower: bool | None, unk_token: str | None) -> tuple[str, bool]:
    """(format, lower) with ``"auto"`` detected from the first MiB and ``None`` resolved."""
    _check_fmt(fmt)
    if fmt == "auto":
        with open(path, "rb") as f:
            head = f.read(_HEAD_BYTES)
        cut = head.rfind(b"\n") if len(head) == _HEAD_BYTES else -1
        text = (head[:cut] if cut > 0 else head).decode("utf-8", errors="replace")
        fmt = detect_format(text.lstrip("\ufeff"), unk_token)
    return fmt, (fmt != "tokens") if lower is None else bool(lower)


# ---------------------------------------------------------------------------- vocabulary
def count_vocab(
    path: str | os.PathLike,
    fmt: str = "auto",
    lower: bool | None = None,
    max_size: int | None = None,
    progress: bool | None = None,
    *,
    unk_token: str | None = Vocab.UNK,
    min_count: int = 1,
    specials: Sequence[str] = Vocab.SPECIALS,
) -> Vocab:
    """Count the tokens of a corpus file in one streaming pass and build its vocabulary.

    ``fmt`` / ``lower`` / ``unk_token`` as in :func:`rnnkit.data.formats.read_sentences`
    (``"auto"`` looks at the first MiB). ``max_size`` / ``min_count`` / ``specials`` as in
    :meth:`Vocab.build`; ties are broken by first appearance in the file. The file is read
    about 1 MiB of lines at a time, never whole; ``progress`` shows a byte progress bar.
    """
    p = _check_file(path)
    fmt, lower = _resolve(p, fmt, lower, unk_token)
    counts: Counter[str] = Counter()
    lines = _iter_lines(p, progress, f"counting {p.name}")
    for sent in iter_sentences(lines, fmt, lower, unk_token):
        counts.update(sent)
    if not counts:
        raise RnnkitError(f"corpus has no tokens: {p}")
    return Vocab.from_counts(counts, max_size=max_size, specials=specials, min_count=min_count)


# ---------------------------------------------------------------------------- ids on disk
def _vocab_hash(vocab: Vocab) -> str:
    blob = json.dumps(vocab.to_json(), ensure_ascii=False, separators=(",", ":"))
    return hashlib.blake2b(blob.encode("utf-8"), digest_size=16).hexdigest()


def _hash_file(path: Path, progress: bool | None) -> str:
    h = hashlib.blake2b(digest_size=16)
    bar = _progress_bar(path.stat().st_size, f"hashing {path.name}", progress)
    try:
        with open(path, "rb") as f:
            while block := f.read(CHUNK_BYTES):
                h.update(block)
                bar.update(len(block))
    finally:
        bar.close()
    return h.hexdigest()


def _read_sidecar(path: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _write_json_atomic(path: Path, obj: dict[str, Any]) -> None:
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _open_ids(path: Path, n_tokens: int) -> np.memmap:
    return np.memmap(path, dtype=np.int32, mode="r", shape=(n_tokens,))


def encode_to_memmap(
    path: str | os.PathLike,
    vocab: Vocab,
    fmt: str,
    out_dir: str | os.PathLike,
    *,
    lower: bool | None = None,
    unk_token: str | None = Vocab.UNK,
    progress: bool | None = None,
    verify: bool = False,
) -> np.memmap:
    """Encode a corpus file to token ids on disk, once; return them memory-mapped.

    Returns a read-only ``np.memmap`` of shape ``(N,)`` and dtype ``int32``: the ids of every
    sentence, each followed by ``vocab.eos_id`` (tokens outside ``vocab`` become its
    ``<unk>``). They are written to ``out_dir/ids-<key>.bin``, ``key`` a hash of the corpus
    path, the vocabulary and the format options, with a sidecar ``ids-<key>.json`` holding
    the corpus size, mtime, blake2b content hash (of the bytes read while encoding), the
    vocabulary hash and ``N``. A later call reuses the file when the vocabulary hash and
    options match and either size and mtime are unchanged or (size unchanged, mtime changed,
    or ``verify=True``) the content hash of the corpus still matches; otherwise it encodes
    again. Writes go to temporary files renamed into place, so an interrupted run leaves no
    half-written ids behind.
    """
    p = _check_file(path)
    if not isinstance(vocab, Vocab):
        raise RnnkitError(f"encode_to_memmap needs a Vocab, got {type(vocab).__name__}")
    eos = vocab.eos_id
    if eos is None:
        raise RnnkitError(f"the vocabulary has no {Vocab.EOS!r} to end sentences with")
    fmt, lower = _resolve(p, fmt, lower, unk_token)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vhash = _vocab_hash(vocab)
    options = {
        "corpus": str(p.resolve()),
        "vocab_hash": vhash,
        "fmt": fmt,
        "lower": lower,
        "unk_token": unk_token,
        "dtype": "int32",
        "version": _SIDECAR_VERSION,
    }
    key_blob = json.dumps(options, sort_keys=True).encode("utf-8")
    key = hashlib.blake2b(key_blob, digest_size=8).hexdigest()
    bin_path, meta_path = out / f"ids-{key}.bin", out / f"ids-{key}.json"

    st = p.stat()
    meta = _read_sidecar(meta_path)
    if (
        meta is not None
        and all(meta.get(k) == v for k, v in options.items())
        and isinstance(meta.get("n_tokens"), int)
        and meta["n_tokens"] > 0
        and bin_path.is_file()
        and bin_path.stat().st_size == 4 * meta["n_tokens"]
        and meta.get("size") == st.st_size
    ):
        if not verify and meta.get("mtime_ns") == st.st_mtime_ns:
            return _open_ids(bin_path, meta["n_tokens"])
        if _hash_file(p, progress) == meta.get("content_hash"):
            meta["mtime_ns"] = st.st_mtime_ns
            _write_json_atomic(meta_path, meta)
            return _open_ids(bin_path, meta["n_tokens"])

    hasher = hashlib.blake2b(digest_size=16)
    tmp = bin_path.with_name(f"{bin_path.name}.tmp-{os.getpid()}")
    n_tokens = 0
    try:
        with open(tmp, "wb") as f:
            buf: list[str] = []
            lines = _iter_lines(p, progress, f"encoding {p.name}", hasher)
            for sent in iter_sentences(lines, fmt, lower, unk_token):
                buf.extend(sent)
                buf.append(Vocab.EOS)
                if len(buf) >= _ENCODE_BUFFER:
                    vocab.encode(buf).astype(np.int32).tofile(f)
                    n_tokens += len(buf)
                    buf = []
            if buf:
                vocab.encode(buf).astype(np.int32).tofile(f)
                n_tokens += len(buf)
        if n_tokens == 0:
            raise RnnkitError(f"corpus has no tokens: {p}")
        os.replace(tmp, bin_path)
    finally:
        if tmp.exists():
            tmp.unlink()
    meta = dict(
        options,
        size=st.st_size,
        mtime_ns=st.st_mtime_ns,
        content_hash=hasher.hexdigest(),
        n_tokens=n_tokens,
    )
    _write_json_atomic(meta_path, meta)
    return _open_ids(bin_path, n_tokens)


# ---------------------------------------------------------------------------- batches
class StreamBatches:
    """The chunks of :func:`rnnkit.data.batching.stream_batches`, by index, read on demand.

    ``ids`` is a 1-D integer array of shape ``(N,)``, typically the ``np.memmap`` of
    :func:`encode_to_memmap`; it is never copied whole. As in ``stream_batches`` the stream is
    cut into ``B = batch_size`` columns of ``R = N // B`` consecutive tokens (column ``b`` is
    ``ids[b*R:(b+1)*R]``) and ``self[i]`` is ``(inputs, targets)``, both ``(k, B)`` int64 with
    ``inputs[t, b] = ids[b*R + i*bptt + t]`` and ``targets[t, b] = ids[b*R + i*bptt + t + 1]``,
    ``k = min(bptt, R - 1 - i*bptt)``. Only those ``(k + 1) * B`` ids are read.
    ``len(self) == num_stream_batches(N, B, bptt)``.
    """

    def __init__(self, ids: np.ndarray, batch_size: int, bptt: int) -> None:
        if not isinstance(ids, np.ndarray):
            ids = np.asarray(ids)
        if ids.ndim != 1:
            raise RnnkitError(f"token stream must be a 1-D id array, got shape {ids.shape}")
        if ids.size and not np.issubdtype(ids.dtype, np.integer):
            raise RnnkitError(f"token stream must hold integer ids, got dtype {ids.dtype}")
        self._len = num_stream_batches(int(ids.shape[0]), batch_size, bptt)  # validates
        self.ids = ids
        self.batch_size = int(batch_size)
        self.bptt = int(bptt)
        self.rows = int(ids.shape[0]) // self.batch_size
        self._col_start = np.arange(self.batch_size, dtype=np.int64) * self.rows

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
            raise TypeError(f"StreamBatches indices must be integers, not {type(i).__name__}")
        i = int(i)
        if i < 0:
            i += self._len
        if not 0 <= i < self._len:
            raise IndexError(f"chunk {i} out of range for {self._len} chunks")
        start = i * self.bptt
        k = min(self.bptt, self.rows - 1 - start)
        idx = (start + np.arange(k + 1, dtype=np.int64))[:, None] + self._col_start[None, :]
        block = np.asarray(self.ids[idx], dtype=np.int64)  # (k + 1, B), read from disk
        return block[:-1].copy(), block[1:].copy()

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for i in range(self._len):
            yield self[i]

    def __repr__(self) -> str:
        return (
            f"StreamBatches(n_tokens={self.ids.shape[0]}, batch_size={self.batch_size}, "
            f"bptt={self.bptt}, chunks={self._len})"
        )
