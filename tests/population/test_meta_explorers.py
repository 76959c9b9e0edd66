import numpy as np
import pytest

from metapbt import ConfigError
from metapbt.population import methods
from metapbt.population.explorers import ExploreRequest, RoundContext
from metapbt.population.history import History
from tests.population.conftest import SPACE, bump_history, source


def test_meta_prior_from_an_identical_task_picks_its_best_region(bump_store):
    # The target has only a few uninformative rows (all near x = 0.3); the prior must steer.
    target = History(SPACE)
    rewards = np.zeros(4)
    for s in range(1, 3):
        configs = [{"x": 0.3 + 0.01 * m} for m in range(4)]
        rewards += np.array([1.0, 1.02, 0.98, 1.01])
        target.add_round(s * 100, configs, list(rewards), [-1] * 4)
    target.add_round(300, [{"x": 0.3 + 0.01 * m} for m in range(4)], list(rewards + 1), [-1] * 4)
    explorer = methods.make(
        "meta-prior", metadata=source(bump_store, "bump target", centre=0.5)
    ).explorer
    ctx = RoundContext(SPACE, target, 300, rewards + 1, 4)
    rng = np.random.default_rng(0)
    explorer.begin_round(ctx, rng)
    assert explorer.weights, "the meta prior was not used"
    pick = explorer.explore(ctx, ExploreRequest(0, 1, {"x": 0.31}, float(rewards[1] + 1), ()), rng)
    assert abs(pick["x"] - 0.8) < 0.15
    w = explorer.weights[-1]
    assert w["bump same"] + w["bump far"] == pytest.approx(1.0)


def test_target_task_in_the_store_is_never_used(bump_store):
    explorer = methods.make(
        "meta-prior", metadata=source(bump_store, "new id", centre=0.8)
    ).explorer
    ctx = RoundContext(SPACE, bump_history(9), 800, np.zeros(4), 4)
    explorer.begin_round(ctx, np.random.default_rng(0))
    # Same physical task under another id: left out by its context values.
    assert [t.task.task for t in explorer.meta.tasks] == ["bump far"]
    assert set(explorer.weights[-1]) == {"step", "bump far"}


@pytest.mark.parametrize("name", ["meta-prior", "taf", "multitask"])
def test_meta_methods_record_weights_and_respect_pending_points(bump_store, name):
    method = methods.make(name, metadata=source(bump_store, "bump target", centre=0.5))
    history = bump_history(5)
    ctx = RoundContext(SPACE, history, 800, np.zeros(4), 4)
    explorer = method.explorer
    explorer.begin_round(ctx, np.random.default_rng(0))
    assert explorer.weights and sum(
        v for k, v in explorer.weights[-1].items() if k != "step"
    ) == pytest.approx(1.0)
    donor_reward = float(history.to_frame().query("step == 800")["reward"].iloc[1])
    first = explorer.explore(
        ctx, ExploreRequest(0, 1, {"x": 0.5}, donor_reward, ()), np.random.default_rng(1)
    )
    second = explorer.explore(
        ctx, ExploreRequest(2, 1, {"x": 0.5}, donor_reward, (first,)), np.random.default_rng(1)
    )
    assert second["x"] != pytest.approx(first["x"], abs=1e-4)
    if name == "taf":
        assert "target" in explorer.weights[-1]


def test_meta_methods_fall_back_to_pb2_star_early_and_need_metadata(bump_store):
    explorer = methods.make("meta-prior", metadata=source(bump_store, "x", centre=0.3)).explorer
    ctx = RoundContext(SPACE, bump_history(1, rounds=1), 100, np.zeros(4), 4)
    explorer.begin_round(ctx, np.random.default_rng(0))
    assert explorer.weights == []
    with pytest.raises(ConfigError, match="needs meta-data"):
        methods.make("taf")
    with pytest.raises(ConfigError, match="does not use meta-data"):
        methods.make("pb2", metadata=source(bump_store, "x", centre=0.3))


def test_meta_predictions_do_not_recompile_as_the_target_grows(bump_store):
    from metapbt.surrogates.transfer import _meta_means_jit as meta_means_jit

    explorer = methods.make("taf", metadata=source(bump_store, "bump target", centre=0.5)).explorer
    full = bump_history(3, rounds=7).to_frame()
    sizes = []
    for step in (500, 600, 700):  # 16, 20 and 24 target rows: one padded size
        history = History.from_frame(full[full["step"] <= step], SPACE)
        ctx = RoundContext(SPACE, history, step, np.zeros(4), 4)
        explorer.begin_round(ctx, np.random.default_rng(0))
        explorer.explore(
            ctx, ExploreRequest(0, 1, {"x": 0.5}, 1.0, ({"x": 0.2},)), np.random.default_rng(1)
        )
        sizes.append(meta_means_jit._cache_size())
    assert sizes[0] == sizes[-1]
