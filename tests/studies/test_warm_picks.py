"""Where the explore step sends a clone: distances and faces from a hand-made history."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


@pytest.fixture
def picks(study_script):
    return study_script("warm_picks")


def _row(step, member, source, lr, lam, clip):
    return {"step": step, "member": member, "reward": 0.0, "clone_source": source,
            "lr": lr, "lambda": lam, "clip": clip}  # fmt: skip


def test_a_clone_is_measured_from_its_donors_config_to_the_one_it_trains_with_next(picks):
    history = pd.DataFrame(
        [
            # step 10: member 1 clones member 0; member 0 is kept
            _row(10, 0, -1, 1e-4, 0.9, 0.1),
            _row(10, 1, 0, 1e-3, 0.99, 0.5),
            # step 20: member 1 trains with lr 1e-3 (one decade up: 0.5 of the log range)
            _row(20, 0, -1, 1e-4, 0.9, 0.1),
            _row(20, 1, 0, 1e-3, 0.9, 0.3),
            # step 30 is the last: its clone has no next interval and is not counted
            _row(30, 0, -1, 1e-4, 0.9, 0.1),
            _row(30, 1, 0, 1e-3, 0.9, 0.3),
        ]
    )
    rows = picks.clone_rows(history)
    assert list(rows["round"]) == [1, 2]
    # round 1: the new config (1e-3, 0.9, 0.3) against the donor's (1e-4, 0.9, 0.1)
    assert rows["d_donor"].iloc[0] == pytest.approx(np.hypot(0.5, 0.5))
    assert rows["face"].iloc[0]  # lr 1e-3 and lambda 0.9 sit on faces
    # round 2: member 1 again clones member 0 and trains with (1e-3, 0.9, 0.3) at step 30
    assert rows["d_donor"].iloc[1] == pytest.approx(np.hypot(0.5, 0.5))


def test_a_clone_that_keeps_its_donors_config_is_at_distance_zero(picks):
    history = pd.DataFrame(
        [
            _row(10, 0, -1, 3e-4, 0.95, 0.2),
            _row(10, 1, 0, 1e-5, 0.9, 0.1),
            _row(20, 0, -1, 3e-4, 0.95, 0.2),
            _row(20, 1, -1, 3e-4, 0.95, 0.2),
        ]
    )
    rows = picks.clone_rows(history)
    assert rows["d_donor"].tolist() == [0.0] and not rows["face"].iloc[0]
