import numpy as np
import pytest

from metapbt import ConfigError
from metapbt.metadata.rgpe import ranking_loss, rgpe_weights, target_ranking_loss


def test_ranking_loss_counts_misordered_pairs():
    y = np.array([0.0, 1.0, 2.0])
    assert ranking_loss(y * 3, y) == 0
    assert ranking_loss(-y, y) == 6  # every ordered pair (j != k) is wrong
    assert ranking_loss(np.array([0.0, 2.0, 1.0]), y) == 2
    assert target_ranking_loss(y, y) == 0


def test_weights_sum_to_one_and_favour_the_task_that_ranks_the_target_right():
    rng = np.random.default_rng(0)
    y = rng.standard_normal(20)
    good = y + 0.01 * rng.standard_normal(20)
    bad = -y
    noise = rng.standard_normal(20)
    w = rgpe_weights(np.stack([bad, good, noise]), y, np.random.default_rng(1))
    assert w.sum() == pytest.approx(1.0)
    assert w[1] > 0.9 and w[0] == 0.0


def test_a_perfect_ranker_gets_all_weight_and_ties_split():
    y = np.arange(10.0)
    assert rgpe_weights(np.stack([y, -y]), y, np.random.default_rng(0)).tolist() == [1.0, 0.0]
    w = rgpe_weights(np.stack([y, 2 * y]), y, np.random.default_rng(0))
    np.testing.assert_allclose(w, [0.5, 0.5])


def test_a_near_perfect_target_is_not_penalised_for_comparing_rows_with_themselves():
    y = np.arange(10.0)
    w = rgpe_weights(np.stack([y]), y, np.random.default_rng(0), loo=y - 1e-3)
    np.testing.assert_allclose(w, [0.5, 0.5])  # both rank perfectly: the weight is shared
    assert target_ranking_loss(y - 1e-3, y, np.eye(10, dtype=bool)) == 0


def test_target_is_included_with_loo_predictions_and_seeded():
    y = np.arange(8.0)
    w = rgpe_weights(np.stack([-y]), y, np.random.default_rng(0), loo=y + 0.5)
    assert w.shape == (2,) and w.sum() == pytest.approx(1.0) and w[1] > w[0]
    a = rgpe_weights(np.stack([y[::-1], np.sin(y)]), y, np.random.default_rng(5), samples=50)
    b = rgpe_weights(np.stack([y[::-1], np.sin(y)]), y, np.random.default_rng(5), samples=50)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ConfigError, match="do not match"):
        rgpe_weights(np.zeros((2, 3)), y, np.random.default_rng(0))
