"""Tasks by name: ``rnnkit train NAME`` and the checkpoint's ``task`` field look them up here.

This module imports no task: each task module registers its class with :func:`register_task`
when it is imported, and ``rnnkit/tasks/__init__.py`` imports every task module, one line each
(importing ``rnnkit.tasks.registry`` imports the package first, so the registry is always full).
"""

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
    if name not in TASKS:
        raise RnnkitError(f"unknown task {name!r}; known: {', '.join(TASKS)}")
    return TASKS[name]


def task_names() -> list[str]:
    return list(TASKS)
