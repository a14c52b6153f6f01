"""The one exception type that user-facing code raises for bad input.

The CLI catches :class:`RnnkitError` (and ``OSError``) and prints a one-line message instead of a
traceback. It subclasses ``ValueError`` so that library users can catch it the usual way.
"""


class RnnkitError(ValueError):
    """Bad input: a wrong shape, dtype, file, token or setting. The message names the problem."""
