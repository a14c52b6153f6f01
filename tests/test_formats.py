"""Tests for rnnkit.data.formats: detecting and reading PTB-style, line and prose corpora."""

from __future__ import annotations

import pytest

import rnnkit.data.formats as formats
from rnnkit.data.corpus import load_text
from rnnkit.data.formats import detect_format, iter_sentences, read_sentences, read_stream
from rnnkit.data.text import Vocab
from rnnkit.errors import RnnkitError

# Penn Treebank language-model format (as ptb.valid.txt): one sentence per line, lower case,
# pre-tokenized, rare words <unk>, numbers N, a leading space on each line.
PTB = """\
 consumers may want to move their telephones a little closer to the tv set
 <unk> <unk> watching abc 's monday night football can now vote during <unk> for the greatest play in N years from among four or five <unk> <unk>
 two weeks ago viewers of several nbc <unk> consumer segments started calling a N number for advice on various <unk> issues
 and the new syndicated reality show hard copy records viewers ' opinions for possible airing on the next day 's show
 interactive telephone technology has taken a new leap in <unk> and television programmers are racing to exploit the possibilities
 eventually viewers may grow <unk> with the technology and <unk> the cost
 but it was n't clear whether mr. <unk> of the u.s. unit would agree
 the company said it does n't expect the <unk> to affect earnings
"""

# One sentence per line of raw English.
LINES = """\
Consumers may want to move their telephones a little closer to the TV set.
Viewers of ABC's Monday Night Football can now vote during the game.
Two weeks ago, viewers of several NBC segments started calling a 900 number.
Dr. Smith said the U.S. unit wouldn't agree.
The company said it doesn't expect the change to affect earnings.
It's a well-known fact that prices rose 3.5% in 1989.
"""

# Prose: paragraphs of several sentences, one paragraph per line, then a blank line.
PROSE = """\
The history of the company goes back to 1886. Two brothers founded it in a small town. \
They sold soap and candles at first. Later, Dr. Smith joined them as a partner.
It's a story that many people don't know. The firm's growth was slow at first; e.g. in 1900 \
it had only 12 employees. By 1950, however, it employed 40,000 people in the U.S. and abroad.

Today the firm is run by J. R. R. Smith. He says the next decade will be the best yet.
"""

# The same kind of prose, hard-wrapped at about 60 characters.
WRAPPED = """\
The history of the company goes back to 1886. Two brothers
founded it in a small town. They sold soap and candles at
first. Later, Dr. Smith joined them as a partner, and the firm
grew quickly in the following years, opening shops in many
cities across the country.
"""


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return load_text(p)


def test_detect_format(tmp_path):
    assert detect_format(_write(tmp_path, "ptb.valid.txt", PTB)) == "tokens"
    assert detect_format(_write(tmp_path, "lines.txt", LINES)) == "lines"
    assert detect_format(_write(tmp_path, "prose.txt", PROSE)) == "text"
    assert detect_format(_write(tmp_path, "wrapped.txt", WRAPPED)) == "text"
    # lower case, no punctuation, no <unk>: pre-tokenized too
    assert detect_format("the cat sat on the mat\nthe dog ate it\n") == "tokens"
    # the PTB format with the punctuation kept (WSJ treebank tokenization)
    wsj = "Pierre Vinken , 61 years old , will join the board .\nMr. Vinken is chairman .\n"
    assert detect_format(wsj) == "tokens"
    with pytest.raises(RnnkitError, match="empty"):
        detect_format(" \n\n")


def test_ptb_tokens_kept_as_they_are(tmp_path):
    text = _write(tmp_path, "ptb.valid.txt", PTB)
    sents = read_sentences(text)  # auto -> tokens
    assert sents == [line.split() for line in PTB.splitlines()]
    assert sents[1][:2] == ["<unk>", "<unk>"] and "'s" in sents[1] and "N" in sents[1]
    assert sents[6][:4] == ["but", "it", "was", "n't"]
    assert read_sentences(text, fmt="tokens") == sents
    # every <unk> is one token: the count equals the text's, none is split into < unk >
    assert sum(s.count("<unk>") for s in sents) == PTB.count("<unk>")
    assert not any(t in ("<", ">", "unk") for s in sents for t in s)
    # the vocabulary has the one UNK entry, at its special id
    v = Vocab.build(sents)
    assert v.itos.count("<unk>") == 1 and v.id("<unk>") == v.unk_id


def test_ptb_as_lines_gives_the_same_tokens(tmp_path):
    text = _write(tmp_path, "ptb.valid.txt", PTB)
    assert read_sentences(text, fmt="lines", lower=False) == read_sentences(text, fmt="tokens")


def test_lines_format(tmp_path):
    sents = read_sentences(_write(tmp_path, "lines.txt", LINES))
    assert len(sents) == 6
    assert sents[1] == [
        "viewers",
        "of",
        "abc",
        "'s",
        "monday",
        "night",
        "football",
        "can",
        "now",
        "vote",
        "during",
        "the",
        "game",
        ".",
    ]
    assert sents[3] == ["dr.", "smith", "said", "the", "u.s.", "unit", "would", "n't", "agree", "."]
    assert read_sentences(LINES, fmt="lines", lower=False)[0][-3:] == ["TV", "set", "."]


def test_text_format(tmp_path):
    sents = read_sentences(_write(tmp_path, "prose.txt", PROSE), lower=False)
    assert len(sents) == 9
    assert sents[3] == ["Later", ",", "Dr.", "Smith", "joined", "them", "as", "a", "partner", "."]
    assert sents[5][-9:] == ["e.g.", "in", "1900", "it", "had", "only", "12", "employees", "."]
    assert sents[6][-5:] == ["the", "U.S.", "and", "abroad", "."]
    assert sents[7] == ["Today", "the", "firm", "is", "run", "by", "J.", "R.", "R.", "Smith", "."]
    wrapped = read_sentences(WRAPPED, fmt="text")
    assert [len(s) for s in wrapped] == [10, 9, 8, 29]


def test_unknown_token_mapped_never_split_or_doubled():
    text = "The UNK said UNK, not UNKNOWN.\nA <unk> too.\n"
    sents = read_sentences(text, fmt="lines", unk_token="UNK")
    assert sents == [
        ["the", "<unk>", "said", "<unk>", ",", "not", "unknown", "."],
        ["a", "<unk>", "too", "."],
    ]
    toks = read_sentences("a @@UNK@@ b\n", fmt="lines", unk_token="@@UNK@@")
    assert toks == [["a", "<unk>", "b"]]
    ptb = read_sentences("the <UNK> 's N\n", fmt="tokens", unk_token="<UNK>")
    assert ptb == [["the", "<unk>", "'s", "N"]]
    assert read_sentences("The <UNK> 's N\n", fmt="tokens", unk_token="<UNK>", lower=True) == [
        ["the", "<unk>", "'s", "n"]
    ]
    v = Vocab.build(read_sentences(text, fmt="lines", unk_token="UNK"))
    assert v.itos.count("<unk>") == 1 and "UNK" not in v and "unk" not in v


def test_read_stream_joins_sentences_with_eos():
    stream = read_stream(PTB, fmt="tokens")
    sents = read_sentences(PTB, fmt="tokens")
    assert stream.count(Vocab.EOS) == len(sents)
    assert stream[: len(sents[0]) + 1] == sents[0] + ["</s>"]
    assert stream[-1] == "</s>"


def test_iter_sentences_streams_text_in_bounded_blocks(monkeypatch):
    text = (PROSE + "\n" + WRAPPED) * 3
    whole = read_sentences(text, fmt="text")
    monkeypatch.setattr(formats, "_MAX_BLOCK_CHARS", 200)
    assert list(iter_sentences(iter(text.splitlines(keepends=True)), "text")) == whole
    # a single sentence longer than the bound is cut, not held forever
    long_line = "the cat sat on the mat and " * 40
    pieces = list(iter_sentences([long_line] * 3, "text"))
    assert sum(len(p) for p in pieces) == 3 * len(long_line.split())


def test_bom_and_blank_lines_and_bad_format():
    assert read_sentences("\ufeffa b\n\n  \nc\n", fmt="tokens") == [["a", "b"], ["c"]]
    with pytest.raises(RnnkitError, match="format"):
        read_sentences("a b", fmt="words")
    with pytest.raises(RnnkitError, match="format"):
        list(iter_sentences(["a"], "auto"))
