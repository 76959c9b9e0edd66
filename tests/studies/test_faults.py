"""Faults on the way out: an unwritable or full results directory, a truncated checkpoint."""

import logging
from collections import namedtuple
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

from metapbt import _atomic
from metapbt.errors import ConfigError
from metapbt.runs import batch as engine_batch
from metapbt.runs.checkpoint import Checkpoint
from metapbt.studies import runner
from metapbt.studies.config import load_study

from ..outputs import write_finished

TINY = """
name = "tiny"
methods = ["random"]
seeds = 2
results = "{results}"
[protocol]
population = 2
budget = 2000
interval = 2000
[[tasks]]
env = "cart_pole"
contexts = ["earth"]
"""


def _study(tmp_path, results="results/tiny"):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY.format(results=results))
    return load_study(path)


def _recording(calls):
    """A stand-in for run_batch: records (run dir, resume) and writes a summary."""

    def fake(jobs, on_round=None, raise_errors=False):
        results = []
        for job in jobs:
            calls.append((job.out.name, job.resume))
            results.append(write_finished(job.out, job.config, [1.0]))
        return results

    return fake


def test_a_results_directory_that_cannot_be_written_is_named_before_any_training(
    tmp_path, monkeypatch
):
    (tmp_path / "file").write_text("not a directory")
    study = _study(tmp_path, results="file/results")
    calls = []
    monkeypatch.setattr(engine_batch, "run_batch", _recording(calls))
    with pytest.raises(ConfigError, match=r"cannot write to .*file/results"):
        runner.run_study(study)
    assert calls == []


def test_a_full_disk_is_named_before_any_training(tmp_path, monkeypatch):
    study = _study(tmp_path)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(_atomic.shutil, "disk_usage", lambda path: usage(10**9, 10**9, 5 * 2**20))
    calls = []
    monkeypatch.setattr(engine_batch, "run_batch", _recording(calls))
    with pytest.raises(ConfigError, match=r"results/tiny has 5 MiB free"):
        runner.run_study(study)
    assert calls == []


def test_a_truncated_checkpoint_is_set_aside_and_only_its_cell_restarts(
    tmp_path, monkeypatch, caplog
):
    study = _study(tmp_path)
    broken, other = (runner.cell_dir(study, c) for c in study.cells)
    state = {"w": jnp.arange(1000.0)}
    for folder in (broken, other):
        Checkpoint({}, state, jax.random.PRNGKey(0), {}, ({"step": 1, "best": 0},)).save(
            folder / "checkpoint.msgpack"
        )
        (folder / "history.parquet").write_bytes(b"history so far")
    data = (broken / "checkpoint.msgpack").read_bytes()
    (broken / "checkpoint.msgpack").write_bytes(data[: len(data) // 2])  # a kill mid-write
    kept = {p.name: p.read_bytes() for p in other.iterdir()}
    assert Checkpoint.finished_rounds(broken / "checkpoint.msgpack") == -1

    calls = []
    monkeypatch.setattr(engine_batch, "run_batch", _recording(calls))
    with caplog.at_level(logging.WARNING):
        runner.run_study(study, batch=1)
    assert (broken.name, False) in calls  # from scratch
    assert (other.name, True) in calls  # resumed as before
    assert (broken / "checkpoint.msgpack.corrupt").read_bytes() == data[: len(data) // 2]
    assert "unreadable" in caplog.text and broken.name in caplog.text
    for name, content in kept.items():  # the other cell's files are untouched
        if name != "summary.json":
            assert (other / name).read_bytes() == content
    assert sorted(p.name for p in Path(broken).iterdir()) == sorted(
        ["cell.json", "checkpoint.msgpack.corrupt", "history.parquet", "summary.json"]
    )
