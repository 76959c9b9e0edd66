import numpy as np
import pytest

from metapbt import ConfigError
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
