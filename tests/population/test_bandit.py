"""PB2-Mix's TV.EXP3.M against hand computations."""

import math

import numpy as np
import pytest

from metapbt.errors import ConfigError
from metapbt.population.explorers import bandit


def test_one_round_of_weights_by_hand():
    # 2 categories, 4 plays (no capping), gamma 0.2, omega 0.01: p = 0.8 * 0.5 + 0.1 = 0.5.
    new = bandit.update(np.array([0.5, 0.5]), [0, 0, 1, 1], [1.0, 0.5, 0.0, 0.5], 0.2, 0.01)
    # xhat_0 = (1 + 0.5) / (4 * 0.5) = 0.75, xhat_1 = 0.5 / 2 = 0.25;
    # w_c <- w_c * exp(0.2 * 4 * xhat_c / 2) + e * 0.01 * 1 / 2
    share = math.e * 0.01 / 2
    w0, w1 = 0.5 * math.exp(0.3) + share, 0.5 * math.exp(0.1) + share
    np.testing.assert_allclose(new, [w0 / (w0 + w1), w1 / (w0 + w1)], rtol=1e-12)
    assert new[0] > new[1] and new.sum() == pytest.approx(1.0)


def test_capping_keeps_every_probability_playable_once_per_round():
    # 4 categories, 2 plays, gamma 0.2: eta = (1/2 - 0.2/4) / 0.8 = 0.5625 <= 0.7 (a share).
    weights = np.array([0.7, 0.1, 0.1, 0.1])
    capped_weights, capped = bandit.cap(weights, 0.2, 2)
    alpha = 0.5625 * 0.3 / (1 - 0.5625)  # eta * (sum of the others) / (1 - k eta), k = 1
    np.testing.assert_allclose(capped_weights, [alpha, 0.1, 0.1, 0.1])
    assert capped.tolist() == [True, False, False, False]
    probs, _ = bandit.probabilities(weights, 0.2, 2)
    assert 2 * probs[0] == pytest.approx(1.0)  # played exactly once per round
    assert probs.sum() == pytest.approx(1.0)
    # a capped category gets the share only, whatever its reward
    new = bandit.update(weights, [0, 1], [1.0, 0.0], 0.2, 0.0)
    rest = 0.1 * math.exp(0.0)
    assert new[0] / new[1] == pytest.approx(0.7 / rest)
    # no capping with as many plays as categories
    assert not bandit.cap(weights, 0.2, 4)[1].any()


def test_the_share_lets_a_new_best_category_take_over():
    first = [([0, 1, 0, 1], [1.0, 0.0, 1.0, 0.0])] * 100  # category 0 best for 100 rounds
    then = [([0, 1, 0, 1], [0.0, 1.0, 0.0, 1.0])] * 5  # then category 1
    omega = bandit.default_omega(105)
    assert bandit.replay(2, first, 0.2, omega)[0] > 0.99
    assert bandit.replay(2, first + then, 0.2, omega)[1] > 0.5  # follows within 5 rounds
    assert bandit.replay(2, first + then, 0.2, 0.0)[1] < 1e-3  # without forgetting: stuck


def test_pb2_mix_rates_by_hand():
    # C = 4, B = 2, T = 15: sqrt(4 ln 2 / ((e - 1) * 2 * 1.5))
    assert bandit.default_gamma(4, 2, 15) == pytest.approx(
        math.sqrt(4 * math.log(2) / ((math.e - 1) * 3))
    )
    assert bandit.default_gamma(2, 4, 15) == 0.2
    assert bandit.default_omega(15) == pytest.approx(1 / 150)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (([0.5, 0.5], [2], [1.0], 0.2, 0.0), "categories must be in 0..1"),
        (([0.5, 0.5], [0], [1.5], 0.2, 0.0), r"normalised to \[0, 1\]"),
        (([0.5, 0.5], [0, 1], [1.0], 0.2, 0.0), "one reward per play"),
        (([1.0], [0], [1.0], 0.2, 0.0), "at least 2 positives"),
        (([0.5, 0.5], [0], [1.0], 0.0, 0.0), r"gamma must be in \(0, 1\]"),
    ],
)
def test_bad_input_is_refused(args, match):
    with pytest.raises(ConfigError, match=match):
        bandit.update(*args)
