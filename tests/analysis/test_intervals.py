"""IQM, probability of improvement and stratified-bootstrap intervals against closed forms."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import mannwhitneyu

from metapbt.analysis import intervals as iv
from metapbt.errors import ConfigError


def test_iqm_is_the_mean_of_the_middle_half():
    scores = np.array([[0.0, 10.0], [1.0, 2.0], [3.0, 100.0], [4.0, -50.0]])  # 8 values
    middle = np.sort(scores.ravel())[2:6]  # drop the 2 lowest and 2 highest
    assert iv.iqm(scores) == pytest.approx(middle.mean())


def test_probability_of_improvement_small_case_by_hand():
    x = np.array([[1.0], [3.0]])
    y = np.array([[2.0], [3.0], [0.0]])
    # pairs: (1>2 no, 1>3 no, 1>0 yes) + (3>2 yes, 3=3 half, 3>0 yes) = 3.5 of 6
    assert iv.probability_of_improvement(x, y) == pytest.approx(3.5 / 6)
    assert iv.probability_of_improvement(y, x) == pytest.approx(2.5 / 6)
    assert iv.probability_of_improvement(x, x) == 0.5


def test_probability_of_improvement_is_mann_whitney_averaged_over_tasks():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 5, (6, 3)).astype(float)  # integer scores: many ties
    y = rng.integers(0, 5, (4, 3)).astype(float)
    by_scipy = [
        mannwhitneyu(x[:, t], y[:, t], alternative="greater").statistic / 24 for t in range(3)
    ]
    assert iv.probability_of_improvement(x, y) == pytest.approx(np.mean(by_scipy))


def test_bootstrap_interval_brackets_the_estimate_and_narrows_with_runs():
    rng = np.random.default_rng(1)
    few = rng.uniform(size=(5, 10))
    many = rng.uniform(size=(80, 10))
    a = iv.bootstrap_interval(few, "iqm", reps=500)
    b = iv.bootstrap_interval(many, "iqm", reps=500)
    assert a.low <= a.value <= a.high and b.low <= b.value <= b.high
    assert b.high - b.low < a.high - a.low
    assert iv.bootstrap_interval(few, "iqm", reps=500) == a  # seeded
    # A constant within each task: every replicate is the same, the interval is a point.
    flat = np.tile(np.arange(4.0), (5, 1))
    c = iv.bootstrap_interval(flat, "mean", reps=100)
    assert c.low == c.high == c.value == 1.5


def test_bootstrap_is_stratified_by_task():
    # Every run (row) averages 5.5, so resampling whole runs would always give 5.5; resampling
    # each task's runs independently (stratified) can pair 0 with 10 (5.0) or 1 with 11 (6.0).
    scores = np.array([[0.0, 11.0], [1.0, 10.0]])
    interval = iv.bootstrap_interval(scores, "mean", reps=400)
    assert interval.low == 5.0 and interval.high == 6.0 and interval.value == 5.5
    # Task 0 holds only 0s and task 1 only 1s: every stratified replicate averages 1/2.
    flat = np.array([[0.0, 1.0]] * 4)
    assert iv.bootstrap_interval(flat, "mean", reps=200) == iv.Interval(0.5, 0.5, 0.5)
    p = iv.improvement_interval(np.ones((3, 2)), np.zeros((4, 2)), reps=100)
    assert p == iv.Interval(1.0, 1.0, 1.0)


def test_refuses_bad_matrices():
    with pytest.raises(ConfigError, match="runs, tasks"):
        iv.bootstrap_interval(np.ones(3))
    with pytest.raises(ConfigError, match="NaN"):
        iv.bootstrap_interval(np.array([[np.nan, 1.0]]))
    with pytest.raises(ConfigError, match="same tasks"):
        iv.probability_of_improvement(np.ones((2, 2)), np.ones((2, 3)))


def _results(values):
    rows = []
    for (method, task, seed), best in values.items():
        rows.append({"task": task, "method": method, "seed": seed, "step": 10, "best": best})
        rows.append({"task": task, "method": method, "seed": seed, "step": 5, "best": 0.0})
    return pd.DataFrame(rows)


def test_final_scores_normalise_each_task_over_every_run():
    results = _results(
        {
            ("a", "t1", 0): 10.0,
            ("a", "t1", 1): 20.0,
            ("b", "t1", 0): 0.0,
            ("b", "t1", 1): 5.0,
            ("a", "t2", 0): -1.0,
            ("a", "t2", 1): np.nan,
            ("b", "t2", 0): -3.0,
            ("b", "t2", 1): -2.0,
            ("a", "t3", 0): 1.0,  # t3 lacks method b: dropped
            ("a", "t1", 2): 99.0,  # seed 2 only for a, on one task: left out, never scored
        }
    )
    scores = iv.final_scores(results)
    np.testing.assert_allclose(scores["a"], [[0.5, 1.0], [1.0, 0.0]], atol=1e-6)
    np.testing.assert_allclose(scores["b"], [[0.0, 0.0], [0.25, 0.5]], atol=1e-6)
    table = iv.interval_table(scores, reps=100)
    assert list(table["method"]) == ["a", "b"]
    pairs = iv.improvement_table(scores, reps=100)
    ab = pairs[(pairs["x"] == "a") & (pairs["y"] == "b")]["p"].item()
    ba = pairs[(pairs["x"] == "b") & (pairs["y"] == "a")]["p"].item()
    assert ab + ba == pytest.approx(1.0)


def test_anytime_scores_separate_runs_whose_final_returns_tie():
    rows = []
    curves = {"early": [500.0, 500.0, 500.0], "late": [100.0, 300.0, 500.0]}
    for method, curve in curves.items():
        for seed, shift in enumerate((0.0, -60.0)):
            for step, best in zip((1, 2, 3), curve, strict=True):
                value = best + shift if step < 3 else best
                rows.append(
                    {"task": "t", "method": method, "seed": seed, "step": step, "best": value}
                )
    # A run still going (one sync point of three) is not scored; a diverged run counts 0.
    rows.append({"task": "t", "method": "early", "seed": 2, "step": 1, "best": 9e9})
    results = pd.DataFrame(rows)
    final = iv.final_scores(results)
    np.testing.assert_allclose(final["early"], final["late"])  # every run ends at 500
    anytime = iv.anytime_scores(results)
    # means: early 500, 460; late 300, 260 -> (m - 260) / 240
    np.testing.assert_allclose(anytime["early"], [[1.0], [200 / 240]], atol=1e-6)
    np.testing.assert_allclose(anytime["late"], [[40 / 240], [0.0]], atol=1e-6)
    results.loc[(results["method"] == "late") & (results["seed"] == 0), "best"] = np.nan
    assert iv.anytime_scores(results)["late"][0, 0] == 0.0


def test_tasks_with_different_budgets_all_count():
    # t1 has 3 sync points (classic control), t2 has 2 (LunarLander under its own protocol)
    rows = []
    for task, steps in (("t1", (10, 20, 30)), ("t2", (13, 26))):
        for method, level in (("a", 1.0), ("b", 0.0)):
            for seed in (0, 1):
                for step in steps:
                    best = level + seed + step / 100
                    rows.append(
                        {"task": task, "method": method, "seed": seed, "step": step, "best": best}
                    )
    results = pd.DataFrame(rows)
    final = iv.final_scores(results)
    assert final["a"].shape == (2, 2)  # both tasks, each at its own last step
    # t2 at step 26: a 1.26, 2.26; b 0.26, 1.26 -> (x - 0.26) / 2
    np.testing.assert_allclose(final["a"][:, 1], [0.5, 1.0], atol=1e-6)
    assert iv.anytime_scores(results)["b"].shape == (2, 2)
    with pytest.raises(ConfigError, match="at step 30"):  # an explicit step is one step
        iv.final_scores(results[results["task"] == "t2"], step=30)
