"""Data-parallel training with MPI (rnnkit/parallel.py, docs/mpi.md).

In process (no MPI): the default and the language model's sharding (the shards' gradient sums
add up to the whole batch's, ragged sentences and carried streams), and the serial path never
importing mpi4py. Under ``mpirun -n 2``: two ranks end with the parameters of one process (word
level with ragged batches, char level with the state carried), rank 0 alone writes and prints, a
time budget spent on one rank stops both, a SIGTERM to one rank saves the position for both, a
rank killed with SIGKILL ends the job in bounded time with the last checkpoint intact, and a
checkpoint of two ranks resumes in one process.

Without mpirun or mpi4py the MPI tests are skipped, saying why; under RNNKIT_REQUIRE_OPTIONAL=1
(set by ``.ci/run``) they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from conftest import missing, run_cli

from rnnkit.models.lm import LanguageModel, LMConfig
from rnnkit.parallel import SERIAL, block, join_state, rank_generators, split_batch, split_state
from rnnkit.tasks.base import Task
from rnnkit.tasks.lm import LMDataConfig, LMTask

ROOT = Path(__file__).resolve().parents[1]
WORDS = (
    "the cat dog sat on a mat and ran to big red house of my friend who saw it "
    "there was one small bird in tree near our old garden"
).split()


_run = run_cli  # rnnkit.cli.main in process (tests/conftest.py)


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    """Made-up English: 160 sentences of 2 to 14 words (word level), 3000 characters (char)."""
    d = tmp_path_factory.mktemp("mpi_corpus")
    rng = np.random.default_rng(7)
    lines = [" ".join(rng.choice(WORDS, rng.integers(2, 15))) + " ." for _ in range(160)]
    (d / "words.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (d / "chars.txt").write_text(" ".join(lines)[:3000], encoding="utf-8")
    return d / "words.txt", d / "chars.txt"


def _word_args(corpus, out, **kw):
    a = {
        "--level": "word",
        "--corpus": corpus,
        "--format": "lines",
        "--vocab-size": 60,
        "--batch-size": 7,
        "--embed-size": 8,
        "--hidden-size": 12,
        "--epochs": 2,
        "--log-every": 5,
        "--out": out,
    }
    a.update(kw)
    return [
        "train",
        "lm",
        *[str(x) for kv in a.items() for x in kv],
        "--no-progress",
        "--samples",
        "0",
    ]


def _char_args(corpus, out, **kw):
    a = {
        "--level": "char",
        "--corpus": corpus,
        "--batch-size": 6,
        "--bptt": 16,
        "--embed-size": 8,
        "--hidden-size": 12,
        "--cell": "rnn",
        "--dtype": "float64",
        "--epochs": 2,
        "--log-every": 5,
        "--out": out,
    }
    a.update(kw)
    return [
        "train",
        "lm",
        *[str(x) for kv in a.items() for x in kv],
        "--no-progress",
        "--samples",
        "0",
    ]


def _params(out) -> dict:
    with np.load(Path(out) / "checkpoint.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files if k.startswith("param/")}


def _meta(out) -> dict:
    with np.load(Path(out) / "checkpoint.npz", allow_pickle=False) as z:
        return json.loads(z["__meta__"].tobytes())


def _rows(out) -> list[dict]:
    text = (Path(out) / "metrics.jsonl").read_text(encoding="utf-8")
    return [json.loads(ln) for ln in text.splitlines() if ln.strip()]


def _n_lines(out) -> int:
    """Rows in metrics.jsonl, counted while rank 0 may be writing one."""
    try:
        return (Path(out) / "metrics.jsonl").read_bytes().count(b"\n")
    except OSError:
        return 0


def _assert_close(a: dict, b: dict, rtol: float) -> None:
    assert set(a) == set(b) and a
    for k in a:
        scale = max(float(np.abs(a[k]).max()), 1e-3)
        err = float(np.abs(a[k] - b[k]).max()) / scale
        assert err <= rtol, (k, err)


# ============================================================================ sharding, no MPI
def test_block_deals_contiguous_blocks_first_ranks_one_more():
    assert [block(7, r, 3) for r in range(3)] == [(0, 3), (3, 5), (5, 7)]
    assert [block(1, r, 2) for r in range(2)] == [(0, 1), (1, 1)]


def test_default_shard_cuts_the_batch_axis_of_every_array():
    T, B = 5, 7
    x = np.arange(T * B * 3).reshape(T, B, 3)
    y = np.arange(B) * 10
    parts = [split_batch((x, y, None, 4), r, 3) for r in range(3)]
    assert [p[0].shape for p in parts] == [(5, 3, 3), (5, 2, 3), (5, 2, 3)]
    np.testing.assert_array_equal(np.concatenate([p[0] for p in parts], axis=1), x)
    np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), y)
    assert all(p[2] is None and p[3] == 4 for p in parts)
    d = split_batch({"ids": np.zeros((4, 2)), "labels": np.array([1, 2])}, 1, 2)
    assert d["ids"].shape == (4, 1) and d["labels"].tolist() == [2]
    assert split_batch((np.zeros((3, 1)),), 1, 2) is None  # one column, two ranks


def test_default_shard_of_an_unreadable_batch_is_rank_0s_alone():
    class Odd(Task):
        name = "odd"

    t = Odd(None)
    batch = [object(), object()]
    with pytest.warns(UserWarning, match="rank 0 computes"):
        assert t.shard(batch, 0, 2) is batch
    assert t.shard(batch, 1, 2) is None
    t.carries_state = True
    with pytest.raises(ValueError, match="shard"):
        t.shard(batch, 0, 2)


def _lm_task(level, corpora):
    words, chars = corpora
    cfg = LMDataConfig(
        level=level,
        corpus=str(words if level == "word" else chars),
        format="lines" if level == "word" else "auto",
        vocab_size=60,
        batch_size=7,
        bptt=9,
    )
    task = LMTask(cfg)
    model = task.build_model(LMConfig(embed_size=6, hidden_size=5, cell="lstm", dtype="float64"))
    return task, model


@pytest.fixture
def no_numba(monkeypatch):
    """The NumPy path of the gated cells (no JIT compile in a short test)."""
    import rnnkit.layers._fast as fast

    monkeypatch.setattr(fast, "ENABLED", False)


@pytest.mark.parametrize("level", ["word", "char"])
def test_lm_shards_add_up_to_the_whole_batch(level, corpora, no_numba):
    """The identity data parallelism rests on: the sum over the ranks' shards of the loss sums,
    counts and gradient sums equals that of the global batch (ragged sentences, carried LSTM
    state (h, c))."""
    task, model = _lm_task(level, corpora)
    batches = task.batches("train", np.random.default_rng(0))
    batch = max(batches[:8], key=lambda b: b[0].shape[1] if b[2] is None else np.ptp(b[2]))
    rng = np.random.default_rng(1)
    carry = tuple(rng.normal(size=s.shape) for s in model.zero_state(batch[0].shape[1]))
    whole = model.loss_and_grads(batch, carry if task.carries_state else None)
    g_whole = {k: v.copy() for k, v in whole.grads.items()}
    for K in (2, 3):
        loss, n, g, states = 0.0, 0, None, []
        for r in range(K):
            part = task.shard(batch, r, K)
            c = task.shard_carry(carry, r, K) if task.carries_state else None
            o = model.loss_and_grads(part, c)
            loss, n = loss + o.loss_sum, n + o.count
            g = (
                {k: v.copy() for k, v in o.grads.items()}
                if g is None
                else {k: g[k] + o.grads[k] for k in g}
            )
            states.append(o.carry)
            if level == "word":  # padded only to its own longest sentence
                assert part[0].shape[0] == part[2].max()
        assert n == whole.count and loss == pytest.approx(whole.loss_sum, rel=1e-12)
        _assert_close(g, g_whole, 1e-12)
        if task.carries_state:
            for a, b in zip(task.join_carry(states), whole.carry):
                np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_state_blocks_round_trip():
    h, c = np.random.default_rng(0).normal(size=(2, 2, 5, 3))
    parts = [split_state((h, c), r, 3) for r in range(3)]
    back = join_state(parts)
    np.testing.assert_array_equal(back[0], h) and np.testing.assert_array_equal(back[1], c)
    assert split_state(h, 1, 8) is not None and split_state(h, 6, 8) is None
    assert join_state([None, None]) is None


def test_each_rank_draws_its_own_dropout_masks():
    models = [
        LanguageModel(
            LMConfig(vocab_size=9, embed_size=3, hidden_size=4, num_layers=2, dropout=0.5)
        )
        for _ in range(3)
    ]
    assert [rank_generators(m, 5, r, 2) for m, r in zip(models, (0, 1, 0))] == [1, 1, 1]
    draws = [m.rnn._drop_rng.random(4) for m in models]
    assert not np.array_equal(draws[0], draws[1]) and np.array_equal(draws[0], draws[2])


def test_serial_path_never_imports_mpi4py():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "PMI", "MV2_"))}
    code = (
        "import sys; from rnnkit.parallel import world, SERIAL; "
        "print(world() is SERIAL, 'mpi4py' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.split() == ["True", "False"], out.stderr


def test_mpirun_without_mpi4py_is_a_one_line_error(monkeypatch, tmp_path, corpora):
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")
    monkeypatch.setenv("OMPI_COMM_WORLD_RANK", "0")
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # import fails
    code, _, err = _run(_word_args(corpora[0], tmp_path / "r"))
    assert code == 2 and "mpi4py" in err and "2 processes" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r").exists()
    assert SERIAL.size == 1


# ============================================================================ under mpirun
def _mpirun() -> list[str]:
    """The mpirun command line prefix, or skip (fail under RNNKIT_REQUIRE_OPTIONAL=1) saying
    what is missing."""
    exe = shutil.which("mpirun")
    if exe is None:
        missing("mpirun is not installed (Debian: apt-get install openmpi-bin libopenmpi-dev)")
    probe = subprocess.run(
        [sys.executable, "-c", "from mpi4py import MPI"],
        capture_output=True,
        env=_mpi_env(),
        timeout=60,
    )
    if probe.returncode != 0:
        missing("mpi4py is not installed or finds no MPI library (pip install 'rnnkit[mpi]')")
    ver = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60).stdout
    # Open MPI: run 2 ranks even where it counts fewer cores
    return [exe, "--oversubscribe"] if "Open MPI" in ver else [exe]


def _mpi_env(tag: str = "") -> dict:
    env = dict(
        os.environ,
        OMPI_ALLOW_RUN_AS_ROOT="1",
        OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
        PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        RNNKIT_THREADS="1",
        RNNKIT_TEST_TAG=tag,
        RNNKIT_NO_NUMBA="1",
        OMPI_MCA_btl="self,vader",
        OMPI_MCA_mpi_yield_when_idle="1",
    )
    return env


def _rank_cmd(argv) -> list[str]:
    return [sys.executable, "-m", "rnnkit", *[str(a) for a in argv]]


def _mpi(argv, n=2, timeout=120):
    r = subprocess.run(
        [*_mpirun(), "-n", str(n), *_rank_cmd(argv)],
        env=_mpi_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return r.returncode, r.stdout, r.stderr


def _rank_pid(tag: str, rank: int) -> int | None:
    """The pid of the process of rank ``rank`` among those started with RNNKIT_TEST_TAG=tag."""
    want = {f"RNNKIT_TEST_TAG={tag}".encode(), f"OMPI_COMM_WORLD_RANK={rank}".encode()}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                env = set((d / "environ").read_bytes().split(b"\0"))
            except OSError:
                continue
            if want <= env:
                return int(d.name)
    return None


def _wait_for(cond, proc, timeout=60.0) -> None:
    t0 = time.monotonic()
    while not cond():
        if proc.poll() is not None:
            raise AssertionError(f"mpirun ended early: {proc.communicate()}")
        if time.monotonic() - t0 > timeout:
            raise AssertionError("timed out")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def char_serial(corpora, tmp_path_factory):
    out = tmp_path_factory.mktemp("char_serial")
    code, _, err = _run(_char_args(corpora[1], out))
    assert code == 0, err
    return out


def test_two_ranks_match_one_process_word_level_ragged(corpora, tmp_path):
    """Word level, float32, Adam: batch size 7 is dealt 4 + 3 sentences of different lengths, and
    the last batch is short: same parameters as one process to float32 round-off. Rank 0 alone
    writes the files and prints."""
    code, out, err = _mpi(_word_args(corpora[0], tmp_path / "k2"))
    assert code == 0, err
    code1, out1, err1 = _run(_word_args(corpora[0], tmp_path / "k1"))
    assert code1 == 0, err1
    _assert_close(_params(tmp_path / "k2"), _params(tmp_path / "k1"), 1e-4)
    rows2, rows1 = _rows(tmp_path / "k2"), _rows(tmp_path / "k1")
    assert [r["kind"] for r in rows2] == [r["kind"] for r in rows1]  # written once, by rank 0
    for a, b in zip(rows2, rows1):
        key = "valid_loss" if a["kind"] == "eval" else "train_loss"
        assert a["step"] == b["step"] and a[key] == pytest.approx(b[key], rel=1e-5)
    assert out.count("held-out loss") == out1.count("held-out loss") == 2  # printed once
    assert "held-out perplexity" in out
    assert sorted(p.name for p in (tmp_path / "k2").iterdir()) == sorted(
        p.name for p in (tmp_path / "k1").iterdir()
    )


def test_two_ranks_match_one_process_char_level(corpora, char_serial, tmp_path):
    """Char level, float64 LSTM: each rank reads 3 of the 6 columns of the stream and carries its
    own part of the state; the held-out stream (one column) is evaluated by rank 0."""
    code, _, err = _mpi(_char_args(corpora[1], tmp_path / "k2"))
    assert code == 0, err
    _assert_close(_params(tmp_path / "k2"), _params(char_serial), 1e-10)
    ev2 = [r for r in _rows(tmp_path / "k2") if r["kind"] == "eval"]
    ev1 = [r for r in _rows(char_serial) if r["kind"] == "eval"]
    assert [r["valid_loss"] for r in ev2] == pytest.approx(
        [r["valid_loss"] for r in ev1], rel=1e-10
    )


def test_time_budget_spent_on_one_rank_stops_both_then_resumes_in_one_process(
    corpora, char_serial, tmp_path
):
    """Only rank 0 has a time budget (mpirun's MPMD form gives the ranks different flags): it is
    spent after the first step, and rank 1, which would train for 1000 epochs, stops with it. The
    checkpoint holds both ranks' columns of the carried state; one process resumes it and ends
    where an uninterrupted run ends."""
    out = tmp_path / "k2"
    base = _char_args(corpora[1], out, **{"--epochs": 1000})
    cmd = [
        *_mpirun(),
        "-n",
        "1",
        *_rank_cmd([*base, "--time-budget", "1e-9"]),
        ":",
        "-n",
        "1",
        *_rank_cmd(base),
    ]
    r = subprocess.run(cmd, env=_mpi_env(), cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    pos = _meta(out)["position"]
    assert (pos["epoch"], pos["batch"], pos["step"]) == (0, 1, 1)
    with np.load(out / "checkpoint.npz") as z:
        assert z["carry/0"].shape[1] == 6  # (layers, all 6 columns, hidden)
    assert _rows(out)[-1].get("partial_epoch") is True
    code, _, err = _run(
        [
            "train",
            "lm",
            "--out",
            out,
            "--resume",
            "--epochs",
            2,
            "--time-budget",
            1000,
            "--no-progress",
            "--samples",
            0,
        ]
    )
    assert code == 0, err
    _assert_close(_params(out), _params(char_serial), 1e-10)


def test_sigterm_to_one_rank_saves_for_both_and_sigkill_ends_the_job(corpora, tmp_path, no_numba):
    """A SIGTERM to rank 1 alone: both ranks stop after the same step and rank 0 saves the
    position (exit status 143). The run resumes under mpirun; then rank 1 is killed (SIGKILL):
    Open MPI ends rank 0 too, within seconds, and the last checkpoint is intact and resumes in one
    process."""
    if not Path("/proc/self/environ").exists():
        pytest.skip("finding a rank's process needs Linux's /proc")
    out = tmp_path / "k2"
    ckpt = out / "checkpoint.npz"
    args = _char_args(
        corpora[1], out, **{"--epochs": 100000, "--dtype": "float32", "--cell": "lstm"}
    )
    tag = uuid.uuid4().hex
    # 1. SIGTERM to rank 1 after the first epoch's checkpoint
    p = subprocess.Popen(
        [*_mpirun(), "-n", "2", *_rank_cmd(args)],
        env=_mpi_env(tag),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(ckpt.exists, p)
        os.kill(_rank_pid(tag, 1), signal.SIGTERM)
        _, err = p.communicate(timeout=60)
    finally:
        p.kill()
    assert p.returncode != 0 and err.count("terminated; the position is saved") == 1, err
    pos = _meta(out)["position"]
    assert pos["step"] > 0
    # 2. resume with two ranks, then SIGKILL rank 1 once it has stepped past the saved position
    p = subprocess.Popen(
        [*_mpirun(), "-n", "2", *_rank_cmd([*args, "--resume"])],
        env=_mpi_env(tag),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        n0 = _n_lines(out)
        _wait_for(lambda: _n_lines(out) > n0 + 1, p)
        before = ckpt.read_bytes()
        os.kill(_rank_pid(tag, 1), signal.SIGKILL)
        t0 = time.monotonic()
        _, err = p.communicate(timeout=60)
        stopped_in = time.monotonic() - t0
    finally:
        p.kill()
    assert p.returncode != 0 and stopped_in < 60, err
    after = _meta(out)["position"]  # loads: intact (the same, or one saved at an epoch's end)
    assert after["step"] >= pos["step"] and (ckpt.read_bytes() == before or after["batch"] == 0)
    code, _, err = _run(
        [
            "train",
            "lm",
            "--out",
            out,
            "--resume",
            "--epochs",
            after["epoch"] + 1,
            "--no-progress",
            "--samples",
            "0",
        ]
    )
    assert code == 0, err
    assert _meta(out)["position"]["epoch"] == after["epoch"] + 1
