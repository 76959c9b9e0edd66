"""Issue 43's Ray clone race: run the Ray adapter's test experiment again and again.

Usage::

    python3 tools/ray_clone_race.py RUNS reuse|fresh synch|async    # SLOW=3: seconds per sync

The experiment of ``tests/integrations/test_ray_tune.py`` (4 trials, 9 iterations, PB2* every 3)
with a driver slowed by ``$SLOW`` seconds at every sync point (a loaded machine's GP fit): the
test's own trainable, imported from it, given an events file, where it appends its events
(start, restore with the donor and iteration, report, return) as JSON lines. A run is flagged
when the population was told no reward for a member (a trial that stopped reporting) or a
trial's Ray iteration differs from its own count; a flagged run prints its history, reports and
events. 2026-12-07: 83 runs (67 reusing actors, 4 with fresh actors, 12 asynchronous; 14 of
them beside a study, 8 of those with three busy-loop processes), none flagged; the race was
seen twice in the default test job beside other work (the second time: the clone's first
report after the restore continued from its donor's state at the sync point with its new
configuration, then the trial ended without error and reported nothing more).
"""

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import ray
from ray import tune

from metapbt.integrations.ray_tune import MetaPB2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: its tests package
from tests.integrations.test_ray_tune import SPACE, trainable


class Reports(tune.Callback):
    """(trial, Ray iteration, own count) of every result the driver received."""

    def __init__(self):
        self.rows = []

    def on_trial_result(self, iteration, trials, trial, result, **info):  # noqa: D102
        self.rows.append((trial.trial_id, result["training_iteration"], result["it"]))


class SlowMetaPB2(MetaPB2):
    """The driver busy at every sync point (a loaded machine's GP fit)."""

    def _quantiles(self):
        time.sleep(float(os.environ.get("SLOW", "3")))
        return super()._quantiles()


def once(root, k, reuse, synch):
    """One experiment: (members told no reward, reports, mismatches, history, event file)."""
    logf = f"{root}/events{k}.jsonl"
    sched = SlowMetaPB2(
        "pb2-star", SPACE, metric="score", mode="max", perturbation_interval=3, synch=synch
    )
    rep = Reports()
    tune.Tuner(
        trainable,
        param_space={"events": logf},
        tune_config=tune.TuneConfig(scheduler=sched, num_samples=4, reuse_actors=reuse),
        run_config=tune.RunConfig(
            storage_path=f"{root}/r", name=f"exp{k}", verbose=0, callbacks=[rep]
        ),
    ).fit()
    hist = sched.population.history.to_frame()
    bad = hist[hist.reward.isna()]
    per = {}
    for t, i, it in rep.rows:
        per.setdefault(t, []).append((i, it))
    mism = {t: v for t, v in per.items() if any(i != it for i, it in v)}
    return len(bad), per, mism, hist, logf


if __name__ == "__main__":
    n, reuse, synch = int(sys.argv[1]), sys.argv[2] == "reuse", sys.argv[3] == "synch"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    root = tempfile.mkdtemp(prefix="race")
    for k in range(n):
        nbad, per, mism, hist, logf = once(root, k, reuse, synch)
        print(f"run {k}: NaN rows {nbad}; iteration!=state mismatches {len(mism)}", flush=True)
        if nbad or mism:
            print(hist.to_string())
            print(json.dumps(per))
            print(Path(logf).read_text())
