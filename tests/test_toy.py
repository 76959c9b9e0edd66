import numpy as np
import pytest

from metapbt import Categorical, ConfigError, Float, SearchSpace
from metapbt.toy import MovingOptimum, run_toy


def test_staying_on_the_optimum_scores_one_and_far_away_almost_nothing():
    problem = MovingOptimum(start=(0.5,), end=(0.5,))
    assert problem.gain(np.array([0.5]), 0, problem.budget) == pytest.approx(1.0)
    assert problem.gain(np.array([0.5 + 5 * problem.width]), 0, problem.budget) < 1e-5


def test_clone_copies_the_score():
    result = run_toy("pbt", seed=0)
    frame = result.population.history.to_frame()
    assert len(result.steps) == 15 and (frame["clone_source"] >= 0).sum() == 15
    assert all(b2 >= b1 for b1, b2 in zip(result.best, result.best[1:], strict=False))


def test_pb2_star_beats_random_search_on_the_toy():
    # The core's learning test: a wrong GP, acquisition or bridge row loses this gap.
    seeds = range(4)
    pb2 = np.mean([run_toy("pb2-star", s).final for s in seeds])
    rnd = np.mean([run_toy("random", s).final for s in seeds])
    assert pb2 > rnd + 0.1


def test_problem_validation():
    with pytest.raises(ConfigError, match="interval"):
        MovingOptimum(interval=0)
    with pytest.raises(ConfigError, match="dimensions"):
        run_toy("random", 0, problem=MovingOptimum(start=(0.1,), end=(0.2,)))


def test_the_best_choice_switches_and_others_train_at_the_off_rate():
    problem = MovingOptimum(start=(0.5,), end=(0.5,), choices=("a", "b"), switch=0.5, off=0.25)
    half = problem.budget // 2
    on = np.array([0.5])
    assert problem.best_choice(0) == "a" and problem.best_choice(half) == "b"
    assert problem.gain(on, 0, half, "a") == pytest.approx(0.5)
    assert problem.gain(on, 0, half, "b") == pytest.approx(0.25 * 0.5)
    # Always on "a": full rate until the switch, the off rate after it.
    assert problem.gain(on, 0, problem.budget, "a") == pytest.approx(0.5 + 0.125)


def test_a_mixed_space_runs_and_a_held_choice_trains_every_member():
    space = SearchSpace({"x": Float(0.0, 1.0), "cat": Categorical(("a", "b"))})
    problem = MovingOptimum(start=(0.5,), end=(0.5,), choices=("a", "b"), noise=0.0)
    result = run_toy("pbt", 0, problem=problem, space=space)
    assert set(result.population.history.to_frame()["cat"]) <= {"a", "b"}
    held = run_toy("random", 0, problem=problem, space=space.numeric(), held="b")
    # "b" trains at the off rate (0.3) for the first half: at most 0.3 * 0.5 + 0.5.
    assert 0.3 < held.final <= 0.65 + 1e-9
    with pytest.raises(ConfigError, match="held must be one of"):
        run_toy("random", 0, problem=problem, space=space.numeric())
    with pytest.raises(ConfigError, match="no categorical dimension"):
        run_toy("random", 0, problem=MovingOptimum(start=(0.5,), end=(0.5,)), space=space)
