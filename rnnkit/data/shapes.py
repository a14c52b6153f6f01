"""Images of coloured shapes, rendered in NumPy, with their captions; and PNG files.

Each image is an S x S RGB float array in [0, 1], (S, S, 3), showing one shape on a dark, noisy
background, described by its caption:

    "a small red circle at the top left"      "a large cyan triangle at the centre"

    size:     small | large                    shape:   circle | square | triangle
    colour:   red | green | blue | yellow | cyan | magenta
    position: top left | top right | bottom left | bottom right | centre

(2 x 6 x 3 x 5 = 180 captions.) Every rendering draws its own jitter: the centre moves by up to
S/16 pixels each way, the radius by +-10 %, the colour's brightness in [0.7, 1], plus background
noise, so held-out images are new renderings of the same captions. :func:`make_dataset` can also
keep some (shape, colour) pairs out of training altogether (``unseen_pairs``).

PNG: :func:`write_png` (8-bit RGB, one zlib stream) and :func:`read_png` (8-bit RGB or RGBA,
non-interlaced; matplotlib's ``imread`` decodes when installed, else the pure NumPy/zlib reader
here), with one-line :class:`~rnnkit.errors.RnnkitError` messages for a missing file, a file that
is not a PNG and an unsupported mode; :func:`resize_nearest` fits any image to the model's size.
"""

from __future__ import annotations

import os
import struct
import zlib
from itertools import product

import numpy as np

from ..errors import RnnkitError

SIZES = ("small", "large")
COLOURS = {
    "red": (1, 0, 0),
    "green": (0, 1, 0),
    "blue": (0, 0, 1),
    "yellow": (1, 1, 0),
    "cyan": (0, 1, 1),
    "magenta": (1, 0, 1),
}
SHAPES = ("circle", "square", "triangle")
POSITIONS = {
    "top left": (0.25, 0.25),
    "top right": (0.25, 0.75),
    "bottom left": (0.75, 0.25),
    "bottom right": (0.75, 0.75),
    "centre": (0.5, 0.5),
}  # (row, column) as fractions of S

PAD, BOS, EOS = "<pad>", "<s>", "</s>"
WORDS = [
    PAD,
    BOS,
    EOS,
    "a",
    "at",
    "the",
    *SIZES,
    *COLOURS,
    *SHAPES,
    "top",
    "bottom",
    "left",
    "right",
    "centre",
]
WORD_ID = {w: i for i, w in enumerate(WORDS)}


def all_attributes() -> list[tuple[str, str, str, str]]:
    """Every (size, colour, shape, position) combination, in a fixed order."""
    return list(product(SIZES, COLOURS, SHAPES, POSITIONS))


def caption(size: str, colour: str, shape: str, position: str) -> str:
    return f"a {size} {colour} {shape} at the {position}"


def encode_caption(text: str) -> np.ndarray:
    """'a small red circle ...' -> word ids (L,), without <s> / </s>."""
    try:
        return np.array([WORD_ID[w] for w in text.split()], np.int64)
    except KeyError as exc:
        raise RnnkitError(
            f"caption {text!r} has a word outside the vocabulary: {exc.args[0]!r}"
        ) from None


def decode_caption(ids) -> str:
    """Word ids -> text, stopping at </s> and skipping <pad> and <s>."""
    out = []
    for i in ids:
        w = WORDS[int(i)]
        if w == EOS:
            break
        if w not in (PAD, BOS):
            out.append(w)
    return " ".join(out)


def parse_caption(text: str) -> dict:
    """The attributes a caption names: {'size', 'colour', 'shape', 'position'} (None if absent)."""
    words = text.split()
    pick = lambda vocab: next((w for w in words if w in vocab), None)  # noqa: E731
    pos = " ".join(w for w in words if w in ("top", "bottom", "left", "right", "centre")) or None
    return {"size": pick(SIZES), "colour": pick(COLOURS), "shape": pick(SHAPES), "position": pos}


def render(
    size: str,
    colour: str,
    shape: str,
    position: str,
    image_size: int = 32,
    rng: np.random.Generator | None = None,
    noise: float = 0.05,
) -> np.ndarray:
    """One image (S, S, 3) float32 in [0, 1]. ``rng`` None: no jitter, no noise."""
    S = int(image_size)
    if S < 16:
        raise RnnkitError(f"image size must be >= 16, got {S}")
    fr, fc = POSITIONS[position]
    r = S * (0.09 if size == "small" else 0.19)
    cy, cx, bright = fr * S, fc * S, 1.0
    if rng is not None:
        j = S / 16
        cy, cx = cy + rng.uniform(-j, j), cx + rng.uniform(-j, j)
        r *= rng.uniform(0.9, 1.1)
        bright = rng.uniform(0.7, 1.0)
    yy, xx = np.mgrid[0:S, 0:S] + 0.5
    dy, dx = yy - cy, xx - cx
    if shape == "circle":
        inside = dy * dy + dx * dx <= r * r
    elif shape == "square":
        inside = (np.abs(dy) <= 0.85 * r) & (np.abs(dx) <= 0.85 * r)
    else:  # triangle, point up: apex at cy - r, base at cy + r, base width 2.2 r
        inside = (dy >= -r) & (dy <= r) & (np.abs(dx) <= 0.55 * (dy + r))
    img = np.zeros((S, S, 3), np.float32)
    if rng is not None and noise > 0:
        img += rng.uniform(0, noise, img.shape).astype(np.float32)
    img[inside] = np.asarray(COLOURS[colour], np.float32) * bright
    return img


def make_dataset(
    n: int,
    image_size: int = 32,
    seed: int | np.random.Generator = 0,
    noise: float = 0.05,
    pairs: set | None = None,
):
    """``n`` renderings of captions drawn uniformly (only with (shape, colour) in ``pairs`` when
    given). Returns (images (n, S, S, 3) float32, captions list[str], attributes list[tuple])."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    combos = [a for a in all_attributes() if pairs is None or (a[2], a[1]) in pairs]
    if not combos:
        raise RnnkitError("no caption is left to draw from")
    pick = rng.integers(0, len(combos), n)
    attrs = [combos[i] for i in pick]
    imgs = (
        np.stack(
            [
                render(sz, col, shp, pos, image_size=image_size, rng=rng, noise=noise)
                for sz, col, shp, pos in attrs
            ]
        )
        if n
        else np.zeros((0, image_size, image_size, 3), np.float32)
    )
    return imgs, [caption(*a) for a in attrs], attrs


def split_pairs(unseen: int, seed: int) -> tuple[set, set]:
    """(seen, unseen) sets of (shape, colour) pairs: ``unseen`` pairs kept out of training, chosen
    so that every shape and every colour still appears in training."""
    pairs = [(s, c) for s in SHAPES for c in COLOURS]
    if not 0 <= unseen <= len(COLOURS):
        raise RnnkitError(f"--unseen-pairs must lie in [0, {len(COLOURS)}], got {unseen}")
    rng = np.random.default_rng([seed, 11])
    cols = list(COLOURS)
    chosen = [cols[i] for i in rng.permutation(len(cols))[:unseen]]
    held = {(SHAPES[k % len(SHAPES)], c) for k, c in enumerate(chosen)}  # distinct colours
    return set(pairs) - held, held


# -- PNG ------------------------------------------------------------------------------------------
_SIG = b"\x89PNG\r\n\x1a\n"
_MODES = {0: "greyscale", 2: "RGB", 3: "palette", 4: "greyscale+alpha", 6: "RGBA"}


def write_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """Save (H, W, 3) floats in [0, 1] (or uint8) as an 8-bit RGB PNG."""
    a = np.asarray(image)
    if a.ndim != 3 or a.shape[2] != 3:
        raise RnnkitError(f"write_png needs an (H, W, 3) image, got shape {a.shape}")
    if a.dtype != np.uint8:
        a = np.clip(np.rint(np.asarray(a, np.float64) * 255), 0, 255).astype(np.uint8)
    H, W, _ = a.shape
    raw = np.concatenate([np.zeros((H, 1), np.uint8), a.reshape(H, W * 3)], axis=1)  # filter 0

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", W, H, 8, 2, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(
            _SIG
            + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(raw.tobytes(), 6))
            + chunk(b"IEND", b"")
        )


def _png_header(path, data: bytes) -> tuple[int, int, int, int, int]:
    """(width, height, bit depth, colour type, interlace) after checking the signature and IHDR."""
    if data[:8] != _SIG:
        raise RnnkitError(f"{path} is not a PNG file")
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise RnnkitError(f"{path} is a damaged PNG file (no IHDR chunk)")
    W, H, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    if ctype not in (2, 6) or depth != 8 or interlace != 0:
        mode = _MODES.get(ctype, f"colour type {ctype}")
        raise RnnkitError(
            f"{path} is a {depth}-bit {mode}{' interlaced' if interlace else ''} PNG; "
            f"rnnkit reads 8-bit RGB or RGBA, non-interlaced"
        )
    if W == 0 or H == 0:
        raise RnnkitError(f"{path} is an empty PNG ({W}x{H})")
    return W, H, depth, ctype, interlace


def _decode_png(path, data: bytes, W: int, H: int, channels: int) -> np.ndarray:
    """Pure NumPy/zlib decoding of 8-bit, non-interlaced pixels: (H, W, channels) uint8."""
    idat, pos = [], 8
    while pos + 8 <= len(data):
        n, kind = struct.unpack(">I", data[pos : pos + 4])[0], data[pos + 4 : pos + 8]
        if kind == b"IDAT":
            idat.append(data[pos + 8 : pos + 8 + n])
        if kind == b"IEND":
            break
        pos += 12 + n
    try:
        raw = np.frombuffer(zlib.decompress(b"".join(idat)), np.uint8)
    except zlib.error as exc:
        raise RnnkitError(f"{path} is a damaged PNG file ({exc})") from None
    stride = W * channels
    if raw.size < H * (stride + 1):
        raise RnnkitError(f"{path} is a damaged PNG file (too little pixel data)")
    rows = raw[: H * (stride + 1)].reshape(H, stride + 1)
    out = np.zeros((H, stride), np.int32)
    prev = np.zeros(stride, np.int32)
    bpp = channels
    for y in range(H):
        ftype, line = rows[y, 0], rows[y, 1:].astype(np.int32)
        if ftype == 0:
            cur = line
        elif ftype == 1:  # Sub: a running sum per channel
            cur = (np.cumsum(line.reshape(W, bpp), axis=0) % 256).reshape(-1)
        elif ftype == 2:  # Up
            cur = (line + prev) % 256
        elif ftype in (3, 4):  # Average, Paeth: each pixel needs the one on its left
            cur = np.zeros(stride, np.int32)
            for x in range(0, stride, bpp):
                a = cur[x - bpp : x] if x else np.zeros(bpp, np.int32)
                b, c = prev[x : x + bpp], (prev[x - bpp : x] if x else np.zeros(bpp, np.int32))
                if ftype == 3:
                    pred = (a + b) // 2
                else:
                    p = a + b - c
                    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
                    pred = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
                cur[x : x + bpp] = (line[x : x + bpp] + pred) % 256
        else:
            raise RnnkitError(f"{path} is a damaged PNG file (unknown row filter {ftype})")
        out[y] = cur
        prev = cur
    return out.astype(np.uint8).reshape(H, W, channels)


def read_png(path: str | os.PathLike) -> np.ndarray:
    """An 8-bit RGB or RGBA PNG as (H, W, 3) float32 in [0, 1]; alpha is composited over black
    (the training background). Other modes, missing files and non-PNG files are RnnkitErrors."""
    if not os.path.exists(path):
        raise RnnkitError(f"no such file: {path}")
    if os.path.isdir(path):
        raise RnnkitError(f"{path} is a folder, not a PNG file")
    with open(path, "rb") as f:
        data = f.read()
    W, H, _, ctype, _ = _png_header(path, data)
    ch = 4 if ctype == 6 else 3
    try:
        from matplotlib.image import imread
    except ImportError:
        img = _decode_png(path, data, W, H, ch).astype(np.float32) / 255.0
    else:
        try:
            img = np.asarray(imread(os.fspath(path), format="png"), np.float32)
        except (OSError, ValueError, SyntaxError, RuntimeError, EOFError, zlib.error) as exc:
            # Pillow, under matplotlib, raises any of these for a damaged file
            raise RnnkitError(f"{path} is a damaged PNG file ({type(exc).__name__})") from None
        if img.dtype.kind != "f" or img.max() > 1.0:
            img = img / 255.0
    if img.shape[:2] != (H, W) or img.ndim != 3 or img.shape[2] not in (3, 4):
        raise RnnkitError(f"{path}: decoded shape {img.shape} does not match its header ({H}x{W})")
    if img.shape[2] == 4:
        img = img[..., :3] * img[..., 3:]
    return np.ascontiguousarray(img, np.float32)


def resize_nearest(image: np.ndarray, size: int) -> np.ndarray:
    """(H, W, C) -> (size, size, C) by nearest neighbour (pixel centres mapped back)."""
    H, W = image.shape[:2]
    r = np.minimum(((np.arange(size) + 0.5) * H / size).astype(np.int64), H - 1)
    c = np.minimum(((np.arange(size) + 0.5) * W / size).astype(np.int64), W - 1)
    return image[r][:, c]
