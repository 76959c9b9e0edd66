import json

import numpy as np
import pytest

from metapbt.errors import ConfigError
from metapbt.population.decisions import Clone
from metapbt.population.population import Population
from metapbt.population.portfolio import (
    Candidate,
    Portfolio,
    ScoreMatrix,
    greedy_select,
    normalise_columns,
    select,
)
from metapbt.population.space import Float, SearchSpace, default_space


def _top_k(normalised, k):
    """The reference code's effective rule (a test oracle): top k by total normalised score."""
    return list(np.argsort(-normalised.sum(axis=1), kind="stable")[:k])


def test_greedy_covers_tasks_where_top_k_does_not():
    # A good on tasks 1-2, B a near copy of A, C the only one good on task 3
    p = np.array([[1.0, 0.85, 0.0], [0.9, 0.9, 0.0], [0.0, 0.0, 1.0]])
    assert greedy_select(p, 2) == [0, 2]
    assert _top_k(p, 2) == [0, 1]


def test_greedy_on_a_larger_hand_made_matrix():
    p = np.array(
        [
            [0.9, 0.9, 0.0, 0.0],  # total 1.8: greedy's first pick
            [0.8, 0.8, 0.1, 0.0],  # total 1.7: top-k's second, adds 0.1 coverage
            [0.0, 0.0, 0.7, 0.6],  # total 1.3: greedy's second (adds 1.3)
            [0.0, 0.0, 0.0, 1.0],  # greedy's third: adds 0.4 (vs row 1's 0.1)
        ]
    )
    assert greedy_select(p, 3) == [0, 2, 3]
    assert _top_k(p, 3) == [0, 1, 2]
    # coverage objective by hand: 0.9 + 0.9 + 0.7 + 1.0
    chosen = greedy_select(p, 3)
    assert p[chosen].max(axis=0).sum() == pytest.approx(3.5)


def test_greedy_ties_go_to_the_first_row_and_rejects_bad_sizes():
    p = np.array([[0.5, 0.5], [0.5, 0.5], [0.0, 0.0]])
    assert greedy_select(p, 2) == [0, 1]
    with pytest.raises(ConfigError, match="between 1 and 3"):
        greedy_select(p, 4)
    with pytest.raises(ConfigError):
        greedy_select(p, 0)


def test_normalise_columns_min_max_and_nan_as_worst():
    scores = np.array([[10.0, 0.0], [20.0, np.nan], [15.0, 4.0]])
    got = normalise_columns(scores)
    np.testing.assert_allclose(got[:, 0], [0.0, 1.0, 0.5], atol=1e-6)
    np.testing.assert_allclose(got[:, 1], [0.0, 0.0, 1.0], atol=1e-6)
    assert np.all(normalise_columns(np.full((2, 1), np.nan)) == 0)


def _matrix():
    tasks = ("env a", "env b", "env c")
    candidates = tuple(
        Candidate({"lr": lr, "lambda": 0.95, "clip": 0.2}, source)
        for lr, source in [(1e-4, "env a"), (2e-4, "env b"), (3e-4, "env c"), (5e-4, "env a")]
    )
    scores = np.array([[100.0, 0.0, 0.0], [0.0, 50.0, 10.0], [0.0, 10.0, 50.0], [90.0, 20.0, 20.0]])
    return ScoreMatrix(candidates, tasks, scores)


def test_leave_target_out_drops_its_column_and_its_candidates():
    left = _matrix().leave_out("env a")
    assert left.tasks == ("env b", "env c")
    assert [c.source for c in left.candidates] == ["env b", "env c"]
    np.testing.assert_array_equal(left.scores, [[50.0, 10.0], [10.0, 50.0]])
    with pytest.raises(ConfigError, match="unknown target task"):
        _matrix().leave_out("env")  # exact ids only, no substring matches


def test_select_with_exclusion_never_picks_the_targets_candidates():
    portfolio = select(default_space(), _matrix(), size=2, exclude="env a")
    assert [c.source for c in portfolio.entries] == ["env b", "env c"]
    assert portfolio.target == "env a"
    assert "env a" not in portfolio.matrix.tasks
    full = select(default_space(), _matrix(), size=2)
    assert full.entries[0].config["lr"] == 5e-4  # the all-round candidate comes first


def test_portfolio_file_round_trip_is_readable_json(tmp_path):
    portfolio = select(default_space(), _matrix(), size=3, exclude="env b")
    path = portfolio.save(tmp_path / "pf.json")
    data = json.loads(path.read_text())
    assert data["schema"] == "metapbt.portfolio/1"
    assert data["space"] == default_space().to_dict()
    assert data["tasks"] == ["env a", "env c"]
    assert data["target"] == "env b"
    assert [c["source"] for c in data["configs"]] == [c.source for c in portfolio.entries]
    assert len(data["matrix"]["normalised"]) == 3
    loaded = Portfolio.load(path)
    assert loaded.configs == portfolio.configs
    assert loaded.matrix.tasks == portfolio.matrix.tasks
    np.testing.assert_array_equal(loaded.matrix.scores, portfolio.matrix.scores)


def test_portfolio_space_must_match_the_runs(tmp_path):
    portfolio = Portfolio.load(select(default_space(), _matrix(), 2).save(tmp_path / "p.json"))
    portfolio.check_space(default_space())
    other = SearchSpace({"lr": Float(1e-5, 1e-2, log=True)})
    with pytest.raises(ConfigError, match="search space"):
        portfolio.check_space(other)


@pytest.mark.parametrize(
    "text, match",
    [
        ("{not json", "not valid JSON"),
        ('{"schema": "metapbt.history/1"}', "not a metapbt.portfolio/1"),
        ('{"schema": "metapbt.portfolio/1", "space": {}}', "malformed"),
    ],
)
def test_bad_portfolio_files_are_refused_clearly(tmp_path, text, match):
    path = tmp_path / "p.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        Portfolio.load(path)
    with pytest.raises(ConfigError, match="does not exist"):
        Portfolio.load(tmp_path / "missing.json")


def test_out_of_bounds_entries_are_refused(tmp_path):
    path = select(default_space(), _matrix(), 2).save(tmp_path / "p.json")
    data = json.loads(path.read_text())
    data["configs"][0]["lr"] = 5.0
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="malformed"):
        Portfolio.load(path)


def test_population_takes_entries_in_order_then_random_fill():
    portfolio = select(default_space(), _matrix(), size=3)
    pop = Population(default_space(), 5, "pb2-star", seed=0, initializer=portfolio.initializer())
    configs = pop.ask()
    assert configs[:3] == portfolio.configs
    assert all(c not in portfolio.configs for c in configs[3:])
    assert configs[3] != configs[4]
    small = Population(default_space(), 2, "pb2-star", seed=0, initializer=portfolio.initializer())
    assert small.ask() == portfolio.configs[:2]


@pytest.mark.parametrize("method", ["pb2-star", "pbt", "pb2"])
def test_first_round_clones_never_exhaust_the_portfolio(method):
    portfolio = select(default_space(), _matrix(), size=4)
    pop = Population(default_space(), 4, method, seed=0, initializer=portfolio.initializer())
    decisions = pop.tell(step=1000, rewards=[1.0, 2.0, 3.0, 4.0])
    clones = [d for d in decisions if isinstance(d, Clone)]
    assert clones
    for clone in clones:
        default_space().validate(clone.config)
        if method == "pb2-star":  # no data yet: a random draw, not the next portfolio entry
            assert clone.config not in portfolio.configs
