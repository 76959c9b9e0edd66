"""The PB2 family's explore step uses its data: query point, bridge rows, kappa, scales."""

import numpy as np
import pytest

from metapbt import Float, SearchSpace
from metapbt.population import methods
from metapbt.population.explorers import ExploreRequest, RoundContext
from metapbt.population.explorers.training import scale_column, training_set
from metapbt.population.history import History
from tests.population.conftest import bump_history, source

SPACE = SearchSpace({"x": Float(0.0, 1.0)})
XS = [0.1, 0.4, 0.6, 0.9]


def stuck_history(rounds=6, improved_at=0.9, gain=10.0):
    """MountainCar-like: every member stuck at -200, only the one at ``improved_at`` improves."""
    history = History(SPACE)
    rewards = np.full(4, -200.0)
    for s in range(1, rounds + 1):
        if s == rounds:
            rewards[XS.index(improved_at)] += gain
        history.add_round(s * 100, [{"x": x} for x in XS], list(rewards), [-1] * 4)
    return history, rewards


def picks(method, history, rewards, step, donor, seeds=range(6)):
    explorer = methods.make(method).explorer
    ctx = RoundContext(SPACE, history, step, rewards, 4)
    explorer.begin_round(ctx, np.random.default_rng(0))
    request = ExploreRequest(0, donor, {"x": XS[donor]}, float(rewards[donor]), ())
    return [explorer.explore(ctx, request, np.random.default_rng(s))["x"] for s in seeds]


@pytest.mark.parametrize("method", ["pb2-star", "pb2"])
def test_all_equal_rewards_before_keep_the_query_inside_the_data(method):
    # Every reward_before is -200: the reward column has zero width. The donor's reward now
    # (-190) used to be scaled by 1e-8 to about 1e9, where the GP is flat and picks are random.
    history, rewards = stuck_history()
    chosen = picks(method, history, rewards, 600, donor=3)
    assert all(abs(x - 0.9) < 0.15 for x in chosen), chosen


def test_zero_width_columns_scale_to_zero():
    np.testing.assert_array_equal(scale_column(np.array([-200.0, -200.0]), -200.0, -200.0), 0.0)
    assert scale_column(-190.0, -200.0, -200.0) == 0.0
    assert scale_column(5.0, 0.0, 10.0) == pytest.approx(0.5)


def test_rising_rewards_query_where_the_model_has_data():
    history = bump_history(4, rounds=8, noise=0.0)  # rewards rise fastest near x = 0.8
    rewards = np.asarray(history.to_frame().query("step == 800")["reward"])
    data = history.surrogate_data()
    train = training_set(data, SPACE, True, True)
    donor = int(np.argmax(rewards))
    # The donor's current reward lies above every reward_before: out of the data's range.
    assert train.context(800, rewards[donor])[1] > 1.05
    query = train.query(800, donor, float(rewards[donor]), "donor_last_row")
    assert 0.0 <= query[1] <= 1.0 and query[0] == pytest.approx(1.0, abs=1e-6)
    widened = training_set(data, SPACE, True, True, extra_rewards=rewards)
    assert widened.query(800, donor, float(rewards[donor]), "donor_now")[1] == pytest.approx(1.0)
    explorer = methods.make("pb2-star").explorer
    ctx = RoundContext(SPACE, history, 800, rewards, 4)
    explorer.begin_round(ctx, np.random.default_rng(0))
    request = ExploreRequest(0, donor, {"x": 0.5}, float(rewards[donor]), ())
    chosen = [explorer.explore(ctx, request, np.random.default_rng(s))["x"] for s in range(4)]
    assert all(abs(x - 0.8) < 0.15 for x in chosen), chosen


def test_stock_pb2_has_no_bridge_row_after_a_clone_of_a_donor_without_data():
    history = History(SPACE)
    history.add_round(100, [{"x": x} for x in XS], [1.0, 2.0, 3.0, 4.0], [3, -1, -1, -1])
    history.add_round(200, [{"x": 0.9}, *({"x": x} for x in XS[1:])], [5, 3, 4, 6], [-1] * 4)
    history.add_round(300, [{"x": 0.9}, *({"x": x} for x in XS[1:])], [7, 4, 5, 8], [-1] * 4)
    star = history.surrogate_data(bridge_without_data=True)
    stock = history.surrogate_data(bridge_without_data=False)
    # Member 0 cloned member 3 at step 100, before member 3 had any row.
    assert ((star.member == 0) & (star.time == 200)).sum() == 1
    assert ((stock.member == 0) & (stock.time == 200)).sum() == 0
    assert len(stock) == len(star) - 1
    # A clone at step 200 of a donor that has data bridges in both.
    history.add_round(
        400, [{"x": 0.2}, *({"x": x} for x in XS[1:])], [9, 5, 6, 10], [3, -1, -1, -1]
    )
    history.add_round(500, [{"x": 0.2}, *({"x": x} for x in XS[1:])], [12, 6, 7, 11], [-1] * 4)
    stock = history.surrogate_data(bridge_without_data=False)
    bridge = (stock.member == 0) & (stock.time == 500)
    assert bridge.sum() == 1 and stock.reward_before[bridge][0] == 10.0


def test_multitask_enters_meta_slices_and_counts_all_rows_for_kappa(bump_store):
    explorer = methods.make("multitask", metadata=source(bump_store, "t", centre=0.5)).explorer
    history = bump_history(5)
    ctx = RoundContext(SPACE, history, 800, np.zeros(4), 4)
    explorer.begin_round(ctx, np.random.default_rng(0))
    model = explorer._round
    target_rows = len(model.train.y)
    gp = model.posterior.gp
    x = np.asarray(gp.x)[np.asarray(gp.mask)]
    tasks = x[:, 0].astype(int)
    assert (tasks[:target_rows] == 0).all()
    meta_rows = np.bincount(tasks)[1:]
    weights = explorer.weights[-1]
    chosen = sum(weights[t] > 0 for t in ("bump same", "bump far"))
    # Every task with a positive weight enters with all its rows (3 seeds x 7 intervals x 4).
    assert len(meta_rows) == chosen >= 1 and (meta_rows == 84).all()
    assert model.rows == target_rows + meta_rows.sum()
    assert model.prefix == (0.0,)
    # Meta rows are mapped to the target's window: hyperparameter columns are shared.
    assert x[:, 3].min() >= 0.0 and x[:, 3].max() <= 1.0
    kappa = explorer.acquisition.build(model, np.zeros((0, 4))).kappa
    from metapbt.surrogates.acquisition import ucb_kappa

    assert float(kappa) == pytest.approx(ucb_kappa(model.rows), rel=1e-6)


def test_meta_dkl_scales_the_target_like_its_pretraining_rows(bump_store):
    explorer = methods.make("meta-dkl", metadata=source(bump_store, "t", centre=0.5)).explorer
    history = bump_history(5, rounds=5)
    ctx = RoundContext(SPACE, history, 500, np.zeros(4), 4)
    explorer.begin_round(ctx, np.random.default_rng(0))
    model = explorer._round
    tasks = explorer.surrogate.source.load(SPACE.to_dict())
    t_low = np.mean([t.norm.context_min[0] for t in tasks])
    t_high = np.mean([t.norm.context_max[0] for t in tasks])
    # The target's times (200..500) sit in the first half of the meta tasks' 200..800 range,
    # not stretched over [0, 1] as the target's own window would.
    expected = (model.train.raw_context[:, 0] - t_low) / (t_high - t_low + 1e-8)
    np.testing.assert_allclose(model.train.x[:, 0], expected, atol=1e-6)
    assert model.train.x[:, 0].max() == pytest.approx(0.5, abs=1e-6)
