"""Claims: one holder per cell, stale claims taken over, two runners split a study."""

import json
import os
import subprocess
import sys
import time

import pandas as pd
import pytest

from metapbt.runs import batch as engine_batch
from metapbt.studies import claims, runner
from metapbt.studies.config import load_study


def test_a_claimed_cell_is_refused_to_another_runner_until_released(tmp_path):
    assert claims.acquire(tmp_path, "alice")
    assert claims.acquire(tmp_path, "alice")  # its own claim
    assert not claims.acquire(tmp_path, "bob")
    held = claims.holder(tmp_path)
    assert held.runner == "alice" and held.pid == os.getpid()
    claims.release(tmp_path, "bob")  # not bob's to release
    assert claims.holder(tmp_path).runner == "alice"
    claims.release(tmp_path, "alice")
    assert claims.holder(tmp_path) is None
    assert claims.acquire(tmp_path, "bob")


def test_a_claim_left_unrefreshed_is_taken_over_and_a_refreshed_one_is_not(tmp_path):
    assert claims.acquire(tmp_path, "alice")
    old = time.time() - 1000
    os.utime(tmp_path / claims.CLAIM, (old, old))
    assert claims.is_stale(tmp_path, stale_seconds=600)
    claims.refresh([tmp_path])
    assert not claims.acquire(tmp_path, "bob", stale_seconds=600)
    os.utime(tmp_path / claims.CLAIM, (old, old))
    assert claims.acquire(tmp_path, "bob", stale_seconds=600)
    assert claims.holder(tmp_path).runner == "bob"
    assert [p.name for p in tmp_path.iterdir()] == [claims.CLAIM]  # nothing left behind


def test_a_claim_of_a_dead_process_on_this_host_is_taken_over_at_once(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    claim = claims.Claim.mine("ghost")
    (tmp_path / claims.CLAIM).write_text(json.dumps({**claim.__dict__, "pid": dead.pid}))
    assert claims.acquire(tmp_path, "bob")
    assert claims.holder(tmp_path).runner == "bob"


def test_cells_held_by_another_runner_are_left_to_it(tmp_path, monkeypatch):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY.format(seeds=2, budget=2000))
    study = load_study(path)
    held = runner.cell_dir(study, study.cells[0])
    assert claims.acquire(held, "someone-else")
    ran = []

    def fake(jobs, on_round=None, raise_errors=False):
        ran.extend(job.out.name for job in jobs)
        return [RuntimeError("stop here")] * len(jobs)

    monkeypatch.setattr(engine_batch, "run_batch", fake)
    results = runner.run_study(study, batch=1)
    others = [c.id for c in study.cells[1:]]
    assert sorted(ran) == sorted(others)
    assert {r.id: r.state for r in results} == {
        study.cells[0].id: "claimed",
        **{cell_id: "failed" for cell_id in others},
    }
    assert "held by" in results[0].error
    assert claims.holder(held).runner == "someone-else"  # never touched
    assert claims.holder(runner.cell_dir(study, study.cells[1])) is None  # released


TINY = """
name = "tiny"
methods = ["random", "pb2-star"]
seeds = {seeds}
[protocol]
population = 2
budget = {budget}
interval = 2000
[[tasks]]
env = "cart_pole"
contexts = ["earth"]
"""


def _histories(study):
    out = {}
    for cell in study.cells:
        out[cell.id] = pd.read_parquet(runner.cell_dir(study, cell) / "history.parquet")
    return out


@pytest.mark.slow  # two study processes and a reference run: ~1 min (python -m pytest -m slow)
def test_two_runners_on_one_study_run_every_cell_once_with_one_runners_results(tmp_path):
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "tiny.toml").write_text(TINY.format(seeds=2, budget=4000))
    command = [sys.executable, "-m", "metapbt", "study", "run", "--batch", "1", "--no-watchdog"]
    procs = [
        subprocess.Popen(
            [*command, str(tmp_path / "two" / "tiny.toml")],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "COLUMNS": "200"},
        )
        for _ in range(2)
    ]
    one = load_study(tmp_path / "one" / "tiny.toml")
    runner.run_study(one, batch=1)  # meanwhile: the same study with one runner
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    two = load_study(tmp_path / "two" / "tiny.toml")
    ran = [
        [c.id for c in two.cells if f"done   {c.id}" in out or f"done {c.id}" in out]
        for out in outputs
    ]
    assert sorted(ran[0] + ran[1]) == sorted(c.id for c in two.cells)  # each cell once
    assert ran[0] and ran[1], outputs  # and both runners worked
    assert set(runner.states(two).values()) == {"done"}
    got, want = _histories(two), _histories(one)
    for cell_id, frame in want.items():
        pd.testing.assert_frame_equal(got[cell_id], frame)
