"""Tasks by name: ``rnnkit train NAME`` and the checkpoint's ``task`` field look them up here."""

from __future__ import annotations

from typing import TypeVar

from ..errors import RnnkitError
from .base import Task

TASKS: dict[str, type[Task]] = {}
_T = TypeVar("_T", bound=type[Task])


def register_task(cls: _T) -> _T:
    """Class decorator: make a Task available to the CLI and to checkpoint loading."""
    TASKS[cls.name] = cls
    return cls


def get_task(name: str) -> type[Task]:
    _load()
    if name not in TASKS:
        raise RnnkitError(f"unknown task {name!r}; known: {', '.join(TASKS)}")
    return TASKS[name]


def task_names() -> list[str]:
    _load()
    return list(TASKS)


_LOADED = False


def _load() -> None:
    """Import every module of this package once: each registers its task(s). A new task is a new
    file here with a ``@register_task`` class; nothing else needs to change."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    import importlib
    import pkgutil

    from . import lm  # noqa: F401  (first: the default task)

    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name not in ("base", "lm") and not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


__all__ = ["Task", "TASKS", "register_task", "get_task", "task_names"]
