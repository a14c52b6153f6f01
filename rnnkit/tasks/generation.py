"""Sample text from a trained language model (the lm task's ``generate``).

generate_text("runs/lm", GenerateOptions(n=5))   # Samples: sentences (word) or passages (char)
"""

from __future__ import annotations

import numpy as np

from ..data import tokenize_chars, tokenize_words
from ..errors import RnnkitError
from .results import GenerateOptions, Samples

__all__ = ["detokenize", "sample_text", "generate_text"]


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


def sample_text(model, task, options: GenerateOptions | None = None) -> Samples:
    """``options.n`` sentences (word model: from sentence-start to sentence-end, at most
    ``options.length`` words) or passages of ``options.length`` characters (char model) from the
    language model ``model`` of the lm task ``task``, continuing ``options.prompt`` when given."""
    o = options or GenerateOptions()
    n, length, prompt, temperature, top_k = o.n, o.length, o.prompt, o.temperature, o.top_k
    allow_unk, seed = o.allow_unk, o.seed
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
        return Samples([prompt + "".join(vocab.decode(col)) for col in out.T])
    toks = tokenize_words(prompt, lower=cfg.lower)
    unknown = sorted({t for t in toks if t not in vocab})
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
    return Samples(lines, unknown)


def generate_text(path, options: GenerateOptions | None = None) -> Samples:
    """Samples from the language model saved at ``path`` (a checkpoint or its run folder)."""
    from .runs import load_model

    task, model, _, _ = load_model(path, load_data=False)
    if task.name != "lm":
        raise RnnkitError(f"{path} holds a {task.name} model; generate works on language models")
    return task.generate(model, options or GenerateOptions())
