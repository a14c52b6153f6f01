"""Write a Penn-Treebank-format language-modelling corpus from English that is on this machine.

    python benchmarks/make_ptb_format.py OUT_DIR     # OUT_DIR/ptb.{train,valid,test}.txt

Sources: rnnkit's embedded corpus (CPython's documentation, docstrings and comments) and, where
present, the Vim user manual. Like the PTB files (Mikolov's preprocessing): one sentence per line,
lower case, Treebank tokens separated by spaces, every number N, the 10,000 most frequent words
kept (<unk> for the rest), no punctuation; split 90% / 5% / 5% at random (seed 0).
"""

from __future__ import annotations

import argparse
import glob
import os
import re
from collections import Counter

import numpy as np

from rnnkit.data import default_sentences, split_sentences, tokenize_treebank

NUM = re.compile(r"^[+-]?(\d[\d,.]*|\.\d+)$")
WORD = re.compile(r"[a-z0-9]")


def sentences() -> list[list[str]]:
    texts = list(default_sentences())
    for p in sorted(glob.glob("/usr/share/vim/vim90/doc/usr_*.txt")):
        raw = open(p, encoding="utf-8", errors="replace").read()
        texts += split_sentences(re.sub(r"[*|]\S+[*|]|={3,}|-{3,}", " ", raw))
    out = []
    for s in texts:
        toks = ["N" if NUM.match(t) else t for t in tokenize_treebank(s, lower=True)]
        toks = [t for t in toks if t == "N" or (WORD.search(t) and not t.startswith("<"))]
        if 3 <= len(toks) <= 60:
            out.append(toks)
    return out


def main(out_dir: str) -> None:
    sents = sentences()
    counts = Counter(t for s in sents for t in s)
    keep = {w for w, _ in counts.most_common(9999)}
    lines = [" " + " ".join(t if t in keep else "<unk>" for t in s) + " " for s in sents]
    order = np.random.default_rng(0).permutation(len(lines))
    n = len(lines)
    parts = {
        "train": order[: int(0.9 * n)],
        "valid": order[int(0.9 * n) : int(0.95 * n)],
        "test": order[int(0.95 * n) :],
    }
    os.makedirs(out_dir, exist_ok=True)
    for name, idx in parts.items():
        with open(os.path.join(out_dir, f"ptb.{name}.txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(lines[i] for i in sorted(idx)) + "\n")
    words = sum(len(s) for s in sents)
    print(f"{n} sentences, {words} words, vocabulary {len(keep) + 1} -> {out_dir}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument(
        "out_dir", nargs="?", default="ptb-like", help="where to write ptb.{train,valid,test}.txt"
    )
    main(ap.parse_args().out_dir)
