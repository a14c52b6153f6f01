"""Measure a trained model: the held-out metrics of any task's checkpoint, or a language model's
perplexity on another file, or a tree model's accuracy on another treebank.

    evaluate_checkpoint("runs/lm")           # {"loss", "ppl", "bits", "tokens", ...}
"""

from __future__ import annotations

from ..data import load_text
from ..errors import RnnkitError

__all__ = ["evaluate_checkpoint"]


def evaluate_checkpoint(
    path, corpus: str | None = None, split: str = "valid", trees: str | None = None
) -> dict:
    """Held-out metrics of any task's checkpoint: the held-out part of its data as split when
    training (``split="test"``: its test file); for a language model, ``corpus`` evaluates on a
    whole other file instead (read in the run's format, perplexity per word counting </s>); for a
    tree model, ``trees`` evaluates on a file of bracketed trees instead."""
    from ..fit import evaluate_sums
    from .runs import load_model

    if trees is not None:
        return _evaluate_tree_file(path, trees)
    task, model, _, _ = load_model(path, load_data=corpus is None)
    if corpus is not None:
        if task.name != "lm":
            raise RnnkitError("--corpus applies to language models only")
        task.set_eval_text(load_text(corpus), corpus)
    total, count, extra = evaluate_sums(task, model, split)
    r = task.summarize(total, count, extra)
    if task.name == "lm":
        unit = "char" if task.cfg.level == "char" else "word"
        r.update(unit=unit, tokens=int(count), nll=r["loss"], perplexity=r["ppl"])
    r["checkpoint"] = str(path)
    return r


def _evaluate_tree_file(path, trees: str) -> dict:
    from .runs import load_model

    task, model, _, _ = load_model(path, load_data=False)
    if not hasattr(task, "evaluate_file"):
        raise RnnkitError(f"--trees applies to tree models; {path} holds a {task.name} model")
    r = task.evaluate_file(model, trees)
    r["checkpoint"] = str(path)
    return r
