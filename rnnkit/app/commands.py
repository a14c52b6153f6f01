"""``rnnkit eval``, ``generate`` and ``predict``: load a run, ask its task, print the answer."""

from __future__ import annotations

import sys

from .report import eval_text, prediction_line


def cmd_eval(a) -> int:
    from ..tasks.evaluate import evaluate_checkpoint

    r = evaluate_checkpoint(a.checkpoint, a.corpus, a.split, trees=a.trees)
    print(eval_text(r, a.json))
    return 0


def cmd_generate(a) -> int:
    from ..tasks.generation import generate_text
    from ..tasks.results import GenerateOptions

    opts = GenerateOptions(
        n=a.num,
        length=a.length,
        prompt=a.prompt,
        temperature=a.temperature,
        top_k=a.top_k,
        allow_unk=a.allow_unk,
        seed=a.seed,
    )
    samples = generate_text(a.checkpoint, opts)
    if samples.unknown:
        print(
            "rnnkit: warning: prompt words the model does not know, read as <unk>: "
            + " ".join(samples.unknown),
            file=sys.stderr,
        )
    for line in samples.lines:
        print(f"  {line}")
    return 0


def cmd_predict(a) -> int:
    from ..tasks.results import PredictOptions
    from ..tasks.runs import load_model

    task, model, _, _ = load_model(a.checkpoint, load_data=False)
    inputs = a.inputs or [ln.rstrip("\n") for ln in sys.stdin if ln.strip()]
    res = task.predict(model, inputs, PredictOptions(top=a.top, beam=a.beam))
    for note in res.notes:
        print(f"rnnkit: {note}", file=sys.stderr)
    for row in res.rows:
        print(prediction_line(row))
    return res.status
