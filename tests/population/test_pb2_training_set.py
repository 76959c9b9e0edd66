import numpy as np
import pytest

from metapbt import Float, SearchSpace
from metapbt.population import methods
from metapbt.population.explorers import RoundContext
from metapbt.population.explorers.training import training_set
from metapbt.population.history import History, SurrogateData

SPACE = SearchSpace({"lr": Float(1e-5, 1e-3, log=True), "clip": Float(0.1, 0.5)})


def rows(hparams, targets):
    n = len(targets)
    return SurrogateData(
        time=np.linspace(100, 400, n),
        reward_before=np.linspace(-10, 10, n),
        hparams=np.asarray(hparams, float),
        target=np.asarray(targets, float),
        member=np.arange(n),
    )


def test_normalisation_of_time_reward_hyperparameters_and_target():
    data = rows([[1e-4, 0.3], [1e-3, 0.1], [1e-5, 0.5], [1e-4, 0.6]], [0.0, 1.0, 2.0, 30.0])
    star = training_set(data, SPACE, log_space=True, clip=True)
    np.testing.assert_allclose(star.x[:, 0], [0, 1 / 3, 2 / 3, 1], atol=1e-6)
    np.testing.assert_allclose(star.x[:, 1], [0, 1 / 3, 2 / 3, 1], atol=1e-6)
    np.testing.assert_allclose(star.x[:, 2], [0.5, 1.0, 0.0, 0.5])  # log space
    np.testing.assert_allclose(star.x[:, 3], [0.5, 0.0, 1.0, 1.0])  # 0.6 clipped to the bound
    z = (data.target - data.target.mean()) / data.target.std(ddof=0)
    np.testing.assert_allclose(star.y, np.clip(z, -2, 2))
    stock = training_set(data, SPACE, log_space=False, clip=False)
    assert stock.x[0, 2] == pytest.approx((1e-4 - 1e-5) / (1e-3 - 1e-5))
    assert stock.x[3, 3] == pytest.approx(1.25)  # not clipped
    assert star.context(400, 10.0) == pytest.approx([1.0, 1.0], abs=1e-6)


def test_equal_times_normalise_to_zero():
    data = rows([[1e-4, 0.3], [1e-3, 0.1]], [0.0, 1.0])
    data = SurrogateData(
        np.full(2, 5.0), data.reward_before, data.hparams, data.target, data.member
    )
    np.testing.assert_allclose(training_set(data, SPACE, True, True).x[:, 0], 0.0)


def test_stock_pb2_clips_the_fitted_lengthscale():
    space = SearchSpace({"x": Float(0.0, 1.0)})
    rng = np.random.default_rng(0)
    history, rewards = History(space), np.zeros(4)
    for s in range(1, 7):
        configs = [space.sample(rng) for _ in range(4)]
        rewards += rng.standard_normal(4)  # pure noise: a long lengthscale fits best
        history.add_round(s * 100, configs, list(rewards), [-1] * 4)
    explorer = methods.make("pb2").explorer
    explorer.begin_round(RoundContext(space, history, 600, rewards, 4), rng)
    assert 1e-5 <= explorer.fits[-1]["lengthscale"] <= 1.0


def test_infinite_and_failed_rewards_give_no_rows_and_no_warning():
    # Found by the slow job's property test: -inf minus -inf warned (RuntimeWarning is an
    # error for metapbt's code in the test settings) before the row was dropped.
    space = SearchSpace({"x": Float(0.0, 1.0)})
    history = History(space)
    rounds = [
        [None, None, 1.0],
        [-np.inf, None, 2.0],
        [-np.inf, np.inf, 4.0],
    ]
    for step, rewards in enumerate(rounds, start=1):
        scores = [np.nan if r is None else r for r in rewards]
        history.add_round(step * 10, [{"x": 0.5}] * 3, scores, [-1, -1, -1])
    data = history.surrogate_data()
    # Only member 2 reports finite rewards throughout: its two intervals are the rows.
    assert data.member.tolist() == [2, 2]
    np.testing.assert_allclose(data.target, [0.1, 0.2])
