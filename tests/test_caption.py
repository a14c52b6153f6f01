"""Vector to sequence (10.2.4): rendered shapes, PNG files, the conditioned captioner's gradients,
a short training run well above chance, and ``rnnkit predict RUN image.png``."""

from __future__ import annotations

import json
import struct
import zlib

import numpy as np
import pytest
from conftest import need, run_cli

from rnnkit.data import shapes
from rnnkit.data.shapes import (
    COLOURS,
    WORDS,
    all_attributes,
    caption,
    decode_caption,
    encode_caption,
    make_dataset,
    parse_caption,
    read_png,
    render,
    resize_nearest,
    split_pairs,
    write_png,
)
from rnnkit.errors import RnnkitError
from rnnkit.gradcheck import gradcheck
from rnnkit.models.captioner import Captioner, CaptionerConfig
from rnnkit.tasks.caption import caption_batch

_run = run_cli  # rnnkit.cli.main in process (tests/conftest.py)


# ------------------------------------------------------------------------------ rendering
def test_captions_and_renderings():
    attrs = all_attributes()
    assert len(attrs) == 180 and len({caption(*a) for a in attrs}) == 180
    text = caption("small", "red", "circle", "top left")
    assert text == "a small red circle at the top left"
    assert decode_caption(np.r_[encode_caption(text), WORDS.index("</s>"), 0]) == text
    assert parse_caption(text) == {
        "size": "small",
        "colour": "red",
        "shape": "circle",
        "position": "top left",
    }
    img = render("large", "yellow", "square", "bottom right", 32)  # no jitter
    assert img.shape == (32, 32, 3) and img.dtype == np.float32
    assert img[24, 24].tolist() == [1, 1, 0] and img[8, 8].tolist() == [0, 0, 0]
    small = render("small", "blue", "circle", "centre", 32)
    assert (
        0
        < (small.sum(axis=2) > 0).sum()
        < (render("large", "blue", "circle", "centre", 32).sum(axis=2) > 0).sum()
    )
    tri = render("large", "green", "triangle", "centre", 32)
    ink = tri[..., 1] > 0
    assert ink[12:16].sum() < ink[20:24].sum()  # pointing up: wider at the bottom
    a, ca, _ = make_dataset(5, 24, seed=3)
    b, cb, _ = make_dataset(5, 24, seed=3)
    assert np.array_equal(a, b) and ca == cb and a.shape == (5, 24, 24, 3)


def test_unseen_pairs_are_kept_out_of_training():
    seen, unseen = split_pairs(3, seed=0)
    assert len(unseen) == 3 and not seen & unseen
    assert {c for _, c in seen} == set(COLOURS) and len({s for s, _ in seen}) == 3
    _, _, attrs = make_dataset(300, 16, seed=1, pairs=seen)
    assert all((s, c) in seen for _, c, s, _ in attrs)


# ------------------------------------------------------------------------------ PNG
def test_png_round_trip_and_resize(tmp_path):
    img = make_dataset(1, 24, seed=2)[0][0]
    p = tmp_path / "a.png"
    write_png(p, img)
    back = read_png(p)
    assert back.shape == (24, 24, 3)
    assert np.abs(back - img).max() <= 0.5 / 255 + 1e-6
    data = p.read_bytes()
    pure = shapes._decode_png(p, data, 24, 24, 3)  # the reader without matplotlib
    assert np.array_equal(pure, np.rint(img * 255).astype(np.uint8))
    big = np.repeat(np.repeat(back, 3, axis=0), 3, axis=1)
    assert np.array_equal(resize_nearest(big, 24), back)


def test_read_png_without_matplotlib(tmp_path, monkeypatch):
    import sys

    img = make_dataset(1, 16, seed=5)[0][0]
    p = tmp_path / "b.png"
    write_png(p, img)
    with_mpl = read_png(p)
    monkeypatch.setitem(sys.modules, "matplotlib.image", None)  # import fails: the pure reader
    assert np.array_equal(read_png(p), with_mpl)
    rgba = tmp_path / "rgba.png"
    px = np.array([[[255, 0, 0, 255], [0, 255, 0, 0]]], np.uint8)  # opaque red, transparent green
    rgba.write_bytes(_png_bytes(2, 1, 6, b"\x00" + px.tobytes()))
    assert read_png(rgba).tolist() == [[[1, 0, 0], [0, 0, 0]]]  # composited over black


def test_pure_png_reader_handles_every_row_filter_and_alpha(tmp_path):
    plt = need("matplotlib.pyplot")
    from matplotlib.image import imread

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:20, 0:17]
    rgba = np.stack([yy / 20, xx / 17, (yy + xx) % 7 / 7, 0.5 + 0.5 * rng.random((20, 17))], axis=2)
    p = tmp_path / "rgba.png"
    plt.imsave(p, rgba)  # Pillow picks row filters (Sub, Up, Average, Paeth) adaptively
    want = (imread(p) * 255).round().astype(np.uint8)
    got = shapes._decode_png(p, p.read_bytes(), 17, 20, 4)
    assert np.array_equal(got, want)
    # every filter type, written by hand
    raw = rng.integers(0, 256, (6, 5 * 3)).astype(np.uint8)
    rows = []
    prev = np.zeros(15, np.int32)
    for y in range(6):
        cur, f = raw[y].astype(np.int32), y % 5
        left = np.r_[np.zeros(3, np.int32), cur[:-3]]
        upleft = np.r_[np.zeros(3, np.int32), prev[:-3]]
        if f == 0:
            enc = cur
        elif f == 1:
            enc = cur - left
        elif f == 2:
            enc = cur - prev
        elif f == 3:
            enc = cur - (left + prev) // 2
        else:
            pp = left + prev - upleft
            pa, pb, pc = abs(pp - left), abs(pp - prev), abs(pp - upleft)
            enc = cur - np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prev, upleft))
        rows.append(np.r_[f, enc % 256].astype(np.uint8))
        prev = cur
    png = _png_bytes(5, 6, 2, np.concatenate(rows).tobytes())
    assert np.array_equal(shapes._decode_png("x", png, 5, 6, 3), raw.reshape(6, 5, 3))


def _png_bytes(W, H, ctype, raw: bytes, depth=8) -> bytes:
    def chunk(kind, data):
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, depth, ctype, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def test_png_errors_are_one_line(tmp_path):
    with pytest.raises(RnnkitError, match="no such file"):
        read_png(tmp_path / "missing.png")
    txt = tmp_path / "notes.png"
    txt.write_text("hello")
    with pytest.raises(RnnkitError, match="not a PNG"):
        read_png(txt)
    grey = tmp_path / "grey.png"
    grey.write_bytes(_png_bytes(2, 2, 0, bytes(6)))
    with pytest.raises(RnnkitError, match="8-bit greyscale PNG; rnnkit reads 8-bit RGB or RGBA"):
        read_png(grey)


# ------------------------------------------------------------------------------ gradients
@pytest.mark.parametrize(
    "condition,cell,layers",
    [("input", "rnn", 2), ("state", "rnn", 2), ("both", "lstm", 1), ("both", "gru", 1)],
)
def test_gradcheck_captioner(condition, cell, layers):
    cfg = CaptionerConfig(
        image_size=16,
        vocab_size=len(WORDS),
        condition=condition,
        encoder_size=4,
        vector_size=3,
        embed_size=3,
        hidden_size=4,
        cell=cell,
        num_layers=layers,
        dtype="float64",
        seed=1,
    )
    m = Captioner(cfg)
    imgs, _, _ = make_dataset(3, 16, seed=4)
    caps = [
        caption("small", "red", "circle", "centre"),
        caption("large", "blue", "square", "top left"),
        caption("small", "cyan", "triangle", "bottom right"),
    ]
    batch = caption_batch(imgs.astype(np.float64), caps)
    assert batch[3] is not None  # ragged: "centre" is one word shorter
    r = m.loss_and_grads(batch)
    grads = {k: v.copy() for k, v in r.grads.items()}
    assert ("cond_in.weight" in grads) == (condition != "state")
    assert ("cond_state.weight" in grads) == (condition != "input")
    res = gradcheck(lambda: m.nll(batch), dict(m.parameters()), grads, max_entries=60)
    assert res.max_rel_error < 1e-6, res


# ------------------------------------------------------------------------------ training, predict
def test_caption_training_beats_chance_and_predicts_png(tmp_path):
    out = tmp_path / "run"
    code, so, se = _run(
        [
            "train",
            "caption",
            "--image-size",
            24,
            "--n-train",
            1500,
            "--n-valid",
            300,
            "--epochs",
            6,
            "--out",
            out,
            "--no-progress",
            "--samples",
            "2",
        ]
    )
    assert code == 0, se
    assert "per attribute (greedy)" in so
    code, so, _ = _run(["eval", out, "--json"])
    m = json.loads(so)
    assert m["exact"] > 0.2, m  # chance: 1/180
    assert m["word_accuracy"] > 0.85 and m["tf_accuracy"] > 0.85, m
    # a PNG at another size, resized by nearest neighbour
    files = []
    for k, attrs in enumerate(
        [("large", "red", "circle", "top left"), ("small", "green", "square", "centre")]
    ):
        p = tmp_path / f"img{k}.png"
        write_png(p, render(*attrs, image_size=48))
        files.append(p)
    code, so, se = _run(["predict", out, *files])
    assert code == 0, se
    lines = so.splitlines()
    assert len(lines) == 2
    for p, line in zip(files, lines):
        path, text = line.split("\t")
        assert path == str(p) and all(v is not None for v in parse_caption(text).values()), line
    from rnnkit.tasks.runs import load_model

    _, model, _, _ = load_model(out, load_data=False)
    direct = model.greedy(resize_nearest(read_png(files[0]), 24)[None])
    assert lines[0].split("\t")[1] == decode_caption(direct[:, 0])
    # one-line errors
    (tmp_path / "notes.txt").write_text("hi")
    for bad, msg in (
        (tmp_path / "nope.png", "no such file"),
        (tmp_path / "notes.txt", "not a PNG"),
    ):
        code, _, se = _run(["predict", out, bad])
        assert code == 2 and msg in se and len(se.strip().splitlines()) == 1


def test_unseen_pairs_metric(tmp_path):
    out = tmp_path / "u"
    code, so, se = _run(
        [
            "train",
            "caption",
            "--image-size",
            16,
            "--n-train",
            200,
            "--n-valid",
            100,
            "--unseen-pairs",
            2,
            "--epochs",
            1,
            "--out",
            out,
            "--no-progress",
            "--samples",
            "0",
            "--encoder-size",
            16,
            "--hidden-size",
            16,
        ]
    )
    assert code == 0, se
    code, so, _ = _run(["eval", out, "--json"])
    m = json.loads(so)
    assert 0.0 <= m["exact_unseen"] <= 1.0 and "exact" in m
