"""The stall watchdog: its clock by hand, injected hangs, deaths and slow rounds, real cells."""

import json
import shutil
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from metapbt.studies import runner
from metapbt.studies.config import load_study
from metapbt.studies.watchdog import StallClock, StallError, Watchdog, supervise, watched_pool

from .stall_targets import cells_hang, die, fail, hang_after_first_round, hang_always, steady

FAST = Watchdog(
    factor=4, floor_seconds=1.0, first_seconds=60.0, poll_seconds=0.05, native_stacks=False
)


def test_the_clock_allows_a_first_round_then_a_multiple_of_the_slowest_round():
    clock = StallClock(Watchdog(factor=10, floor_seconds=5, first_seconds=100), now=0.0)
    assert clock.deadline == 100  # start-up and compilation
    clock.round(1, now=20.0)  # no round measured yet: the first one stands in (20 s)
    assert clock.deadline == 20 + 200
    clock.round(1, now=20.5)  # another run's report of the same round
    assert clock.deadline == 20.5 + 200
    clock.round(2, now=23.0)  # round 2 took 3 s (from round 1's first report)
    assert clock.deadline == 23 + 30
    clock.round(3, now=24.0)  # a faster round does not shrink the allowance
    assert clock.deadline == 24 + 30
    clock.round(4, now=24.2)
    clock.round(5, now=24.3)
    assert clock.allowance == 30
    clock.start(now=30.0)  # a new program: compilation allowance again
    assert clock.deadline == 130
    tight = StallClock(Watchdog(factor=2, floor_seconds=50, first_seconds=9), now=0.0)
    tight.round(1, now=1.0)
    tight.round(2, now=2.0)
    assert tight.allowance == 50  # the floor


def test_settings_are_checked():
    with pytest.raises(ValueError):
        Watchdog(factor=0.5)
    with pytest.raises(ValueError):
        Watchdog(restarts=-1)


def test_a_hang_is_detected_its_stacks_dumped_and_the_work_restarted(tmp_path):
    seen = []
    result = supervise(
        hang_after_first_round,
        (tmp_path / "attempts",),
        replace(FAST, native_stacks=True),
        dumps=[tmp_path / "a", tmp_path / "b"],
        on_progress=lambda n, payload: seen.append(n),
    )
    assert result == 2  # the second attempt finished
    assert seen == [1, 1, 2]
    for folder in ("a", "b"):
        stacks = (tmp_path / folder / "stall-1.txt").read_text()
        assert "Current thread" in stacks and "in hang_after_first_round" in stacks
        if shutil.which("gdb"):
            assert "native stacks (gdb)" in stacks
    assert not (tmp_path / "a" / "stall-2.txt").exists()


def test_repeated_hangs_end_in_a_stall_error_not_a_stuck_caller(tmp_path):
    start = time.monotonic()
    with pytest.raises(StallError, match="3 attempts: no progress"):
        supervise(hang_always, (), FAST, dumps=[tmp_path], label="the batch")
    assert time.monotonic() - start < 45
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"stall-{k}.txt" for k in (1, 2, 3)]


def test_a_dead_child_is_restarted_and_reported(tmp_path):
    with pytest.raises(StallError, match=r"died \(exit code 3\)"):
        supervise(die, (), FAST, dumps=[tmp_path])


def test_an_error_of_the_work_is_raised_not_retried(tmp_path):
    with pytest.raises(Exception, match="ArithmeticError: the work itself failed"):
        supervise(fail, (), FAST, dumps=[tmp_path])


def test_a_genuinely_slow_round_is_not_killed(tmp_path):
    # rounds of 0.3 s, then one of 1.6 s: within 4 x the slowest (and above the 1 s floor)
    seconds = [0.3, 0.3, 0.3, 1.1, 1.6]
    result = supervise(steady, (5, seconds), FAST, dumps=[tmp_path])
    assert result == "finished"
    assert not list(tmp_path.iterdir())


# --- real cells --------------------------------------------------------------------------

TINY = """
name = "tiny"
methods = ["pb2-star"]
seeds = 2
[protocol]
population = 2
budget = 4000
interval = 2000
[[tasks]]
env = "cart_pole"
contexts = ["earth"]
"""


def cells_hang_once(cells, outs, cache, tensorboard, progress):
    """The runner's child work, stopping for good after round 1 of the first attempt."""
    marker = Path(outs[0]).parent / "attempted"
    first = not marker.exists()
    marker.touch()

    def report(kind, number=0, payload=None):
        progress(kind, number, payload)
        if first and kind == "round" and number == 1:
            time.sleep(1e6)

    return runner.run_cells(
        cells,
        outs,
        cache,
        on_round=lambda cell_id, r: report("round", r.round, (cell_id, r)),
        on_start=lambda: report("start"),
        tensorboard=tensorboard,
    )


def _histories(study):
    return {
        c.id: pd.read_parquet(runner.cell_dir(study, c) / "history.parquet") for c in study.cells
    }


def test_a_stalled_batch_restarts_from_its_checkpoints_to_identical_histories(
    tmp_path, monkeypatch
):
    (tmp_path / "alone").mkdir()
    (tmp_path / "watched").mkdir()
    for folder in ("alone", "watched"):
        (tmp_path / folder / "tiny.toml").write_text(TINY)
    alone = load_study(tmp_path / "alone" / "tiny.toml")
    runner.run_study(alone)

    watched = load_study(tmp_path / "watched" / "tiny.toml")
    monkeypatch.setattr(runner, "cells_work", cells_hang_once)
    rounds = []
    watchdog = replace(FAST, factor=5, floor_seconds=3.0, first_seconds=240.0)
    results = runner.run_study(
        watched, watchdog=watchdog, on_round=lambda cell, r: rounds.append((cell, r.round))
    )
    assert [r.state for r in results] == ["done", "done"]
    for cell in watched.cells:
        folder = runner.cell_dir(watched, cell)
        assert "run_batch" in (folder / "stall-1.txt").read_text()  # where it stopped
        assert not (folder / "claim.json").exists()
    # both runs reported round 1, then (after the restart) round 2 only
    assert sorted(rounds) == sorted((c.id, r) for c in watched.cells for r in (1, 2))
    got, want = _histories(watched), _histories(alone)
    for cell_id in want:
        pd.testing.assert_frame_equal(got[cell_id], want[cell_id])


@pytest.mark.slow  # 15 s; restart and stall error run in the default job
def test_a_batch_that_keeps_stalling_is_recorded_as_failed_and_the_study_goes_on(
    tmp_path, monkeypatch
):
    (tmp_path / "tiny.toml").write_text(TINY)
    study = load_study(tmp_path / "tiny.toml")
    monkeypatch.setattr(runner, "cells_work", cells_hang)
    watchdog = replace(FAST, restarts=1)
    results = runner.run_study(study, watchdog=watchdog, batch=1)
    assert [r.state for r in results] == ["failed", "failed"]  # both batches were tried
    for cell in study.cells:
        folder = runner.cell_dir(study, cell)
        error = json.loads((folder / "error.json").read_text())
        assert "StallError" in error["error"] and "2 attempts" in error["error"]
        assert (folder / "stall-2.txt").exists()
    assert set(runner.states(study).values()) == {"failed"}


def test_a_failing_caller_stops_the_pools_children_and_later_work_is_watched_as_usual(tmp_path):
    patient = replace(FAST, floor_seconds=600.0)
    with pytest.raises(RuntimeError, match="caller failed"), watched_pool(1) as pool:
        running = pool.submit(supervise, hang_always, (), patient, [tmp_path / "a"])
        time.sleep(1.0)
        raise RuntimeError("caller failed")
    assert isinstance(running.exception(timeout=0), KeyboardInterrupt)  # it stopped its child
    assert supervise(steady, (1, 0.1), FAST, dumps=[tmp_path / "b"]) == "finished"
