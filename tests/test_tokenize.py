"""Tests for the treebank tokenizer, the sentence splitter and Vocab's special tokens."""

from __future__ import annotations

import difflib
import json

import pytest
from conftest import need

from rnnkit.data.text import (
    Vocab,
    split_sentences,
    tokenize_chars,
    tokenize_simple,
    tokenize_treebank,
    tokenize_words,
)
from rnnkit.errors import RnnkitError

# Varied English sentences, one per entry: contractions, possessives, abbreviations, initials,
# numbers, hyphens, quotes, brackets, and the cases where rnnkit deliberately differs from
# NLTK (final abbreviations, opening single quotes, symbols and dashes inside words).
SENTENCES = [
    "The company's shares rose 3.5% to $42.75 on Tuesday.",
    "I don't think they'll agree, but we're going to try anyway.",
    "Dr. Smith and Mr. Jones met with U.S. officials in Washington.",
    "The U.S.-based firm reported revenue of $1,000,000 last year.",
    "She said it's a well-known fact that cats can't swim.",
    "Prices fell, e.g. for oil, gas and coal, by about 2.5 percent.",
    "He won't come, i.e. he has other plans for the weekend.",
    "They've been working on the project since 1998.",
    "I'm not sure whether we'd have finished without your help.",
    "The meeting is at 10:30 in room 4B, isn't it?",
    "Apples, oranges, pears, etc. were on the table.",
    "What a surprise!",
    "Mrs. Brown's dog barked at the mailman.",
    "The temperature dropped to -5 degrees overnight.",
    "You shouldn't have done that; it was a mistake.",
    "Our profits grew by 12 percent (roughly $3.2 million) this quarter.",
    "J. R. R. Tolkien wrote The Lord of the Rings.",
    "The 10-year-old boy finished the race in 2:15:30.",
    "Why didn't anyone tell me about the change?",
    "The report, which was published in March, criticized the policy.",
    "He paid 1,250 dollars for a second-hand car.",
    "We'll see what happens next week.",
    "The children's toys were scattered across the floor.",
    "Please call me at 555-1234 after 6 p.m. tomorrow.",
    "The cost-benefit analysis wasn't convincing.",
    "She'd already left when I arrived at the station.",
    "Is this the end of the story?",
    "Mr. Lee, the new CEO, said the company would expand into Europe.",
    "The population of the city is about 8,400,000 people.",
    "They're planning a trip to New York in the spring.",
    "It's 3.14159, not 3.14, if you want more digits.",
    "The results were, in a word, disappointing.",
    "Prof. Adams teaches physics at the university.",
    "Gov. Brown signed the bill into law on Monday.",
    "Stocks fell sharply: the index lost 4.2 points.",
    "The state-of-the-art system cost twice as much as expected.",
    "Who's responsible for this mess?",
    "Let's meet at the cafe on Main Street.",
    "You can't always get what you want.",
    "The U.N. Security Council voted 14 to 1 in favor.",
    "He's been living in Paris for five years.",
    "The answer is yes -- at least for now.",
    "Sales rose 7% in the first half of the year.",
    "The firm's chief executive, John Smith, resigned.",
    "We couldn't find the keys anywhere in the house.",
    "About 40,000 people attended the concert in the park.",
    "My brother-in-law works for a well-known bank.",
    'She asked, "Where are you going?"',
    '"I\'m tired," he said.',
    "The book costs $19.99 at most stores.",
    "There were 3 cats, 2 dogs and 1 parrot in the house.",
    "The vote was 52-48 in favor of the proposal.",
    "He hasn't called me since Friday.",
    "Investors worry about inflation; however, bonds are rallying.",
    "The plan, i.e. the one we discussed, was approved.",
    "Ms. Garcia will lead the new department.",
    "Wait... are you serious?",
    "The players' union rejected the offer.",
    "I'd like a cup of coffee, please.",
    "The company was founded in 1886 by two brothers.",
    "In 2019, the firm earned $2.3 billion on sales of $15 billion.",
    "They cannot attend the meeting on Friday.",
    "This is a test of the emergency broadcast system.",
    "The U.S. economy grew faster than expected in the third quarter.",
    "Smith & Wesson makes guns.",
    "He said the deal, worth $500 million, would close next year.",
    "She moved to the U.S.",
    "We bought apples, pears, bananas, etc.",
    "'Hello,' she said with a smile.",
    "Use the red and/or blue pens for the forms.",
    "The score was 2+2=4 in the toy example.",
    "See Fig. 3 for the details of the setup.",
    "The dogs' owners weren't happy about it.",
    "Visit www.example.com for more information.",
    "She gave him a B- on the essay.",
    "It happened in the '90s, when rock 'n' roll was already old.",
    "The war—which lasted four years—ended in 1918.",
    "They're gonna win, aren't they?",
    "AT&T and Verizon raised prices.",
    "Fourth-quarter earnings were 50 cents a share [up from 40 cents].",
]

# Agreement with NLTK's TreebankWordTokenizer on SENTENCES (NLTK 3.10.4; its `` and '' quotes
# read as "): 73 of 80 sentences identical (0.9125), token-level Dice 0.984 (831 NLTK tokens).
# The floors leave a little room.
MIN_SENTENCE_AGREEMENT = 0.90
MIN_TOKEN_AGREEMENT = 0.98


def _agreement(ours: list[list[str]], theirs: list[list[str]]) -> tuple[float, float]:
    """(fraction of sentences tokenized identically, token-level Dice over all sentences)."""
    same = sum(a == b for a, b in zip(ours, theirs))
    matched = total = 0
    for a, b in zip(ours, theirs):
        sm = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
        matched += sum(block.size for block in sm.get_matching_blocks())
        total += len(a) + len(b)
    return same / len(ours), 2 * matched / total


def test_agrees_with_nltk_treebank_tokenizer():
    nltk_tb = need("nltk.tokenize.treebank")
    nltk_tok = nltk_tb.TreebankWordTokenizer()
    theirs = [['"' if t in ("``", "''") else t for t in nltk_tok.tokenize(s)] for s in SENTENCES]
    ours = [tokenize_treebank(s) for s in SENTENCES]
    assert len(SENTENCES) >= 50
    sent_agree, tok_agree = _agreement(ours, theirs)
    assert sent_agree >= MIN_SENTENCE_AGREEMENT, sent_agree
    assert tok_agree >= MIN_TOKEN_AGREEMENT, tok_agree


@pytest.mark.parametrize(
    "text, tokens",
    [
        ("I don't know", ["I", "do", "n't", "know"]),
        (
            "It's what we're told: I'm sure they've gone, you'll see, he'd say",
            [
                "It",
                "'s",
                "what",
                "we",
                "'re",
                "told",
                ":",
                "I",
                "'m",
                "sure",
                "they",
                "'ve",
                "gone",
                ",",
                "you",
                "'ll",
                "see",
                ",",
                "he",
                "'d",
                "say",
            ],
        ),
        (
            "We can't, won't, cannot, DON'T",
            ["We", "ca", "n't", ",", "wo", "n't", ",", "can", "not", ",", "DO", "N'T"],
        ),
        (
            "the company's and the players' union",
            ["the", "company", "'s", "and", "the", "players", "'", "union"],
        ),
        (
            "Dr. Smith, Mr. Lee and Mrs. Brown",
            ["Dr.", "Smith", ",", "Mr.", "Lee", "and", "Mrs.", "Brown"],
        ),
        (
            "e.g. this, i.e. that, etc., said U.S. officials",
            ["e.g.", "this", ",", "i.e.", "that", ",", "etc.", ",", "said", "U.S.", "officials"],
        ),
        ("J. R. R. Tolkien", ["J.", "R.", "R.", "Tolkien"]),
        (
            "3.14 and 1,000,000 at 10:30, -5 or $3.88 (50%)",
            [
                "3.14",
                "and",
                "1,000,000",
                "at",
                "10:30",
                ",",
                "-5",
                "or",
                "$",
                "3.88",
                "(",
                "50",
                "%",
                ")",
            ],
        ),
        (
            "a U.S.-based, well-known, state-of-the-art firm",
            ["a", "U.S.-based", ",", "well-known", ",", "state-of-the-art", "firm"],
        ),
        ("It ended. Then what?", ["It", "ended", ".", "Then", "what", "?"]),
        ("She lives in the U.S.", ["She", "lives", "in", "the", "U.S.", "."]),
        ("Wait... yes -- no", ["Wait", "...", "yes", "--", "no"]),
        ("“Quoted,” she said’s", ['"', "Quoted", ",", '"', "she", "said", "'s"]),
        ("'Hi,' he said", ["'", "Hi", ",", "'", "he", "said"]),
        ("No. 5 is no.", ["No.", "5", "is", "no", "."]),
        ("Plan B.", ["Plan", "B", "."]),
    ],
)
def test_treebank_conventions(text, tokens):
    assert tokenize_treebank(text) == tokens


def test_angle_markers_never_split_nor_lowercased():
    assert tokenize_treebank("the <unk> of <UNK>, </s>") == [
        "the",
        "<unk>",
        "of",
        "<UNK>",
        ",",
        "</s>",
    ]
    assert tokenize_treebank("A <unk>.", lower=True) == ["a", "<unk>", "."]
    assert tokenize_words("x < y > z") == ["x", "<", "y", ">", "z"]


def test_pretokenized_text_is_a_fixed_point():
    # PTB-format input tokenizes to its own whitespace split: lines and tokens formats agree
    ptb = "the company 's <unk> did n't say mr. <unk> of n.v. N years old nov. N"
    assert tokenize_treebank(ptb) == ptb.split()
    for s in SENTENCES:
        toks = tokenize_treebank(s)
        assert tokenize_treebank(" ".join(toks)) == toks


def test_tokenize_words_is_lowercased_treebank():
    s = "Don't the U.S.-based firms' e.g. users pay $3.14?"
    assert tokenize_words(s) == [t.lower() for t in tokenize_treebank(s)]
    assert tokenize_words(s, lower=False) == tokenize_treebank(s)
    with pytest.raises(RnnkitError, match="str"):
        tokenize_words(["a"])


def test_tokenize_simple_keeps_the_old_behaviour():
    assert tokenize_simple("Don't stop: a well-known rule (42 or 3.14)...") == [
        "don't",
        "stop",
        ":",
        "a",
        "well-known",
        "rule",
        "(",
        "42",
        "or",
        "3.14",
        ")",
        ".",
        ".",
        ".",
    ]
    assert tokenize_simple("The  CAT\n\tsat", lower=False) == ["The", "CAT", "sat"]


# ---------------------------------------------------------------------------- sentences


def test_split_sentences_keeps_abbreviations_initials_decimals():
    text = (
        "Dr. Smith met U.S. officials, e.g. Mr. Jones. J. R. R. Tolkien wrote it in "
        "1937. Pi is about 3.14. It rose 2.5 percent vs. last year."
    )
    assert split_sentences(text) == [
        "Dr. Smith met U.S. officials, e.g. Mr. Jones.",
        "J. R. R. Tolkien wrote it in 1937.",
        "Pi is about 3.14.",
        "It rose 2.5 percent vs. last year.",
    ]


def test_split_sentences_after_abbreviation_that_ends_a_sentence():
    assert split_sentences("He works at Apple Inc. The firm is big.") == [
        "He works at Apple Inc.",
        "The firm is big.",
    ]
    assert split_sentences("She moved to the U.S. It was cold.") == [
        "She moved to the U.S.",
        "It was cold.",
    ]
    # a capitalised word that is not a usual sentence opener continues the sentence
    assert split_sentences("The U.S. Army and Acme Inc. Chairman Lee agreed.") == [
        "The U.S. Army and Acme Inc. Chairman Lee agreed."
    ]


def test_split_sentences_recovers_the_sample():
    assert split_sentences(" ".join(SENTENCES)) == SENTENCES
    assert split_sentences("Files, dirs, etc. Finally it ends.") == [
        "Files, dirs, etc.",
        "Finally it ends.",
    ]


def test_split_sentences_old_rules():
    text = "First one. Second one! Is it third? yes it is.\n\nNew paragraph without end\nLast."
    assert split_sentences(text) == [
        "First one.",
        "Second one!",
        "Is it third? yes it is.",
        "New paragraph without end\nLast.",
    ]
    assert split_sentences('He said "stop." Then left.') == ['He said "stop."', "Then left."]
    assert split_sentences("Ask Dr.\nSmith now.") == ["Ask Dr.\nSmith now."]


# ---------------------------------------------------------------------------- Vocab specials


def test_char_vocab_literal_angle_bracket_is_an_ordinary_token():
    chars = tokenize_chars("<>" * 300)
    v = Vocab.build([chars], specials=(Vocab.UNK,))
    assert v.itos == ["<unk>", "<", ">"]
    assert v.specials == ("<unk>",)
    assert v.num_regular == 2
    assert not v.is_special("<") and not v.is_special(">") and v.is_special("<unk>")
    assert v.decode(v.encode(chars)) == chars


def test_only_exact_special_strings_are_special():
    v = Vocab.build([["<unk>", "<b>", "<", "</s>", "<unknown>", "x"]])
    assert v.specials == (Vocab.PAD, Vocab.UNK, Vocab.BOS, Vocab.EOS)
    assert v.num_regular == 4  # <b>, <, <unknown>, x
    assert [t for t in v.itos if not v.is_special(t)] == ["<b>", "<", "<unknown>", "x"]
    # a vocabulary given as a list infers its specials from the exact strings
    assert Vocab(["<", "<unk>", "a"]).specials == ("<unk>",)
    assert Vocab(["<", "a"]).num_regular == 2


def test_custom_specials_round_trip_and_from_counts():
    v = Vocab.build([["a", "b", "b"]], specials=("<mask>", Vocab.UNK))
    assert v.specials == ("<mask>", "<unk>") and v.num_regular == 2
    d = json.loads(json.dumps(v.to_json()))
    assert d["specials"] == ["<mask>", "<unk>"]
    w = Vocab.from_json(d)
    assert w == v and w.specials == v.specials
    assert "specials" not in Vocab.build([["a"]]).to_json()  # default: as before
    counts = {"b": 2, "a": 1, "c": 2}
    assert Vocab.from_counts(counts).itos == Vocab.build([["b", "b", "a", "c", "c"]]).itos
    with pytest.raises(RnnkitError, match="not in the vocabulary"):
        Vocab(["a"], specials=["<unk>"])
