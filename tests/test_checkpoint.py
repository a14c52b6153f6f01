"""Tests for rnnkit.checkpoint: round trip, atomic writes, corrupt files, RNG state."""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np
import pytest

from rnnkit import checkpoint
from rnnkit.checkpoint import load_checkpoint, rng_from_json, rng_state_to_json, save_checkpoint
from rnnkit.errors import RnnkitError


def _arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "weight_hh_l0": rng.standard_normal((4, 3)).astype(np.float32),
        "bias_l0": rng.standard_normal(5),
        "exp_avg/weight_hh_l0": rng.standard_normal((4, 3)),
        "counts": np.arange(6, dtype=np.int64).reshape(2, 3),
        "mask": np.array([True, False, True]),
        "scalar": np.array(3.5),
        "empty": np.zeros((0, 2), dtype=np.float32),
    }


META = {"epoch": 3, "loss": 1.25, "name": "lstm-ü", "nested": {"a": [1, 2, None], "b": True}}


def _tmp_leftovers(directory) -> list[str]:
    return [n for n in os.listdir(directory) if n.endswith(".tmp")]


def test_round_trip_preserves_arrays_and_meta(tmp_path):
    path = tmp_path / "ckpt.npz"
    arrays = _arrays()
    save_checkpoint(path, arrays, META)
    loaded, meta = load_checkpoint(path)
    assert meta == META
    assert set(loaded) == set(arrays)
    for key, arr in arrays.items():
        got = loaded[key]
        assert type(got) is np.ndarray, key
        assert got.dtype == arr.dtype, key
        assert got.shape == arr.shape, key
        np.testing.assert_array_equal(got, arr, err_msg=key)
    assert _tmp_leftovers(tmp_path) == []


def test_loaded_arrays_are_in_memory(tmp_path):
    path = tmp_path / "ckpt.npz"
    save_checkpoint(path, {"w": np.arange(4.0)}, {})
    loaded, _ = load_checkpoint(path)
    os.remove(path)
    loaded["w"] += 1.0  # writeable, independent of the (now deleted) file
    np.testing.assert_array_equal(loaded["w"], [1.0, 2.0, 3.0, 4.0])


def test_path_used_exactly_and_str_accepted(tmp_path):
    path = str(tmp_path / "model.ckpt")
    save_checkpoint(path, {"w": np.ones(2)}, {"k": 1})
    assert os.listdir(tmp_path) == ["model.ckpt"]
    assert load_checkpoint(path)[1] == {"k": 1}


def test_meta_stored_as_uint8_json(tmp_path):
    path = tmp_path / "ckpt.npz"
    save_checkpoint(path, {"w": np.ones(2)}, META)
    with np.load(path, allow_pickle=False) as npz:
        raw = npz["__meta__"]
    assert raw.dtype == np.uint8
    assert json.loads(raw.tobytes().decode()) == META


def test_overwrite_replaces_old(tmp_path):
    path = tmp_path / "ckpt.npz"
    save_checkpoint(path, {"w": np.zeros(2)}, {"v": 1})
    save_checkpoint(path, {"w": np.ones(3)}, {"v": 2})
    arrays, meta = load_checkpoint(path)
    assert meta == {"v": 2}
    np.testing.assert_array_equal(arrays["w"], np.ones(3))
    assert _tmp_leftovers(tmp_path) == []


# ----------------------------------------------------------------------------------------------
# atomicity
# ----------------------------------------------------------------------------------------------


def test_failure_in_savez_keeps_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    save_checkpoint(path, {"w": np.zeros(2)}, {"v": 1})
    old_bytes = path.read_bytes()

    def exploding_savez(file, *args, **kwargs):
        file.write(b"PK\x03\x04 half-written archive")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", exploding_savez)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"w": np.ones(2)}, {"v": 2})
    assert path.read_bytes() == old_bytes
    assert _tmp_leftovers(tmp_path) == []
    monkeypatch.undo()
    assert load_checkpoint(path)[1] == {"v": 1}


def test_failure_in_replace_keeps_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    save_checkpoint(path, {"w": np.zeros(2)}, {"v": 1})
    old_bytes = path.read_bytes()

    def failing_replace(src, dst):
        raise OSError("rename failed")

    monkeypatch.setattr(checkpoint.os, "replace", failing_replace)
    with pytest.raises(OSError, match="rename failed"):
        save_checkpoint(path, {"w": np.ones(2)}, {"v": 2})
    monkeypatch.undo()
    assert path.read_bytes() == old_bytes
    assert sorted(os.listdir(tmp_path)) == ["ckpt.npz"]


def test_interrupt_keeps_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    save_checkpoint(path, {"w": np.zeros(2)}, {"v": 1})
    old_bytes = path.read_bytes()

    def interrupted(file, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"w": np.ones(2)}, {"v": 2})
    assert path.read_bytes() == old_bytes
    assert _tmp_leftovers(tmp_path) == []


def test_first_save_failure_leaves_nothing(tmp_path, monkeypatch):
    def exploding_savez(file, *args, **kwargs):
        raise OSError("boom")

    monkeypatch.setattr(np, "savez", exploding_savez)
    with pytest.raises(OSError):
        save_checkpoint(tmp_path / "ckpt.npz", {"w": np.ones(2)}, {})
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------------------------
# validation on save
# ----------------------------------------------------------------------------------------------


def test_object_arrays_refused(tmp_path):
    with pytest.raises(RnnkitError, match="bad"):
        save_checkpoint(tmp_path / "c.npz", {"bad": np.array([{"a": 1}], dtype=object)}, {})
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("key", ["__meta__", "", 3])
def test_bad_array_keys_refused(tmp_path, key):
    with pytest.raises(RnnkitError):
        save_checkpoint(tmp_path / "c.npz", {key: np.ones(2)}, {})
    assert os.listdir(tmp_path) == []


def test_non_json_meta_refused(tmp_path):
    with pytest.raises(RnnkitError, match="JSON"):
        save_checkpoint(tmp_path / "c.npz", {"w": np.ones(2)}, {"arr": np.ones(2)})
    with pytest.raises(RnnkitError, match="dict"):
        save_checkpoint(tmp_path / "c.npz", {"w": np.ones(2)}, [1, 2])
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------------------------
# bad files on load
# ----------------------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    path = tmp_path / "nope.npz"
    with pytest.raises(RnnkitError, match="checkpoint not found: .*nope.npz"):
        load_checkpoint(path)


def test_random_bytes(tmp_path):
    path = tmp_path / "junk.npz"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(RnnkitError, match="corrupt or unreadable checkpoint: .*junk.npz"):
        load_checkpoint(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.npz"
    path.write_bytes(b"")
    with pytest.raises(RnnkitError, match="corrupt or unreadable checkpoint"):
        load_checkpoint(path)


@pytest.mark.parametrize("keep", [0.5, 0.9, "minus10"])
def test_truncated_checkpoint(tmp_path, keep):
    path = tmp_path / "ckpt.npz"
    save_checkpoint(path, _arrays(), META)
    data = path.read_bytes()
    n = len(data) - 10 if keep == "minus10" else int(len(data) * keep)
    path.write_bytes(data[:n])
    with pytest.raises(RnnkitError, match="corrupt or unreadable checkpoint"):
        load_checkpoint(path)


def test_flipped_byte_in_array_data(tmp_path):
    path = tmp_path / "ckpt.npz"
    save_checkpoint(path, {"w": np.zeros(1000)}, META)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("w.npy")
    # local header is 30 bytes + file name + extra field; flip a byte well inside the data
    data[info.header_offset + 30 + len(info.filename) + 2000] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(RnnkitError, match="corrupt or unreadable checkpoint"):
        load_checkpoint(path)


def test_plain_npy_file_rejected(tmp_path):
    path = tmp_path / "arr.npy"
    np.save(path, np.ones(3))
    with pytest.raises(RnnkitError, match="corrupt or unreadable checkpoint"):
        load_checkpoint(path)


def test_directory_is_unreadable(tmp_path):
    with pytest.raises(RnnkitError, match="corrupt or unreadable checkpoint"):
        load_checkpoint(tmp_path)


def test_npz_without_meta(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, w=np.ones(2))
    with pytest.raises(RnnkitError, match="not an rnnkit checkpoint: .*plain.npz"):
        load_checkpoint(path)


@pytest.mark.parametrize("payload", [b"{not json", b"\xff\xfe", b"[1, 2]"])
def test_npz_with_bad_meta(tmp_path, payload):
    path = tmp_path / "bad.npz"
    np.savez(path, w=np.ones(2), __meta__=np.frombuffer(payload, dtype=np.uint8))
    with pytest.raises(RnnkitError, match="not an rnnkit checkpoint"):
        load_checkpoint(path)


def test_npz_with_object_array(tmp_path):
    path = tmp_path / "obj.npz"
    meta = np.frombuffer(b"{}", dtype=np.uint8)
    np.savez(path, w=np.array([None, 1], dtype=object), __meta__=meta, allow_pickle=True)
    with pytest.raises(RnnkitError, match="corrupt or unreadable checkpoint"):
        load_checkpoint(path)


# ----------------------------------------------------------------------------------------------
# RNG state
# ----------------------------------------------------------------------------------------------


def _draws(rng: np.random.Generator) -> list:
    return [
        rng.random(5).tolist(),
        rng.standard_normal(3).tolist(),
        rng.integers(0, 1000, size=4).tolist(),
        rng.integers(0, 2**32, size=3, dtype=np.uint32).tolist(),
        rng.permutation(10).tolist(),
    ]


def test_rng_round_trip_same_stream():
    rng = np.random.default_rng(2024)
    rng.random(17)
    rng.integers(0, 2**32, size=1, dtype=np.uint32)  # leaves a buffered 32-bit half
    state = rng_state_to_json(rng)
    text = json.dumps(state)  # must be plain JSON
    restored = rng_from_json(json.loads(text))
    assert _draws(restored) == _draws(rng)


@pytest.mark.parametrize("name", ["PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64"])
def test_rng_round_trip_other_bit_generators(name):
    rng = np.random.Generator(getattr(np.random, name)(99))
    rng.random(3)
    restored = rng_from_json(json.loads(json.dumps(rng_state_to_json(rng))))
    assert type(restored.bit_generator).__name__ == name
    assert _draws(restored) == _draws(rng)


def test_rng_state_through_checkpoint(tmp_path):
    rng = np.random.default_rng(5)
    rng.standard_normal(11)
    save_checkpoint(tmp_path / "c.npz", {"w": np.ones(1)}, {"rng": rng_state_to_json(rng)})
    _, meta = load_checkpoint(tmp_path / "c.npz")
    assert _draws(rng_from_json(meta["rng"])) == _draws(rng)


def test_rng_state_does_not_advance_source():
    rng = np.random.default_rng(8)
    twin = np.random.default_rng(8)
    rng_state_to_json(rng)
    assert _draws(rng) == _draws(twin)


@pytest.mark.parametrize(
    "bad",
    [{}, {"bit_generator": "Nope"}, {"bit_generator": "PCG64", "state": {}}, "PCG64"],
)
def test_rng_from_bad_json(bad):
    with pytest.raises(RnnkitError):
        rng_from_json(bad)
