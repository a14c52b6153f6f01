"""argparse types with one-line messages, shared by every command (train, generate, bench...)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence


def int_at_least(lo: int, hi: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer >= lo (and <= hi), with a one-line message otherwise."""

    def parse(s: str) -> int:
        try:
            v = int(s)
        except ValueError:
            v = None
        if v is None or v < lo:
            raise argparse.ArgumentTypeError(f"expected an integer >= {lo}, got {s!r}")
        if hi is not None and v > hi:
            raise argparse.ArgumentTypeError(f"at most {hi:,} here, got {s!r}")
        return v

    return parse


positive_int, nonnegative_int = int_at_least(1), int_at_least(0)
# generate: a sampled token costs a step of the model, so a billion would run for days
sample_count, sample_length = int_at_least(1, 100_000), int_at_least(1, 1_000_000)


def positive_float(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {s!r}") from None
    if not v > 0 or not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {s}")
    return v


def nonnegative_float(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {s!r}") from None
    if not v >= 0 or not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {s}")
    return v


def fraction(s: str) -> float:
    v = nonnegative_float(s)
    if not 0 < v < 1:
        raise argparse.ArgumentTypeError(f"expected a number strictly between 0 and 1, got {s}")
    return v


def csv_list(kind: Callable, choices: Sequence | None = None) -> Callable[[str], tuple]:
    """An argparse type: a comma-separated list of ``kind`` values (among ``choices``)."""

    def parse(s: str) -> tuple:
        try:
            vals = tuple(kind(v) for v in s.split(",") if v.strip())
        except (ValueError, argparse.ArgumentTypeError):
            raise argparse.ArgumentTypeError(
                f"expected a comma-separated list, got {s!r}"
            ) from None
        if not vals or (choices and any(v not in choices for v in vals)):
            raise argparse.ArgumentTypeError(
                f"expected some of {','.join(map(str, choices or ()))}, got {s!r}"
            )
        return vals

    return parse
