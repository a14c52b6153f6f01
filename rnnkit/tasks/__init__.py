"""The tasks: data, a model built from a config, metrics and saved state (one module per task).

A new task is a new module here with a ``@register_task`` class (``rnnkit.tasks.registry``) and
one import line below; the order of the lines is the order of ``rnnkit train --help`` (lm first:
the default task; a module imported by another registers first).
"""

from __future__ import annotations

# isort: off
from . import lm  # noqa: F401
from . import seq2seq  # noqa: F401
from . import addition  # noqa: F401
from . import caption  # noqa: F401
from . import classify  # noqa: F401
from . import cloze  # noqa: F401
from . import memory  # noqa: F401
from . import transduce  # noqa: F401
from . import tree  # noqa: F401

# isort: on
from .base import Task
from .registry import TASKS, get_task, register_task, task_names

__all__ = ["Task", "TASKS", "register_task", "get_task", "task_names"]
