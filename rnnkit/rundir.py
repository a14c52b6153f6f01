"""A run folder: ``checkpoint.npz``, ``best.npz``, ``metrics.jsonl``, ``loss.png``, owned by one
run at a time.

* ``checkpoint.npz`` is the latest position (what ``--resume`` continues); ``best.npz`` the model
  of the lowest held-out loss so far among the end-of-epoch evaluations (model only, no optimizer
  state: give it to ``eval`` or ``predict``). ``--overwrite`` removes both;
* it is locked while a run uses it (``fcntl.flock`` on ``.lock``): a second training on the same
  folder gets a one-line error instead of mixing metrics;
* a folder that already holds a run is never silently overwritten: training into it needs
  ``--resume`` or ``--overwrite``;
* orphan ``checkpoint.npz.*.tmp`` / ``best.npz.*.tmp`` files (a kill -9 during a save) are
  removed at the next start.

The checkpoint format (version 2): JSON metadata ``{"format": "rnnkit", "version": 2, "task",
"task_config", "model_config", "fit", "position", "optim", "task_state", "param_shapes"}`` and
arrays ``param/<dotted name>``, ``optim/<state>/<name>``, ``carry/<i>``, ``task/<name>``, written
atomically, read without pickle, and checked (shapes against the metadata, types of the position)
before a model is built.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import IO

import numpy as np

from .checkpoint import load_checkpoint, save_checkpoint
from .errors import RnnkitError
from .training.position import problem as position_problem

FORMAT, VERSION = "rnnkit", 2


class RunDir:
    def __init__(self, out: str | os.PathLike, *, rank: int = 0):
        if out is None or str(out).strip() == "":
            raise RnnkitError("--out must name a folder, got an empty string")
        self.path = Path(out)
        self.checkpoint = self.path / "checkpoint.npz"
        self.best = self.path / "best.npz"
        self.metrics = self.path / "metrics.jsonl"
        self.png = self.path / "loss.png"
        self.rank = rank
        self._lock: IO[str] | None = None

    # -- ownership ------------------------------------------------------------------------------
    def open(self, *, resume: bool = False, overwrite: bool = False) -> RunDir:
        if self.path.exists() and not self.path.is_dir():
            raise RnnkitError(f"--out {self.path} is a file, not a folder")
        if resume and not self.checkpoint.exists():
            raise RnnkitError(f"nothing to resume: {self.checkpoint} does not exist")
        if not resume and not overwrite and self.checkpoint.exists():
            raise RnnkitError(
                f"{self.path} already holds a run: continue it with --resume, or "
                f"start over with --overwrite (or choose another --out)"
            )
        if self.rank != 0:
            return self
        self.path.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        stale = [*self.path.glob("checkpoint.npz.*.tmp"), *self.path.glob("best.npz.*.tmp")]
        if not resume and self.best.exists():  # a new run: the old run's best is not this one's
            stale.append(self.best)
        for f in stale:
            try:
                f.unlink()
            except OSError:
                pass
        return self

    def _take_lock(self) -> None:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: no lock
            return
        f = open(self.path / ".lock", "a+")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            raise RnnkitError(
                f"{self.path} is in use by another training run (locked); "
                f"wait for it or choose another --out"
            ) from None
        self._lock = f

    def close(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # -- metrics ----------------------------------------------------------------------------------
    def log(self, row: dict) -> None:
        with open(self.metrics, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")

    def reset_metrics(self) -> None:
        if self.rank == 0:
            self.metrics.write_text("", encoding="utf-8")

    def trim_metrics(self, n_lines: int) -> None:
        """On resume: keep the first n_lines rows, those written before the checkpoint."""
        if self.rank != 0 or not self.metrics.exists():
            return
        rows = [ln for ln in self.metrics.read_text(encoding="utf-8").splitlines() if ln.strip()]
        self.metrics.write_text("".join(ln + "\n" for ln in rows[:n_lines]), encoding="utf-8")

    def _eval_rows(self) -> list[dict]:
        if not self.metrics.exists():
            return []
        rows = (ln for ln in self.metrics.read_text(encoding="utf-8").splitlines() if ln.strip())
        return [r for r in map(json.loads, rows) if r.get("kind") == "eval"]

    def last_eval(self) -> dict | None:
        evals = self._eval_rows()
        return evals[-1] if evals else None

    def best_eval(self) -> dict | None:
        """The evaluation row whose model is in ``best.npz`` (None without one)."""
        best = [r for r in self._eval_rows() if r.get("best")] if self.best.exists() else []
        return best[-1] if best else None

    # -- checkpoints ------------------------------------------------------------------------------
    def save(self, model, task, *, fit_cfg=None, position=None, optim=None, carry=None) -> None:
        save_run(
            self.checkpoint,
            model,
            task,
            fit_cfg=fit_cfg,
            position=position,
            optim=optim,
            carry=carry,
        )

    def save_best(self, model, task, *, fit_cfg=None) -> None:
        """The model alone (no position or optimizer state) to ``best.npz``, atomically."""
        save_run(self.best, model, task, fit_cfg=fit_cfg)


def save_run(path, model, task, *, fit_cfg=None, position=None, optim=None, carry=None) -> None:
    """Write a version-2 checkpoint of ``model`` trained on ``task`` (atomically)."""
    params = model.state_dict()
    arrays = {f"param/{k}": v for k, v in params.items()}
    t_arrays, t_meta = task.state_dict()
    arrays.update({f"task/{k}": v for k, v in t_arrays.items()})
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "task": task.name,
        "task_config": asdict(task.cfg),
        "model_config": asdict(model.config),
        "fit": None if fit_cfg is None else asdict(fit_cfg),
        "task_state": t_meta,
        "param_shapes": {k: list(v.shape) for k, v in params.items()},
        "module_state": model.named_extra_states(),
    }
    if position is not None:
        meta["position"] = position
    if optim is not None:
        oa, om = optim
        arrays.update({f"optim/{k}": v for k, v in oa.items()})
        meta["optim"] = om
    if carry is not None:
        parts = carry if isinstance(carry, tuple) else (carry,)
        arrays.update({f"carry/{i}": np.asarray(c) for i, c in enumerate(parts)})
        meta["carry_n"] = len(parts)
        meta["carry_tuple"] = isinstance(carry, tuple)
    save_checkpoint(path, arrays, meta)


def _malformed(path, what: str) -> RnnkitError:
    return RnnkitError(f"malformed checkpoint {path}: {what}")


def load_run(path) -> tuple[dict, dict]:
    """(meta, arrays) of a version-2 checkpoint, checked: format, version, the types of the
    position, and every parameter array against ``param_shapes``. Nothing is built yet."""
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.npz"
    arrays, meta = load_checkpoint(path)
    fmt = meta.get("format")
    if fmt == "rnnkit-lm":
        raise RnnkitError(
            f"{path} is an rnnkit 0.1 language-model checkpoint (format 1); "
            f"retrain it with this version"
        )
    if fmt != FORMAT:
        raise RnnkitError(f"{path} is not an rnnkit checkpoint (format {fmt!r})")
    if meta.get("version") != VERSION:
        raise RnnkitError(
            f"{path} has checkpoint version {meta.get('version')!r}; this rnnkit reads {VERSION}"
        )
    for key, typ in (
        ("task", str),
        ("task_config", dict),
        ("model_config", dict),
        ("param_shapes", dict),
    ):
        if not isinstance(meta.get(key), typ):
            raise _malformed(path, f"{key!r} is missing or not a {typ.__name__}")
    shapes = meta["param_shapes"]
    for name, shape in shapes.items():
        a = arrays.get(f"param/{name}")
        if a is None:
            raise _malformed(path, f"parameter {name} is missing")
        if not isinstance(shape, list) or list(a.shape) != shape:
            raise _malformed(path, f"parameter {name} has shape {a.shape}, metadata says {shape}")
        if a.dtype.kind != "f":
            raise _malformed(path, f"parameter {name} has dtype {a.dtype}, not float")
        if not np.isfinite(a).all():
            raise _malformed(path, f"parameter {name} holds NaN or infinite values")
    extra = [k for k in arrays if k.startswith("param/") and k[6:] not in shapes]
    if extra:
        raise _malformed(path, f"unexpected arrays {extra[:3]}")
    pos = meta.get("position")
    if pos is not None:
        bad = position_problem(pos)
        if bad:
            raise _malformed(path, bad)
        if not isinstance(meta.get("optim"), dict):
            raise _malformed(path, "'optim' is missing")
        if not isinstance(meta.get("fit"), dict):
            raise _malformed(path, "'fit' is missing")
    return meta, arrays


def resume_state(meta: dict, arrays: dict) -> dict:
    """The loop's position from a checkpoint (for ``fit(resume_state=...)``)."""
    if not isinstance(meta.get("position"), dict):
        raise RnnkitError("malformed checkpoint: it holds no training position to resume from")
    carry = None
    n = meta.get("carry_n")
    if n:
        parts = tuple(arrays[f"carry/{i}"] for i in range(n))
        carry = parts if meta.get("carry_tuple") else parts[0]
    return {
        "position": meta["position"],
        "optim_meta": meta["optim"],
        "carry": carry,
        "optim_arrays": {
            k[len("optim/") :]: v for k, v in arrays.items() if k.startswith("optim/")
        },
    }


def config_from(cls, d: dict, what: str, path=""):
    """Rebuild a config dataclass from its stored dict (unknown keys are an error)."""
    from dataclasses import fields

    if not isinstance(d, dict):
        raise _malformed(path, f"{what} is not a dict")
    known = {f.name for f in fields(cls)}
    bad = sorted(set(d) - known)
    if bad:
        raise _malformed(path, f"{what} has unknown keys {bad}")
    try:
        return cls(**d)
    except TypeError as exc:
        raise _malformed(path, f"{what}: {exc}") from None
