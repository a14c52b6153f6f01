"""rnnkit.data.topics: the docstring topic-classification set (no download)."""

from __future__ import annotations

import pytest

from rnnkit.app.datafiles import topics_main as main
from rnnkit.data.topics import PACKAGES, topic_examples
from rnnkit.errors import RnnkitError


@pytest.fixture(scope="module")
def examples():
    return topic_examples()


def test_every_package_has_examples_of_one_clean_line(examples):
    labels = [label for label, _ in examples]
    assert len(examples) > 1500
    assert set(labels) == set(PACKAGES)
    assert min(labels.count(p) for p in PACKAGES) >= 50
    texts = [t for _, t in examples]
    assert len(set(texts)) == len(texts)  # no exact repeats
    for t in texts:
        assert "\t" not in t and "\n" not in t and "\x00" not in t and ">>>" not in t
        assert 4 <= len(t.split()) <= 60


def test_deterministic_and_written_for_classify(tmp_path, examples, capsys):
    assert topic_examples(("email", "http")) == [e for e in examples if e[0] in ("email", "http")]
    out = tmp_path / "t.tsv"
    main(["--out", str(out), "--packages", "email,http"])
    lines = out.read_text(encoding="utf-8").splitlines()
    assert [tuple(ln.split("\t")) for ln in lines] == topic_examples(("email", "http"))
    assert f"wrote {len(lines)} examples of 2 packages" in capsys.readouterr().out


def test_unknown_package_is_a_clear_error():
    with pytest.raises(RnnkitError, match="no standard-library package 'nosuchpkg'"):
        topic_examples(("email", "nosuchpkg"))


def test_unwritable_output_is_a_one_line_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--out", str(tmp_path / "no" / "such" / "t.tsv"), "--packages", "http"])
    assert exc.value.code == 2
    assert "cannot write" in capsys.readouterr().err
