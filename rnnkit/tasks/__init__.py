"""Tasks by name: ``rnnkit train NAME`` and the checkpoint's ``task`` field look them up here."""

from __future__ import annotations

from ..errors import RnnkitError
from .base import Task

TASKS: dict[str, type] = {}


def register_task(cls: type) -> type:
    """Class decorator: make a Task available to the CLI and to checkpoint loading."""
    TASKS[cls.name] = cls
    return cls


def get_task(name: str) -> type:
    _load()
    if name not in TASKS:
        raise RnnkitError(f"unknown task {name!r}; known: {', '.join(TASKS)}")
    return TASKS[name]


def task_names() -> list[str]:
    _load()
    return list(TASKS)


def _load() -> None:
    from . import lm  # noqa: F401  (each module registers its task)


__all__ = ["Task", "TASKS", "register_task", "get_task", "task_names"]
