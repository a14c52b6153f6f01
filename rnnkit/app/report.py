"""What the command line prints: the text of the records the tasks return (``rnnkit.tasks``'s
summaries after training, ``predict``'s rows, ``eval``'s metrics), one formatter per kind."""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import numpy as np

from ..tasks.caption import CaptionSummary
from ..tasks.classify import ClassifySummary
from ..tasks.cloze import ClozeSummary
from ..tasks.lm import LMSummary
from ..tasks.memory import AddingExample, CopyExample, MemorySummary
from ..tasks.results import (
    Captioned,
    Decoded,
    NextTokens,
    PredictionRow,
    Ranked,
    Summary,
    Transduced,
    TreeLabel,
)
from ..tasks.seq2seq import PairSummary
from ..tasks.transduce import TransduceSummary
from ..tasks.tree import TreeSummary


def num(v: float) -> str:
    """A perplexity or bit count in a few significant digits."""
    if not math.isfinite(v) or abs(v) >= 1e5:
        return f"{v:.4g}"
    return f"{v:.3f}" if v < 100 else f"{v:.2f}"


def _ended(s: Summary) -> str:
    return f"after {s.steps} steps ({s.stopped_by.replace('_', ' ')}); checkpoint {s.checkpoint}"


def digits(a) -> str:
    return "".join(str(int(v)) for v in a)


# -- after training -----------------------------------------------------------------------------
def _lm(s: LMSummary) -> list[str]:
    m, u = s.metrics, s.unit
    out = [f"\nheld-out perplexity {num(m['ppl'])} ({num(m['bits'])} bits/{u}) {_ended(s)}"]
    if s.test is not None:
        out.append(f"test perplexity {num(s.test['ppl'])} ({num(s.test['bits'])} bits/{u})")
    if s.diverged:
        return out + [
            "rnnkit: warning: training diverged (held-out loss is not finite or huge); "
            "try a lower --lr"
        ]
    if s.samples:
        out += ["samples:"] + [f"  {line}" for line in s.samples]
    return out


def _classify(s: ClassifySummary) -> list[str]:
    m = s.metrics
    out = [f"\nheld-out accuracy {m['accuracy']:.4f} (loss {m['loss']:.4f}) {_ended(s)}"]
    if s.examples:
        out.append("held-out examples (true -> predicted, probability):")
        out += [f"  {y} -> {p} {q:.3f}  {text}" for y, p, q, text in s.examples]
    return out


def _cloze(s: ClozeSummary) -> list[str]:
    m = s.metrics
    out = [
        f"\nheld-out accuracy {m['accuracy']:.4f}, mean rank {m['mean_rank']:.1f} of "
        f"{s.vocab_size} (loss {m['loss']:.4f} nats/word, direction {s.direction}) {_ended(s)}"
    ]
    if s.blanks:
        out.append("held-out blanks (true word -> top 3):")
        for sentence, word, cands in s.blanks:
            top = "  ".join(f"{w} {p:.3f}" for w, p in cands)
            out.append(f"  {sentence[:90]}\n      {word} -> {top}")
    return out


def _transduce(s: TransduceSummary) -> list[str]:
    m = s.metrics
    how = "free-running" if s.free_running else "per step"
    out = [
        f"\nheld-out ({how}): accuracy {m['accuracy']:.3f}, exact sequences {m['exact']:.3f}, "
        f"teacher-forced accuracy {m['tf_accuracy']:.3f} after {s.steps} steps; "
        f"checkpoint {s.checkpoint}"
    ]
    for e in s.examples:
        verdict = "ok" if np.array_equal(e.output, e.want) else "want " + digits(e.want)
        out.append(f"  {digits(e.input)} -> {digits(e.output)}  ({verdict})")
    return out


def _caption(s: CaptionSummary) -> list[str]:
    m = s.metrics
    unseen = f", unseen pairs {m['exact_unseen']:.3f}" if "exact_unseen" in m else ""
    out = [
        f"\nheld-out captions (greedy): exact {m['exact']:.3f}{unseen}, word accuracy "
        f"{m['word_accuracy']:.3f}, teacher-forced word accuracy {m['tf_accuracy']:.3f} "
        f"after {s.steps} steps (chance of an exact caption 1/{s.n_captions}); "
        f"checkpoint {s.checkpoint}"
    ]
    if s.attributes is not None:
        acc = ", ".join(f"{k} {v:.3f}" for k, v in s.attributes.items())
        out.append(f"per attribute (greedy): {acc}")
    out += [
        f"  {got!r}" + ("  ok" if got == want else f"  (want {want!r})") for got, want in s.examples
    ]
    return out


def _pairs(s: PairSummary) -> list[str]:
    m = s.metrics
    out = [
        f"\nheld-out accuracy: whole answers {m.get('exact', float('nan')):.4f}, per character "
        f"{m.get('per_char', float('nan')):.4f} {_ended(s)}"
    ]
    if s.examples:
        out.append("held-out samples:")
        for src, got, want in s.examples:
            mark = "right" if got == want else f"WRONG (expected {want})"
            out.append(f"  {src} -> {got}   {mark}")
    return out


def _memory(s: MemorySummary) -> list[str]:
    m = s.metrics
    shown = "  ".join(f"{k} {v:.4g}" for k, v in m.items() if k != "loss")
    out = [f"\nheld-out {s.task} (T={s.length}): loss {m['loss']:.4g}  {shown}  {_ended(s)}"]
    for e in s.examples:
        if isinstance(e, AddingExample):
            marked = " + ".join(f"{v:.3f}" for v in e.marked)
            out.append(f"  {marked} = {e.target:.3f}   model: {e.answer:.3f}")
        elif isinstance(e, CopyExample):
            out.append(f"  {' '.join(map(str, e.given))}  ->  {' '.join(map(str, e.recalled))}")
    return out


def _tree(s: TreeSummary) -> list[str]:
    m = s.metrics
    extra = f", binary {m['root_binary_accuracy']:.3f}" if "root_binary_accuracy" in m else ""
    out = [
        f"\nheld-out root accuracy {m['root_accuracy']:.3f} (all nodes {m['all_accuracy']:.3f}"
        f"{extra}) {_ended(s)}"
    ]
    depth = {
        k[len("root_accuracy_d") :]: v for k, v in m.items() if k.startswith("root_accuracy_d")
    }
    if depth:
        by = "  ".join(f"{k}: {v:.3f}" for k, v in depth.items())
        out.append(f"root accuracy by depth (training depths 1..{s.train_depth}): {by}")
    if s.examples:
        out.append("held-out examples (gold -> predicted root label):")
        for gold, pred, text in s.examples:
            out.append(f"  {gold} -> {pred}  {text if len(text) <= 100 else text[:97] + '...'}")
    return out


_SUMMARIES: dict[type, Callable] = {
    LMSummary: _lm,
    ClassifySummary: _classify,
    ClozeSummary: _cloze,
    TransduceSummary: _transduce,
    CaptionSummary: _caption,
    PairSummary: _pairs,
    MemorySummary: _memory,
    TreeSummary: _tree,
}


def summary_lines(s: Summary) -> list[str]:
    """The lines printed after training (a task without its own summary: the metrics)."""
    f = _SUMMARIES.get(type(s))
    if f is not None:
        return f(s)
    shown = "  ".join(f"{k} {v:.4g}" for k, v in s.metrics.items())
    return [f"\nheld-out {shown} {_ended(s)}"]


# -- predict ------------------------------------------------------------------------------------
def prediction_line(row: PredictionRow) -> str:
    """One line of ``predict``'s output."""
    if isinstance(row, NextTokens):
        return f"{row.prompt}\t" + "  ".join(f"{t!r} {p:.3f}" for t, p in row.candidates)
    if isinstance(row, Ranked):
        return f"{row.input}\t" + "  ".join(f"{c} {p:.3f}" for c, p in row.candidates)
    if isinstance(row, Transduced):
        verdict = "ok" if np.array_equal(row.output, row.want) else f"want {digits(row.want)}"
        return f"{digits(row.input)}\t{digits(row.output)}\t{verdict}"
    if isinstance(row, Captioned):
        return f"{row.path}\t{row.caption}"
    if isinstance(row, Decoded):
        return row.output or ""
    if isinstance(row, TreeLabel):
        probs = " ".join(f"{c}:{q:.3f}" for c, q in enumerate(row.probs))
        gold = "" if row.gold is None else f"\tgold {row.gold}"
        return f"{row.input}\t{row.label}\t{probs}{gold}"
    return str(row)


# -- eval ---------------------------------------------------------------------------------------
def eval_text(r: dict, as_json: bool = False) -> str:
    """``eval``'s output: one JSON object, a language model's perplexity line, or the metrics."""
    if as_json:
        return json.dumps(r)
    if "unit" in r:
        u = r["unit"]
        return (
            f"{r['tokens']} {u}s: loss {r['nll']:.4f} nats/{u}, perplexity "
            f"{r['perplexity']:.2f}, {r['bits']:.3f} bits/{u}"
        )
    return "  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in r.items())
