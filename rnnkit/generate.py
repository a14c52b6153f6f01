"""Use a trained language model: sample text, measure perplexity on a held-out part or a file.

generate_text("runs/lm", n=5)            # list of sentences (word) or passages (char)
evaluate_checkpoint("runs/lm")           # {"loss", "ppl", "bits", "tokens", ...}
"""

from __future__ import annotations

import sys

import numpy as np

from .data import load_text, tokenize_chars, tokenize_words
from .errors import RnnkitError


def detokenize(tokens: list[str]) -> str:
    """Join word tokens into text: no space before closing punctuation or after opening brackets,
    and double quotes paired (an opening one sticks to the next word, a closing one to the last)."""
    out: list[str] = []
    glue_next, quote_open = True, False
    for tok in tokens:
        if tok == '"':
            if quote_open:
                out.append(tok)
            else:
                out.append(("" if glue_next else " ") + tok)
            glue_next, quote_open = not quote_open, not quote_open
            continue
        closing = tok in ".,;:!?%)]}" or tok.startswith("'") or tok == "n't"
        out.append(tok if glue_next or closing else " " + tok)
        glue_next = tok in "([{"
    s = "".join(out)
    return s[:1].upper() + s[1:]


def sample_text(
    model,
    task,
    n: int = 5,
    length: int = 300,
    prompt: str = "",
    temperature: float = 0.8,
    top_k: int | None = None,
    allow_unk: bool = False,
    seed: int = 0,
    warn=None,
) -> list[str]:
    """n sentences (word model: from sentence-start to sentence-end, at most ``length`` words) or n
    passages of ``length`` characters (char model), continuing ``prompt`` when given."""
    vocab, cfg = task.vocab, task.cfg
    rng = np.random.default_rng(seed)
    banned = () if allow_unk or vocab.unk_id is None else (vocab.unk_id,)
    if cfg.level == "char":
        toks = tokenize_chars(prompt.replace("\r\n", "\n"))
        unknown = [t for t in toks if t not in vocab]
        if unknown:
            raise RnnkitError(
                f"prompt has characters the model never saw: {''.join(sorted(set(unknown)))!r}"
            )
        if not toks:  # no prompt: start as if after a line break (or a space)
            toks = ["\n"] if "\n" in vocab else [" "] if " " in vocab else [vocab.itos[-1]]
            prompt = ""
        ids = vocab.encode(toks)
        start = np.full(n, ids[0])
        rest = np.repeat(ids[1:, None], n, axis=1) if len(ids) > 1 else None
        out = model.sample(
            start, length, rng, temperature=temperature, top_k=top_k, banned=banned, prompt=rest
        )
        return [prompt + "".join(vocab.decode(col)) for col in out.T]
    toks = tokenize_words(prompt, lower=cfg.lower)
    unknown = sorted({t for t in toks if t not in vocab})
    if unknown:
        (warn or _warn)(f"prompt words the model does not know, read as <unk>: {' '.join(unknown)}")
    rest = np.repeat(vocab.encode(toks)[:, None], n, axis=1) if toks else None
    banned += (vocab.bos_id,) + ((vocab.pad_id,) if vocab.pad_id is not None else ())
    start = vocab.eos_id if cfg.streams else vocab.bos_id  # a stream starts after a </s>
    out = model.sample(
        np.full(n, start),
        length,
        rng,
        temperature=temperature,
        top_k=top_k,
        banned=banned,
        stop_id=vocab.eos_id,
        prompt=rest,
    )
    lines = []
    for col in out.T:
        words = vocab.decode(col)
        if vocab.eos_id is not None and "</s>" in words:
            words = words[: words.index("</s>")]
        lines.append(detokenize(toks + words))
    return lines


def _warn(msg: str) -> None:
    print(f"rnnkit: warning: {msg}", file=sys.stderr)


def generate_text(
    path,
    n: int = 5,
    length: int = 300,
    prompt: str = "",
    temperature: float = 0.8,
    top_k: int | None = None,
    allow_unk: bool = False,
    seed: int = 0,
) -> list[str]:
    """Samples from the language model saved at ``path`` (a checkpoint or its run folder)."""
    from .tasks.runs import load_model

    task, model, _, _ = load_model(path, load_data=False)
    if task.name != "lm":
        raise RnnkitError(f"{path} holds a {task.name} model; generate works on language models")
    return sample_text(model, task, n, length, prompt, temperature, top_k, allow_unk, seed)


def evaluate_checkpoint(path, corpus: str | None = None, split: str = "valid") -> dict:
    """Held-out metrics of any task's checkpoint: the held-out part of its data as split when
    training (``split="test"``: its test file); for a language model, ``corpus`` evaluates on a
    whole other file instead (read in the run's format, perplexity per word counting </s>)."""
    from .fit import evaluate_sums
    from .tasks.runs import load_model

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
