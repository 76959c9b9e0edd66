import logging

import numpy as np
import pandas as pd
import pytest
from scipy.stats import friedmanchisquare

from metapbt.analysis import compare
from metapbt.errors import ConfigError

EPS = 1e-8

# Seed-averaged scores, by hand: {(task, step): {method: score}}.
SCORES = {
    ("A", 1): {"m1": 0.0, "m2": 10.0, "m3": 5.0},
    ("A", 2): {"m1": 4.0, "m2": 4.0, "m3": 2.0},  # m1 and m2 tie for first
    ("B", 1): {"m1": -3.0, "m2": -1.0, "m3": -2.0},
    ("B", 2): {"m1": 7.0, "m2": 7.0, "m3": 7.0},  # all tie
    ("C", 1): {"m1": 1.0, "m2": 2.0},  # m3 missing: C must be dropped
    ("C", 2): {"m1": 1.0, "m2": 2.0},
}


def results_from(scores, spread=1.0):
    """Two seeds at score - spread and score + spread, so the seed mean is the score."""
    rows = [
        (task, method, seed, step, value + (2 * seed - 1) * spread)
        for (task, step), by_method in scores.items()
        for method, value in by_method.items()
        for seed in (0, 1)
    ]
    return pd.DataFrame(rows, columns=["task", "method", "seed", "step", "best"])


def lookup(long, column):
    return {(r.task, r.method, r.step): getattr(r, column) for r in long.itertuples()}


@pytest.fixture
def avg():
    return compare.seed_average(results_from(SCORES))


def test_seed_average_skips_nan_seeds():
    results = pd.DataFrame(
        {
            "task": ["t"] * 6,
            "method": ["m"] * 6,
            "seed": [0, 1, 2, 3, 0, 1],
            "step": [1, 1, 1, 1, 2, 2],
            "best": [1.0, np.nan, 3.0, 8.0, np.nan, np.nan],
        }
    )
    out = compare.seed_average(results).set_index("step")
    assert out.loc[1, "score"] == pytest.approx(4.0)  # mean of 1, 3, 8 (median would be 3)
    assert out.loc[1, "sem"] == pytest.approx(np.std([1.0, 3.0, 8.0], ddof=1) / np.sqrt(3))
    assert out.loc[1, "n_seeds"] == 3
    assert np.isnan(out.loc[2, "score"]) and out.loc[2, "n_seeds"] == 0


def test_seed_average_rejects_duplicates_and_missing_columns():
    results = results_from({("A", 1): {"m1": 0.0}})
    with pytest.raises(ConfigError, match="more than one row"):
        compare.seed_average(pd.concat([results, results]))
    with pytest.raises(ConfigError, match="best"):
        compare.seed_average(results.drop(columns="best"))


def test_normalised_scores_by_hand_and_incomplete_task_dropped(avg, caplog):
    with caplog.at_level(logging.WARNING, logger="metapbt.analysis.compare"):
        norm = compare.normalised_scores(avg)
    assert "C" in caplog.text and "m3" in caplog.text
    assert set(norm["task"]) == {"A", "B"}
    expected = {
        ("A", "m1", 1): 0.0,
        ("A", "m2", 1): 10 / (10 + EPS),
        ("A", "m3", 1): 5 / (10 + EPS),
        ("A", "m1", 2): 2 / (2 + EPS),
        ("A", "m2", 2): 2 / (2 + EPS),
        ("A", "m3", 2): 0.0,
        ("B", "m1", 1): 0.0,
        ("B", "m2", 1): 2 / (2 + EPS),
        ("B", "m3", 1): 1 / (2 + EPS),
        ("B", "m1", 2): 0.0,
        ("B", "m2", 2): 0.0,
        ("B", "m3", 2): 0.0,
    }
    got = lookup(norm, "normalised")
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-12, abs=1e-15), key


def test_ranks_by_hand_with_ties(avg):
    expected = {
        ("A", "m1", 1): 3.0,
        ("A", "m2", 1): 1.0,
        ("A", "m3", 1): 2.0,
        ("A", "m1", 2): 1.5,
        ("A", "m2", 2): 1.5,
        ("A", "m3", 2): 3.0,
        ("B", "m1", 1): 3.0,
        ("B", "m2", 1): 1.0,
        ("B", "m3", 1): 2.0,
        ("B", "m1", 2): 2.0,
        ("B", "m2", 2): 2.0,
        ("B", "m3", 2): 2.0,
    }
    assert lookup(compare.ranks(avg), "rank") == expected


def test_average_ranks_by_hand(avg):
    ar = compare.average_ranks(compare.ranks(avg))
    assert ar.per_step.loc[1].to_dict() == {"m1": 3.0, "m2": 1.0, "m3": 2.0}
    assert ar.per_step.loc[2].to_dict() == {"m1": 1.75, "m2": 1.75, "m3": 2.5}
    assert ar.se.loc[2, "m3"] == pytest.approx(np.std([3.0, 2.0], ddof=1) / np.sqrt(2))
    assert ar.se.loc[1, "m1"] == 0.0
    assert ar.overall.to_dict() == {"m1": 2.375, "m2": 1.375, "m3": 2.25}
    assert ar.final.to_dict() == {"m1": 1.75, "m2": 1.75, "m3": 2.5}
    assert ar.order == ("m2", "m3", "m1")


def test_average_rank_ties_are_broken_by_the_final_rank():
    # x and y both average 1.5 over the run, but y is ahead at the last step.
    rank_df = pd.DataFrame(
        {
            "task": ["t"] * 4,
            "method": ["x", "y", "x", "y"],
            "step": [1, 1, 2, 2],
            "rank": [1.0, 2.0, 2.0, 1.0],
        }
    )
    ar = compare.average_ranks(rank_df)
    assert ar.overall["x"] == ar.overall["y"] == 1.5
    assert ar.order == ("y", "x")


def test_score_table_with_no_complete_task_raises():
    avg = compare.seed_average(results_from({("A", 1): {"m1": 0.0}, ("B", 1): {"m2": 1.0}}))
    with pytest.raises(ConfigError, match="nothing to compare"):
        compare.normalised_scores(avg)


def dominant_scores(n_tasks=6, steps=(1, 2), methods=("good", "ok", "meh"), seed=0):
    rng = np.random.default_rng(seed)
    scores = {}
    for t in range(n_tasks):
        for step in steps:
            others = rng.permutation(len(methods) - 1)  # random order below "good"
            scores[(f"task{t}", step)] = {
                methods[0]: 100.0 + t,
                **{m: float(o) + t for m, o in zip(methods[1:], others, strict=True)},
            }
    return scores


def test_critical_difference_with_a_dominant_method():
    avg = compare.seed_average(results_from(dominant_scores()))
    cd = compare.critical_difference(avg)
    assert cd.mean_ranks.index[0] == "good"
    assert cd.mean_ranks["good"] == 1.0
    assert cd.omnibus == "friedman" and cd.n_rows == 12
    # Demšar (2006): CD = q_0.05 * sqrt(k (k + 1) / (6 N)), q_0.05 = 2.343 for k = 3.
    assert cd.cd == pytest.approx(2.343 * np.sqrt(3 * 4 / (6 * 12)), abs=1e-3)
    table = compare.score_table(avg)
    assert cd.p_value == pytest.approx(friedmanchisquare(*table.to_numpy().T).pvalue)
    assert cd.significant
    ar = compare.average_ranks(compare.ranks(avg))
    assert cd.mean_ranks.to_dict() == pytest.approx(ar.overall.to_dict())
    differs = cd.differs()
    assert differs.loc["good", "ok"] == (abs(1.0 - cd.mean_ranks["ok"]) > cd.cd)
    assert differs.loc["good", "meh"] and not differs.loc["good", "good"]


def test_critical_difference_of_one_step():
    avg = compare.seed_average(results_from(dominant_scores()))
    cd = compare.critical_difference(avg, step=2)
    assert cd.n_rows == 6 and cd.mean_ranks["good"] == 1.0
    with pytest.raises(ConfigError, match="step 3"):
        compare.critical_difference(avg, step=3)


def test_critical_difference_with_two_methods_has_no_cd():
    avg = compare.seed_average(results_from(dominant_scores(methods=("good", "bad"))))
    cd = compare.critical_difference(avg)
    assert cd.omnibus == "wilcoxon" and cd.cd is None and cd.differs() is None
    assert cd.mean_ranks.to_dict() == {"good": 1.0, "bad": 2.0}


@pytest.mark.parametrize(
    ("scores", "match"),
    [
        (dominant_scores(methods=("only",)), "two methods"),
        (dominant_scores(n_tasks=2), "at least 5"),
    ],
)
def test_critical_difference_refuses_small_tables(scores, match):
    with pytest.raises(ConfigError, match=match):
        compare.critical_difference(compare.seed_average(results_from(scores)))


FINAL = {
    # step 1 is not the final step and must be ignored (r would win there)
    ("T1", 1): {"p": 0.0, "q": 0.0, "r": 1000.0},
    ("T1", 2): {"p": 11.0, "q": 1.0, "r": 5.0},  # p clearly best: 10 > 6
    ("T2", 2): {"p": 6.0, "q": 5.0, "r": 0.0},  # p best, overlaps q: 5 < 6
    ("T3", 2): {"p": 3.0, "q": 3.0, "r": 1.0},  # tie at the top: no mark
}


def test_final_table_means_and_best_marks():
    table = compare.final_table(results_from(FINAL)).set_index(["task", "method"])
    assert (table.loc[["T1", "T2", "T3"], "step"] == 2).all()
    assert table.loc[("T1", "p"), "mean"] == pytest.approx(11.0)
    assert table.loc[("T1", "p"), "sem"] == pytest.approx(1.0)  # seeds 10, 12
    assert table.loc[("T1", "p"), "n_seeds"] == 2
    best = table["best"][table["best"]].index.tolist()
    clear = table["clear_best"][table["clear_best"]].index.tolist()
    assert best == [("T1", "p"), ("T2", "p"), (compare.MEAN_ROW, "p")]
    assert clear == [("T1", "p"), (compare.MEAN_ROW, "p")]
    mean = table.loc[compare.MEAN_ROW]
    assert mean["mean"].to_dict() == pytest.approx({"p": 20 / 3, "q": 3.0, "r": 2.0})
    assert mean.loc["p", "sem"] == pytest.approx(np.sqrt(1 + 1 + 1) / 3)
    assert list(table.index.get_level_values("task").unique()) == ["T1", "T2", "T3", "mean"]


def test_final_table_missing_method_is_nan_and_left_out_of_the_mean(caplog):
    scores = {**FINAL, ("T4", 2): {"p": 50.0, "q": 0.0}}
    with caplog.at_level(logging.WARNING, logger="metapbt.analysis.compare"):
        table = compare.final_table(results_from(scores)).set_index(["task", "method"])
    assert "T4" in caplog.text
    assert np.isnan(table.loc[("T4", "r"), "mean"]) and table.loc[("T4", "r"), "n_seeds"] == 0
    assert table.loc[("T4", "p"), "best"]
    assert table.loc[(compare.MEAN_ROW, "p"), "mean"] == pytest.approx(20 / 3)
