"""The one exception type that user-facing code raises for bad input.

The CLI catches :class:`RnnkitError` (and ``OSError``) and prints a one-line message instead of a
traceback. It subclasses ``ValueError`` so that library users can catch it the usual way.
"""

import os


class RnnkitError(ValueError):
    """Bad input: a wrong shape, dtype, file, token or setting. The message names the problem."""


def check_memory(need: float, what: str, advice: str) -> None:
    """A one-line error, before allocating, when ``need`` bytes exceed this machine's memory:
    "out of memory: <what>, about N GiB, more than this machine's M GiB; <advice>"."""
    try:
        avail = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return
    if need > avail:
        raise RnnkitError(
            f"out of memory: {what}, about {need / 2**30:,.1f} GiB, more than this machine's "
            f"{avail / 2**30:.1f} GiB; {advice}"
        )


def check_ints(cfg, names, minimum: dict | None = None) -> None:
    """Each field ``names`` of the config ``cfg`` is an int >= its minimum (1 unless given in
    ``minimum``); RnnkitError naming the flag (``--hidden-size``) otherwise."""
    for name in names:
        v = getattr(cfg, name)
        lo = (minimum or {}).get(name, 1)
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise RnnkitError(f"--{name.replace('_', '-')} must be an integer >= {lo}, got {v!r}")


def shown(text: str, limit: int = 60) -> str:
    """``repr(text)`` for a message, cut to about ``limit`` characters (a long input is named by
    its start and its length, not echoed whole)."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text):,} characters)"
