"""Command-line flags from config dataclasses: one flag per field, its help and default from the
field's metadata (``rnnkit train TASK`` builds its flags so; every task's flags look alike)."""

from __future__ import annotations

import argparse
import types
import typing
from collections.abc import Callable
from dataclasses import MISSING, fields

from .args import fraction, nonnegative_float, nonnegative_int, positive_float, positive_int

# numbers that must be positive / may be zero / are fractions, by field name
_FLOAT_TYPES: dict[str, Callable[[str], float]] = {
    "valid_fraction": fraction,
    "dropout": nonnegative_float,
    "weight_decay": nonnegative_float,
    "forget_bias": float,
}
_INT_TYPES: dict[str, Callable[[str], int]] = {
    "seed": nonnegative_int,
    "bptt_truncate": nonnegative_int,
}


def _base_type(tp):
    """int | None -> (int, True)."""
    if isinstance(tp, str):
        tp = eval(tp, {}, {})  # annotations are strings under `from __future__ import annotations`
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0], True
    return tp, False


def add_config_flags(
    group, cls, dests: dict, section: str, overrides: dict | None = None, shown: dict | None = None
) -> None:
    """One flag per field of the dataclass ``cls`` (``metadata={"cli": False}`` skips a field);
    ``shown`` replaces the default printed in a flag's help (a default that depends on others)."""
    notes = shown or {}
    for f in fields(cls):
        if f.metadata.get("cli", True) is False or f.name in dests:
            continue
        dests[f.name] = section
        default = f.default if f.default is not MISSING else None
        default = (overrides or {}).get(f.name, default)
        tp, optional = _base_type(f.type)
        if tp is bool:
            _add_bool_flag(group, f, default)
        else:
            said = notes.get(f.name, "none" if default is None else default)
            _add_value_flag(group, f, tp, said, off=optional and default is not None)


def _flag(f) -> str:
    return "--" + f.name.replace("_", "-")


def _add_bool_flag(group, f, default) -> None:
    """--flag and --no-flag both, so either can be said explicitly."""
    md = f.metadata
    group.add_argument(
        _flag(f),
        dest=f.name,
        action=argparse.BooleanOptionalAction,
        default=argparse.SUPPRESS,
        help=f"{md.get('help', '')} (default: {'on' if default else 'off'})",
    )
    if "negative" in md:  # an older spelling of --no-flag
        group.add_argument(
            md["negative"],
            dest=f.name,
            action="store_false",
            default=argparse.SUPPRESS,
            help=f"the same as --no-{_flag(f)[2:]}",
        )


def _add_value_flag(group, f, tp, said, off: bool) -> None:
    """--flag VALUE, checked by the field's type (and name); ``off``: --no-flag sets None."""
    md = f.metadata
    conv: Callable[[str], object]
    if tp is int:
        conv = _INT_TYPES.get(f.name, positive_int)
    elif tp is float:
        conv = _FLOAT_TYPES.get(f.name, positive_float)
    else:
        conv = str
    help_ = f"{md.get('help', '')} (default: {said})"
    kw = dict(dest=f.name, type=conv, default=argparse.SUPPRESS, help=help_)
    kw.update({k: md[k] for k in ("choices", "metavar") if k in md})
    group.add_argument(_flag(f), **kw)
    if off:
        group.add_argument(
            f"--no-{f.name.replace('_', '-')}",
            dest=f.name,
            action="store_const",
            const=None,
            default=argparse.SUPPRESS,
            help=f"turn {_flag(f)} off",
        )


def given(a, dests: dict, section: str) -> dict:
    """The values given on the command line for the fields of one section (task, model, fit)."""
    return {k: getattr(a, k) for k, s in dests.items() if s == section and hasattr(a, k)}
