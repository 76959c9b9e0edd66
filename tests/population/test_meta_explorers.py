import numpy as np
import pytest

from metapbt import ConfigError
from metapbt.population import methods
from metapbt.population.explorers import ExploreRequest, RoundContext
from metapbt.population.explorers.meta import MetaPriorExplorer, MetaSource
from metapbt.population.explorers.pb2 import pb2_star
from metapbt.population.history import History
from tests.population.conftest import SPACE, bump_history


def test_meta_prior_from_an_identical_task_picks_its_best_region(bump_store):
    # The target has only a few uninformative rows (all near x = 0.3); the prior must steer.
    target = History(SPACE)
    rewards = np.zeros(4)
    for s in range(1, 3):
        configs = [{"x": 0.3 + 0.01 * m} for m in range(4)]
        rewards += np.array([1.0, 1.02, 0.98, 1.01])
        target.add_round(s * 100, configs, list(rewards), [-1] * 4)
    target.add_round(300, [{"x": 0.3 + 0.01 * m} for m in range(4)], list(rewards + 1), [-1] * 4)
    explorer = MetaPriorExplorer(pb2_star(), source=MetaSource(bump_store, "bump target"))
    ctx = RoundContext(SPACE, target, 300, rewards + 1, 4)
    rng = np.random.default_rng(0)
    explorer.begin_round(ctx, rng)
    assert explorer.weights, "the meta prior was not used"
    pick = explorer.explore(ctx, ExploreRequest(0, 1, {"x": 0.31}, float(rewards[1] + 1), ()), rng)
    assert abs(pick["x"] - 0.8) < 0.15
    w = explorer.weights[-1]
    assert w["bump same"] + w["bump far"] == pytest.approx(1.0)


def test_target_task_in_the_store_is_never_used(bump_store):
    explorer = MetaPriorExplorer(pb2_star(), source=MetaSource(bump_store, "bump same"))
    ctx = RoundContext(SPACE, bump_history(9), 800, np.zeros(4), 4)
    explorer.begin_round(ctx, np.random.default_rng(0))
    assert [t.task for t in explorer.models.tasks] == ["bump far"]
    assert set(explorer.weights[-1]) == {"step", "bump far"}


@pytest.mark.parametrize("name", ["meta-prior", "taf", "multitask"])
def test_meta_methods_record_weights_and_respect_pending_points(bump_store, name):
    method = methods.make(name, metadata=MetaSource(bump_store, "bump target"))
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
    explorer = methods.make("meta-prior", metadata=MetaSource(bump_store, "x")).explorer
    ctx = RoundContext(SPACE, bump_history(1, rounds=1), 100, np.zeros(4), 4)
    explorer.begin_round(ctx, np.random.default_rng(0))
    assert explorer.weights == []
    with pytest.raises(ConfigError, match="needs meta-data"):
        methods.make("taf")
    with pytest.raises(ConfigError, match="does not use meta-data"):
        methods.make("pb2", metadata=MetaSource(bump_store, "x"))


def test_meta_predictions_do_not_recompile_as_the_target_grows(bump_store):
    from metapbt.population.explorers.transfer import meta_means_jit

    explorer = methods.make("taf", metadata=MetaSource(bump_store, "bump target")).explorer
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
