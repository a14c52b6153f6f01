"""Sequence-to-sequence data: the addition task of Keras' ``addition_rnn.py`` and other generated
source/target pairs (string reversal, date normalisation), plus tab-separated pairs files.

The addition task, exactly as the Keras example makes it:

* a question is "a+b" where each operand has 1..``digits`` digits (the digit count uniform, then
  every digit uniform, so "7" is as likely as any 3-digit number taken together with its count);
* a+b and b+a count once: ``size`` DISTINCT unordered pairs (at most all there are:
  10^d (10^d + 1) / 2, i.e. 55 for one digit, 5,050 for two);
* questions are right-padded with spaces to 2*digits+1 characters, then optionally reversed
  (the padding comes first then: "12+7   " -> "   7+21"); answers are right-padded to digits+1;
* the alphabet is "0123456789+ " (12 symbols); the pairs are shuffled with the seed and the last
  ``valid_fraction`` are held out (questions never seen in training).

Generate a pairs file for ``rnnkit train seq2seq --pairs FILE``:

    python -m rnnkit.data.addition --pairs add.tsv --kind addition --digits 3 -n 20000
    python -m rnnkit.data.addition --pairs rev.tsv --kind reverse -n 20000      # abc -> cba
    python -m rnnkit.data.addition --pairs dates.tsv --kind dates -n 20000      # -> 2013-03-05
"""

from __future__ import annotations

import datetime as _dt
import sys
from pathlib import Path

import numpy as np

from ..errors import RnnkitError

ALPHABET = "0123456789+ "  # the Keras example's 12 symbols
MAX_DIGITS = 15  # sums stay exact in int64


def _check_digits(digits) -> int:
    if (
        isinstance(digits, bool)
        or not isinstance(digits, (int, np.integer))
        or not 1 <= digits <= MAX_DIGITS
    ):
        raise RnnkitError(f"--digits must be an integer in [1, {MAX_DIGITS}], got {digits!r}")
    return int(digits)


def question_len(digits: int) -> int:
    """Characters of a padded question: digits + '+' + digits."""
    return 2 * digits + 1


def answer_len(digits: int) -> int:
    """Characters of a padded answer: digits + 1 (a carry out of the top digit)."""
    return digits + 1


def distinct_pairs(digits: int) -> int:
    """How many unordered operand pairs exist: N (N + 1) / 2 with N = 10^digits."""
    n = 10 ** _check_digits(digits)
    return n * (n + 1) // 2


def addition_operands(n: int, digits: int, seed: int = 0) -> np.ndarray:
    """(n', 2) int64 operands of n' = min(n, distinct_pairs) distinct unordered questions, in the
    order first drawn (the Keras example's distribution), or every pair, shuffled and each in a
    random order (a+b or b+a), when all of them are asked for."""
    digits = _check_digits(digits)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise RnnkitError(f"the number of questions must be an integer >= 1, got {n!r}")
    rng = np.random.default_rng(seed)
    N = 10**digits
    if n >= distinct_pairs(digits):  # all of them: enumerate instead of collecting coupons
        a, b = np.triu_indices(N)
        ab = np.stack([a, b], axis=1).astype(np.int64)[rng.permutation(len(a))]
        swap = rng.random(len(ab)) < 0.5  # either order, as a random draw would ask it
        ab[swap] = ab[swap, ::-1]
        return ab
    seen: set = set()
    out: list = []
    while len(out) < n:
        m = max(2 * (n - len(out)), 1024)
        k = rng.integers(1, digits + 1, size=(m, 2))  # digit counts, then uniform digits
        v = rng.integers(0, 10**k)
        for a, b in v.tolist():
            key = (a, b) if a <= b else (b, a)
            if key not in seen:
                seen.add(key)
                out.append((a, b))
                if len(out) == n:
                    break
    return np.array(out, np.int64)


def format_question(a: int, b: int, digits: int, reverse: bool = False) -> str:
    """'a+b' right-padded with spaces to 2*digits+1 characters, reversed if asked."""
    q = f"{a}+{b}".ljust(question_len(digits))
    return q[::-1] if reverse else q


def format_answer(s: int, digits: int) -> str:
    return str(s).ljust(answer_len(digits))


def addition_pairs(
    n: int, digits: int, seed: int = 0, reverse: bool = False
) -> list[tuple[str, str]]:
    """n distinct (question, answer) string pairs, both padded as in the Keras example."""
    ops = addition_operands(n, digits, seed)
    return [
        (format_question(a, b, digits, reverse), format_answer(a + b, digits))
        for a, b in ops.tolist()
    ]


def encode_chars(texts: list[str], alphabet: str = ALPHABET) -> np.ndarray:
    """Equal-length strings -> (T, N) int64 ids over ``alphabet`` (time-major)."""
    idx = {ch: i for i, ch in enumerate(alphabet)}
    if not texts:
        return np.zeros((0, 0), np.int64)
    T = len(texts[0])
    out = np.empty((len(texts), T), np.int64)
    for i, s in enumerate(texts):
        if len(s) != T:
            raise RnnkitError(f"strings must have equal length {T}: {s!r}")
        try:
            out[i] = [idx[ch] for ch in s]
        except KeyError as exc:
            raise RnnkitError(
                f"character {exc.args[0]!r} of {s!r} is not in the alphabet {alphabet!r}"
            ) from None
    return out.T.copy()


def split_pairs(n: int, valid_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, valid) of n items: shuffled with ``seed``, the last share held out."""
    if not 0 < valid_fraction < 1:
        raise RnnkitError(
            f"--valid-fraction must lie strictly between 0 and 1, got {valid_fraction!r}"
        )
    perm = np.random.default_rng([seed, 7]).permutation(n)
    n_valid = int(round(n * valid_fraction))
    if n_valid < 1 or n - n_valid < 1:
        raise RnnkitError(
            f"{n} pairs cannot be split into training and held-out parts "
            f"with --valid-fraction {valid_fraction}"
        )
    return perm[: n - n_valid], perm[n - n_valid :]


# -- other generated tasks -----------------------------------------------------------------------
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def reversal_pairs(
    n: int, seed: int = 0, min_len: int = 3, max_len: int = 10, letters: str = _LETTERS[:10]
) -> list[tuple[str, str]]:
    """(s, s reversed) for n random strings of min_len..max_len letters."""
    rng = np.random.default_rng(seed)
    lens = rng.integers(min_len, max_len + 1, n)
    out = []
    for L in lens.tolist():
        s = "".join(letters[i] for i in rng.integers(0, len(letters), L).tolist())
        out.append((s, s[::-1]))
    return out


_DATE_FORMATS = (
    "%d %B %Y",
    "%B %d, %Y",
    "%d %b %Y",
    "%b %d %Y",
    "%d/%m/%Y",
    "%A %d %B %Y",
    "%d.%m.%y",
    "%Y %b %d",
)


def date_pairs(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """(a date written in one of several human formats, the same date as YYYY-MM-DD), dates
    uniform in 1950-2049 (month and day names in English, lower-cased)."""
    rng = np.random.default_rng(seed)
    start = _dt.date(1950, 1, 1).toordinal()
    days = rng.integers(0, (_dt.date(2049, 12, 31).toordinal() - start) + 1, n)
    fmts = rng.integers(0, len(_DATE_FORMATS), n)
    return [
        (
            _english_strftime(_dt.date.fromordinal(start + d), _DATE_FORMATS[f]).lower(),
            _dt.date.fromordinal(start + d).isoformat(),
        )
        for d, f in zip(days.tolist(), fmts.tolist())
    ]


_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def _english_strftime(d: _dt.date, fmt: str) -> str:
    """strftime with English names whatever the locale."""
    fmt = (
        fmt.replace("%B", _MONTHS[d.month - 1])
        .replace("%b", _MONTHS[d.month - 1][:3])
        .replace("%A", _DAYS[d.weekday()])
    )
    return d.strftime(fmt)


# -- pairs files ----------------------------------------------------------------------------------
def write_pairs(path, pairs: list[tuple[str, str]]) -> None:
    """One 'source<TAB>target' line per pair (UTF-8)."""
    for s, t in pairs:
        if "\t" in s + t or "\n" in s + t:
            raise RnnkitError(f"pair {(s, t)!r} holds a tab or a newline")
    Path(path).write_text("".join(f"{s}\t{t}\n" for s, t in pairs), encoding="utf-8")


def read_pairs(path) -> list[tuple[str, str]]:
    """'source<TAB>target' lines of a UTF-8 file (blank lines skipped). A line without exactly one
    tab, or with an empty side, is an error naming its line number."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise RnnkitError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    out = []
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
            raise RnnkitError(
                f"{path} line {i}: expected 'source<TAB>target' with both sides "
                f"non-empty, got {line[:60]!r}"
            )
        out.append((parts[0], parts[1]))
    return out


if __name__ == "__main__":  # python -m rnnkit.data.addition: the command is the application's
    from rnnkit.app.datafiles import addition_main

    sys.exit(addition_main())
