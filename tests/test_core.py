"""The module tree, the run folder and the CLI pattern of the core: one owner per array, dotted
names, frozen parameters, refusing to overwrite or share a run folder, and --resume with a flag
that differs from the checkpoint."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import need, run_cli

from rnnkit.errors import RnnkitError
from rnnkit.layers import make_recurrent
from rnnkit.models.lm import LanguageModel, LMConfig
from rnnkit.module import Module
from rnnkit.rundir import RunDir

ROOT = Path(__file__).resolve().parents[1]


_run = run_cli  # rnnkit.cli.main in process (tests/conftest.py)


# ---------------------------------------------------------------------------- modules
def test_dotted_names_one_owner_and_assignment_takes_effect_everywhere():
    m = LanguageModel(LMConfig(vocab_size=7, embed_size=3, hidden_size=4, cell="gru", num_layers=2))
    names = [n for n, _ in m.named_parameters()]
    assert names[0] == "embed.weight" and "rnn.weight_hh_l1" in names and names[-1] == "out.bias"
    ids = {id(p) for _, p in m.named_parameters()}
    assert len(ids) == len(names)  # one array per name
    w = m.rnn.weight_hh_l0
    view = m.params["rnn.weight_hh_l0"]
    m.rnn.weight_hh_l0 = np.ones_like(w)  # copies into the one array
    assert (
        view is m.rnn.weight_hh_l0 and np.all(view == 1) and np.all(m.rnn.weights(0)["w_hh"] == 1)
    )
    with pytest.raises(RnnkitError, match="shape"):
        m.rnn.weight_hh_l0 = np.ones((2, 2))
    with pytest.raises(TypeError):
        m.params["out.bias"] = np.zeros(7)  # rebinding is impossible


def test_state_dict_round_trip_and_strict_keys():
    a = make_recurrent("lstm", 3, 4, num_layers=2, bidirectional=True, seed=0)
    b = make_recurrent("lstm", 3, 4, num_layers=2, bidirectional=True, seed=1)
    b.load_state_dict(a.state_dict())
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(b.state_dict()[k], v)
    bad = a.state_dict()
    bad.pop("weight_ih_l1_reverse")
    with pytest.raises(RnnkitError, match="missing"):
        b.load_state_dict(bad)


def test_frozen_parameters_are_not_trained():
    m = LanguageModel(LMConfig(vocab_size=6, embed_size=3, hidden_size=4))
    m.freeze("embed.weight")
    assert "embed.weight" not in m.parameters() and "embed.weight" in m.state_dict()
    r = m.loss_and_grads((np.array([[1, 2], [3, 4]]), np.array([[2, 3], [4, 5]]), None))
    assert "embed.weight" not in r.grads and "out.bias" in r.grads


def test_cell_own_parameters_get_layer_names():
    layer = make_recurrent("leaky", 3, 4, num_layers=2, bidirectional=True)
    assert {"rho_l0", "rho_l1_reverse"} <= set(layer.params)
    assert (1.0 + np.exp(layer.rho_l0) > 1).all()  # tau > 1


def test_module_needs_super_init():
    class Bad(Module):
        def __init__(self):
            self.add_param("w", np.zeros(2))

    with pytest.raises(RnnkitError, match="super"):
        Bad()


# ---------------------------------------------------------------------------- run folders
def test_run_folder_is_locked_and_not_overwritten(tmp_path):
    with RunDir(tmp_path / "r").open():
        with pytest.raises(RnnkitError, match="in use"):
            RunDir(tmp_path / "r").open()
    (tmp_path / "r" / "checkpoint.npz").write_bytes(b"x")
    with pytest.raises(RnnkitError, match="--resume.*--overwrite"):
        RunDir(tmp_path / "r").open()
    (tmp_path / "r" / "checkpoint.npz.abc.tmp").write_bytes(b"half")
    with RunDir(tmp_path / "r").open(overwrite=True):
        assert not list((tmp_path / "r").glob("*.tmp"))  # orphans of a kill -9 are cleaned
    with pytest.raises(RnnkitError, match="empty"):
        RunDir("")


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("core")
    corpus = d / "c.txt"
    rng = np.random.default_rng(0)
    words = "the cat dog sat on a mat ran fast slow and big".split()
    corpus.write_text(
        "\n".join(" ".join(rng.choice(words, 6)).capitalize() + "." for _ in range(200))
    )
    out = d / "run"
    code, _, err = _run(
        [
            "train",
            "lm",
            "--corpus",
            corpus,
            "--out",
            out,
            "--epochs",
            "1",
            "--hidden-size",
            "8",
            "--embed-size",
            "8",
            "--samples",
            "0",
            "--no-progress",
        ]
    )
    assert code == 0, err
    return corpus, out


def test_training_into_an_existing_run_is_refused(small_run):
    corpus, out = small_run
    code, _, err = _run(["train", "lm", "--corpus", corpus, "--out", out, "--epochs", "1"])
    assert code == 2 and "already holds a run" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "flag,value",
    [("--hidden-size", "16"), ("--cell", "lstm"), ("--optimizer", "sgd"), ("--batch-size", "7")],
)
def test_resume_with_a_conflicting_flag_names_it(small_run, flag, value):
    _, out = small_run
    code, _, err = _run(["train", "lm", "--out", out, "--resume", flag, value])
    assert code == 2 and flag in err and "differs from the checkpoint" in err, err


def test_resume_with_a_different_corpus_is_refused(small_run, tmp_path):
    _, out = small_run
    other = tmp_path / "o.txt"
    other.write_text("A b c d. E f g h.\n" * 50)
    code, _, err = _run(["train", "lm", "--out", out, "--resume", "--corpus", other])
    assert code == 2 and "--corpus" in err


def test_resume_may_change_epochs_and_lr(small_run):
    _, out = small_run
    code, stdout, err = _run(
        [
            "train",
            "lm",
            "--out",
            out,
            "--resume",
            "--epochs",
            "2",
            "--lr",
            "0.001",
            "--samples",
            "0",
            "--no-progress",
        ]
    )
    assert code == 0, err
    assert "perplexity" in stdout


def test_edited_corpus_is_refused_on_eval(small_run, tmp_path):
    corpus, out = small_run
    import shutil

    run2 = tmp_path / "copy"
    shutil.copytree(out, run2)
    text = corpus.read_text()
    try:
        corpus.write_text(text + "A new sentence here.\n")
        code, _, err = _run(["eval", run2])
        assert code == 2 and "changed since" in err
    finally:
        corpus.write_text(text)
    code, stdout, _ = _run(["eval", run2, "--json"])
    assert code == 0 and "ppl" in stdout


def test_sigterm_saves_the_position(tmp_path):
    """SIGTERM (timeout, a batch scheduler) is handled like Ctrl-C: the position is saved and
    the run resumes."""
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rnnkit",
            "train",
            "lm",
            "--level",
            "char",
            "--epochs",
            "50",
            "--hidden-size",
            "32",
            "--out",
            str(out),
            "--no-progress",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 60
    while not (out / "metrics.jsonl").exists() and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 143, err
    assert "terminated; the position is saved" in err and "Traceback" not in err
    code, _, err2 = _run(
        [
            "train",
            "lm",
            "--out",
            out,
            "--resume",
            "--epochs",
            "1",
            "--samples",
            "0",
            "--no-progress",
            "--time-budget",
            "1",
        ]
    )
    assert code == 0, err2


def test_ctrl_c_during_data_preparation_claims_no_save(tmp_path, monkeypatch):
    import rnnkit.tasks.lm as lm_task

    def boom(self, *a):
        raise KeyboardInterrupt

    monkeypatch.setattr(lm_task.LMTask, "_prepare", boom)
    code, _, err = _run(["train", "lm", "--out", tmp_path / "r", "--samples", "0"])
    assert code == 130 and "nothing was saved" in err and "position" not in err


def test_predict_dispatches_on_the_stored_task(small_run):
    _, out = small_run
    code, stdout, err = _run(["predict", out, "the cat", "a dog", "--top", "3"])
    assert code == 0, err
    lines = stdout.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("the cat\t") and lines[0].count("'") == 6
    probs = [float(x) for x in lines[0].split("\t")[1].split()[1::2]]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0 + 1e-9


def test_first_numba_compile_is_announced_once(monkeypatch, caplog):
    from rnnkit.layers import _fast

    need("numba")
    monkeypatch.setattr(_fast, "ENABLED", True)
    monkeypatch.setattr(_fast, "_ANNOUNCED", False)
    monkeypatch.setattr(_fast, "_compiled_before", lambda: False)
    with caplog.at_level("INFO", logger="rnnkit"):
        assert _fast.kernels() is _fast and _fast.kernels() is _fast
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and "compiling the LSTM/GRU kernels" in said[0]
    caplog.clear()
    monkeypatch.setattr(_fast, "_ANNOUNCED", False)
    monkeypatch.setattr(_fast, "_compiled_before", lambda: True)
    with caplog.at_level("INFO", logger="rnnkit"):
        _fast.kernels()
    assert caplog.records == []


def test_the_command_line_shows_the_library_log_on_stderr(capsys):
    import logging

    from rnnkit.app.cli import show_library_log

    show_library_log()
    show_library_log()  # once only, however often main() runs in a process
    logging.getLogger("rnnkit.layers._fast").info("rnnkit: a line")
    logging.getLogger("rnnkit.layers._fast").debug("not this one")
    assert capsys.readouterr().err == "rnnkit: a line\n"


def test_module_misuse_is_a_one_line_rnnkit_error():
    """Every way to misuse the Module API that a user can reach: a one-line RnnkitError, and
    nothing changed."""

    class NoSuper(Module):
        def __init__(self):  # forgets super().__init__()
            self.add_param("w", np.zeros(2))

    class NoSuperChild(Module):
        def __init__(self):
            self.child = Module()

    class Net(Module):
        def __init__(self):
            super().__init__()
            self.add_param("w", np.zeros((2, 3)))
            self.inner = Module()
            self.inner.add_param("b", np.zeros(3))

    def err(fn, match):
        with pytest.raises(RnnkitError, match=match) as info:
            fn()
        assert "\n" not in str(info.value)

    err(NoSuper, r"must call super\(\).__init__\(\) first")
    err(NoSuperChild, r"must call super\(\).__init__\(\) first")
    net = Net()
    err(lambda: net.add_param("w", np.zeros(2)), "duplicate parameter name 'w'")
    err(lambda: net.add_param("a.b", np.zeros(2)), "bad or duplicate parameter name")
    err(lambda: net.add_param("i", np.zeros(2, np.int64)), "must be a float numpy array")
    err(lambda: net.add_module("m", np.zeros(2)), "must be a Module, got ndarray")
    err(lambda: net.add_module("w", Module()), "bad module name 'w'")
    err(lambda: setattr(net, "inner", np.zeros(3)), "inner is a child module")
    err(lambda: setattr(net, "w", np.array(["a", "b"] * 3).reshape(2, 3)), "needs numeric values")
    err(lambda: net.freeze("nope"), "no parameter named 'nope'")
    err(lambda: net.unfreeze("nope"), "no parameter named 'nope'")
    bad_dtype = {"w": np.zeros((2, 3)), "inner.b": np.array(["x", "y", "z"])}
    err(lambda: net.load_state_dict(bad_dtype), "inner.b has dtype")
    assert np.all(net.w == 0) and np.all(net.inner.b == 0)  # nothing changed
    # the non-error paths next to them
    net.freeze()
    assert net.parameters() == {}
    net.unfreeze("inner.b")
    assert list(net.parameters()) == ["inner.b"]
    net.unfreeze()
    assert set(net.parameters()) == {"w", "inner.b"} and net.num_parameters() == 9
    net.load_state_dict({"w": np.ones((2, 3))}, strict=False)  # inner.b absent: kept
    assert np.all(net.w == 1) and np.all(net.inner.b == 0)
    assert repr(net) == "Net(inner=Module)"
    net.inner = None  # a child can be removed
    assert dict(net.named_parameters()).keys() == {"w"} and repr(net) == "Net(inner=NoneType)"


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru", "leaky"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_embedding_table_projection_equals_embedded_rows(cell, bidirectional):
    """forward(ids, embedding=E) gathers from E W_ih^T: the same outputs and weight gradients as
    forward(E[ids]), and dL/dE equals the embedded rows' gradient scattered to their ids."""
    rng = np.random.default_rng(0)
    V, I, H, T, B = 5, 3, 4, 6, 3
    layer = make_recurrent(cell, I, H, num_layers=2, bidirectional=bidirectional, dtype="float64")
    E = rng.standard_normal((V, I))
    ids = rng.integers(0, V, (T, B))
    lengths = np.array([6, 4, 1])
    dy = rng.standard_normal((T, B, layer.output_size))
    y1, _ = layer.forward(E[ids], lengths=lengths)
    dx, _ = layer.backward(dy)
    g1 = dict(layer.grads)
    y2, _ = layer.forward(ids, lengths=lengths, embedding=E)
    dE, _ = layer.backward(dy)
    np.testing.assert_allclose(y2, y1, rtol=1e-12, atol=1e-13)
    want = np.zeros_like(E)
    np.add.at(want, ids.reshape(-1), dx.reshape(-1, I))
    np.testing.assert_allclose(dE, want, rtol=1e-10, atol=1e-12)
    for k in g1:
        np.testing.assert_allclose(layer.grads[k], g1[k], rtol=1e-10, atol=1e-12)
    with pytest.raises(RnnkitError, match="token ids"):
        layer.forward(E[ids], embedding=E)
