"""Checkpoints: one ``.npz`` file holding named arrays plus JSON metadata, written atomically.

Layout: every array is stored under its own key; the metadata dict is stored as
``json.dumps(meta).encode()`` in a uint8 array under the reserved key ``"__meta__"``, so loading
never needs pickle (``np.load(..., allow_pickle=False)``).

Writing goes to a temporary file in the target's directory, which is flushed, fsync'ed and then
``os.replace``'d onto the target: a crash or error mid-write leaves the previous checkpoint
intact and no temporary file behind.

``rng_state_to_json`` / ``rng_from_json`` turn a ``np.random.Generator`` into a JSON-able dict
and back, so a resumed run continues the exact same random stream.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
import zipfile
import zlib
from typing import Any

import numpy as np

from rnnkit.errors import RnnkitError

__all__ = ["load_checkpoint", "rng_from_json", "rng_state_to_json", "save_checkpoint"]

META_KEY = "__meta__"
# np.savez's own keyword arguments cannot double as array names
_RESERVED = {META_KEY, "file", "allow_pickle"}


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(directory: str) -> None:
    """Make the rename durable (POSIX); silently skipped where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_checkpoint(
    path: str | os.PathLike[str], arrays: dict[str, np.ndarray], meta: dict[str, Any]
) -> None:
    """Write ``arrays`` and the JSON-able ``meta`` dict to the ``.npz`` file ``path`` atomically.

    Array keys must be non-empty strings other than ``"__meta__"``, ``"file"`` and
    ``"allow_pickle"``; object-dtype arrays are refused. The file is written exactly at ``path``
    (no ``.npz`` suffix is added).
    """
    path = os.fspath(path)
    if not isinstance(meta, dict):
        raise RnnkitError(f"checkpoint metadata must be a dict, got {type(meta).__name__}")
    try:
        meta_bytes = json.dumps(meta).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise RnnkitError(f"checkpoint metadata is not JSON-serialisable: {exc}") from None

    payload: dict[str, Any] = {}  # Any: np.savez's stub reads **kwds as its own flags
    for key, value in arrays.items():
        if not isinstance(key, str) or not key:
            raise RnnkitError(f"checkpoint array names must be non-empty strings, got {key!r}")
        if key in _RESERVED:
            raise RnnkitError(f"checkpoint array name {key!r} is reserved")
        try:
            arr = np.asarray(value)
        except ValueError as exc:
            raise RnnkitError(f"checkpoint array {key} is not a regular array: {exc}") from None
        if arr.dtype.hasobject:
            raise RnnkitError(f"checkpoint array {key} has object dtype; only plain arrays")
        payload[key] = arr
    payload[META_KEY] = np.frombuffer(meta_bytes, dtype=np.uint8)

    directory = os.path.dirname(os.path.abspath(path))
    try:
        mode = os.stat(path).st_mode & 0o777
    except OSError:
        mode = 0o666 & ~_current_umask()
    tmp = tempfile.NamedTemporaryFile(
        delete=False, dir=directory, prefix=os.path.basename(path) + ".", suffix=".tmp"
    )
    try:
        with tmp:
            np.savez(tmp, **payload)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.chmod(tmp.name, mode)
        os.replace(tmp.name, path)
    except BaseException:
        try:
            os.unlink(tmp.name)
        except OSError:
            pass
        raise
    _fsync_dir(directory)


def load_checkpoint(path: str | os.PathLike[str]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`; returns ``(arrays, meta)``.

    All arrays are read into memory and the file is closed before returning.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise RnnkitError(f"checkpoint not found: {path}")
    try:
        with open(path, "rb") as fh:
            loaded = np.load(fh, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                raise ValueError("not an npz archive")
            with loaded:
                data = {key: loaded[key] for key in loaded.files}
    except (
        OSError,
        EOFError,
        ValueError,
        KeyError,
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        zlib.error,
        struct.error,
        NotImplementedError,
    ) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "pickle" in detail.lower():  # never suggest loading untrusted data with pickle
            detail = "not an archive of plain arrays"
        raise RnnkitError(f"corrupt or unreadable checkpoint: {path} ({detail})") from None

    raw = data.pop(META_KEY, None)
    if raw is None or raw.dtype != np.uint8 or raw.ndim != 1:
        raise RnnkitError(f"not an rnnkit checkpoint: {path}")
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise RnnkitError(f"not an rnnkit checkpoint: {path}") from None
    if not isinstance(meta, dict):
        raise RnnkitError(f"not an rnnkit checkpoint: {path}")
    return data, meta


# --------------------------------------------------------------------------------------------
# random number generator state
# --------------------------------------------------------------------------------------------

_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


def _to_jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (list, tuple)):
        return [_to_jsonable(v) for v in obj]
    return obj


def rng_state_to_json(rng: np.random.Generator) -> dict[str, Any]:
    """The generator's ``bit_generator.state`` as plain JSON types (ints, lists, dicts).

    PCG64's 128-bit state words stay Python ints, which ``json`` writes and reads exactly.
    """
    if not isinstance(rng, np.random.Generator):
        raise RnnkitError(f"expected a numpy Generator, got {type(rng).__name__}")
    return _to_jsonable(rng.bit_generator.state)


def rng_from_json(d: dict[str, Any]) -> np.random.Generator:
    """Rebuild a ``np.random.Generator`` from :func:`rng_state_to_json`'s dict; its next draws
    are exactly those the saved generator would have produced."""
    name = d.get("bit_generator") if isinstance(d, dict) else None
    if name not in _BIT_GENERATORS:
        raise RnnkitError(f"invalid RNG state: unknown bit generator {name!r}")
    bit_gen = getattr(np.random, name)()
    try:
        bit_gen.state = d
    except (TypeError, ValueError, KeyError, OverflowError) as exc:
        raise RnnkitError(f"invalid RNG state for {name}: {exc}") from None
    return np.random.Generator(bit_gen)
