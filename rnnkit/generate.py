"""Use a trained language-model checkpoint: sample text, measure held-out perplexity.

    generate_text("runs/lm/checkpoint.npz", n=5)      # list of sentences (word) or passages (char)
    evaluate_checkpoint("runs/lm/checkpoint.npz")     # {"nll", "perplexity", "bits", ...}
"""

from __future__ import annotations

import math

import numpy as np

from .data import load_text, split_sentences, tokenize_chars, tokenize_words
from .errors import RnnkitError
from .train import Data, evaluate, load_lm, prepare_data, train_config_from


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
        closing = tok in ".,;:!?%)]}" or tok.startswith("'")
        out.append(tok if glue_next or closing else " " + tok)
        glue_next = tok in "([{"
    s = "".join(out)
    return s[:1].upper() + s[1:]


def generate_text(path, n: int = 5, length: int = 300, prompt: str = "", temperature: float = 0.8,
                  top_k: int | None = None, allow_unk: bool = False, seed: int = 0) -> list[str]:
    """n sentences (word model: from sentence-start to sentence-end, at most ``length`` words) or n
    passages of ``length`` characters (char model), continuing ``prompt`` when given."""
    model, vocab, meta, _ = load_lm(path)
    level = (meta.get("train") or {}).get("level", "word")
    lower = (meta.get("train") or {}).get("lower", True)
    rng = np.random.default_rng(seed)
    banned = () if allow_unk or vocab.unk_id is None else (vocab.unk_id,)
    if level == "char":
        toks = tokenize_chars(prompt)
        unknown = [t for t in toks if t not in vocab]
        if unknown:
            raise RnnkitError(f"prompt has characters the model never saw: {''.join(sorted(set(unknown)))!r}")
        if not toks:  # no prompt: start as if after a line break (or a space)
            toks = ["\n"] if "\n" in vocab else [" "] if " " in vocab else [vocab.itos[-1]]
            prompt = ""
        ids = vocab.encode(toks)
        start = np.full(n, ids[0])
        rest = np.repeat(ids[1:, None], n, axis=1) if len(ids) > 1 else None
        out = model.sample(start, length, rng, temperature=temperature, top_k=top_k, banned=banned, prompt=rest)
        return [prompt + "".join(vocab.decode(col)) for col in out.T]
    toks = tokenize_words(prompt, lower=lower)
    rest = np.repeat(vocab.encode(toks)[:, None], n, axis=1) if toks else None
    banned += (vocab.bos_id,) + ((vocab.pad_id,) if vocab.pad_id is not None else ())
    out = model.sample(np.full(n, vocab.bos_id), length, rng, temperature=temperature, top_k=top_k,
                       banned=banned, stop_id=vocab.eos_id, prompt=rest)
    lines = []
    for col in out.T:
        words = vocab.decode(col)
        if vocab.eos_id is not None and "</s>" in words:
            words = words[: words.index("</s>")]
        lines.append(detokenize(toks + words))
    return lines


def evaluate_checkpoint(path, corpus: str | None = None) -> dict:
    """Average negative log-likelihood, perplexity and bits per token on the held-out part of the
    training corpus (as split when training) or on a whole other file."""
    model, vocab, meta, _ = load_lm(path)
    cfg = train_config_from(meta)
    if corpus is None:
        data = prepare_data(cfg, vocab)
    else:
        text = load_text(corpus)
        if cfg.level == "char":
            valid = vocab.encode(tokenize_chars(text))
        else:
            valid = [vocab.encode(t) for t in (tokenize_words(s, lower=cfg.lower) for s in split_sentences(text)) if t]
            if not valid:
                raise RnnkitError(f"no sentences in {corpus}")
        data = Data(vocab, None, valid)
    nll, n = evaluate(model, cfg, data)
    v = nll / max(n, 1)
    return {"checkpoint": str(path), "unit": "char" if cfg.level == "char" else "word", "tokens": n,
            "nll": v, "perplexity": math.exp(min(v, 700)), "bits": v / math.log(2)}
