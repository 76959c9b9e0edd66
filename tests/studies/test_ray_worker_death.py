"""A Ray worker killed in the middle of a study cell (slow job): Ray runs the batch again, the
new worker takes over the dead one's claims, resumes the cells from their checkpoints, and the
study ends with the results of a run without the kill."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from metapbt.studies import claims, runner
from metapbt.studies.config import load_study
from tests.outputs import run_outputs

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow

STUDY = """
name = "dying"
methods = ["pbt"]
seeds = 2
[protocol]
preset = "fast"
population = 2
budget = 24000
interval = 2000
[[tasks]]
env = "cart_pole"
contexts = ["earth"]
"""


def _kill_a_worker_mid_cell(results: Path, killed: list[int], stop: threading.Event) -> None:
    """Once a cell has a checkpoint and is still claimed, SIGKILL the claim's process."""
    while not stop.is_set():
        for folder in sorted(results.glob("*")):
            holder = claims.holder(folder)
            mid_cell = (folder / "checkpoint.msgpack").exists() and not (
                folder / "summary.json"
            ).exists()
            if holder is not None and mid_cell and holder.pid != os.getpid():
                os.kill(holder.pid, signal.SIGKILL)
                killed.append(holder.pid)
                return
        time.sleep(0.2)


def test_a_killed_ray_worker_is_retried_and_the_study_ends_as_without_the_kill(tmp_path):
    for name in ("calm", "dying"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "s.toml").write_text(STUDY)
    calm = load_study(tmp_path / "calm" / "s.toml")
    assert {r.state for r in runner.run_study(calm, watchdog=None)} == {"done"}

    study = load_study(tmp_path / "dying" / "s.toml")
    killed: list[int] = []
    stop = threading.Event()
    watcher = threading.Thread(
        target=_kill_a_worker_mid_cell, args=(study.results_dir, killed, stop), daemon=True
    )
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        watcher.start()
        results = runner.run_study(study, ray="auto")
    finally:
        stop.set()
        ray.shutdown()
    assert killed, "no worker was killed mid-cell"
    assert {r.state for r in results} == {"done"}
    assert set(runner.states(study).values()) == {"done"}
    ours, theirs = run_outputs(calm.results_dir), run_outputs(study.results_dir)
    assert ours.keys() == theirs.keys() and len(ours) == 2
    for cell in ours:
        assert ours[cell][0] == theirs[cell][0]
        pd.testing.assert_frame_equal(ours[cell][1], theirs[cell][1])
