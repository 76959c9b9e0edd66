"""Contract suite: every registered method, driven through the same scripted rounds."""

import numpy as np
import pytest

from metapbt import Clone, Float, Int, Population, SearchSpace, UnknownNameError
from metapbt.population import methods
from metapbt.population.explorers import (
    ExploreRequest,
    PBTPerturbation,
    RoundContext,
)
from metapbt.population.history import History

SPACE = SearchSpace(
    {"lr": Float(1e-5, 1e-3, log=True), "clip": Float(0.1, 0.5), "epochs": Int(1, 10)}
)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    from tests.population.conftest import source as meta_source
    from tests.population.conftest import toy_store

    return meta_source(toy_store(tmp_path_factory.mktemp("contract"), space=SPACE), "toy a", k=0.0)


def drive(method, seed, rounds=4, size=8, source=None):
    meta = source if methods.uses_metadata(method) else None
    pop = Population(SPACE, size=size, method=methods.make(method, metadata=meta), seed=seed)
    rewards = np.zeros(size)
    configs_per_round = [pop.ask()]
    for r in range(1, rounds + 1):
        for m, c in enumerate(pop.ask()):  # a smooth objective of the hyperparameters
            rewards[m] += 1.0 - (SPACE.to_unit(c)[0] - 0.7) ** 2 - 0.1 * abs(c["clip"] - 0.3)
        decisions = pop.tell(r * 1000, list(rewards))
        for d in decisions:
            if isinstance(d, Clone):
                rewards[d.member] = rewards[d.source]
        configs_per_round.append(pop.ask())
    return configs_per_round, pop


# The -tr and -patient variants share their base method's explorer: a few stand for all.
VARIANTS = ["pb2-star-tr", "meta-prior-tr", "pbt-patient", "pb2-star-patient", "meta-prior-patient"]
CONTRACT = [m for m in methods.names() if not m.endswith(("-tr", "-patient"))] + VARIANTS


@pytest.mark.parametrize("method", CONTRACT)
def test_configs_stay_inside_bounds_with_int_types(method, source):
    rounds, _ = drive(method, seed=0, source=source)
    for configs in rounds:
        for c in configs:
            assert SPACE.validate(c) == c
            assert isinstance(c["epochs"], int)


@pytest.mark.parametrize(
    "method",
    # meta-dkl's pretraining makes it the slowest (about 80 s); the slow job runs it.
    [pytest.param(m, marks=pytest.mark.slow) if m == "meta-dkl" else m for m in CONTRACT],
)
def test_deterministic_under_a_seed(method, source):
    # Three rounds: the GP methods explore from round 2, MultiTask's multi-task GP in round 3.
    first = drive(method, seed=3, rounds=3, source=source)[0]
    assert first == drive(method, seed=3, rounds=3, source=source)[0]
    # The schedule methods replay the meta-data's schedules: no draw depends on the seed.
    if method not in ("random", "schedule-replay", "schedule-pbt"):
        assert first != drive(method, seed=4, rounds=3, source=source)[0]


def test_random_never_clones():
    _, pop = drive("random", seed=0)
    assert (pop.history.to_frame()["clone_source"] == -1).all()


def test_pbt_perturbs_by_factors_or_resamples():
    space = SearchSpace({"x": Float(0.0, 100.0)})
    ctx = RoundContext(space, History(space), 10, np.zeros(2), 2)
    req = ExploreRequest(0, 1, {"x": 50.0}, 1.0, ())
    values = [
        PBTPerturbation().explore(ctx, req, np.random.default_rng(s))["x"] for s in range(300)
    ]
    factored = [v for v in values if v in (pytest.approx(60.0), pytest.approx(40.0))]
    assert 0.65 < len(factored) / len(values) < 0.85  # resample probability 0.25
    assert {round(v) for v in factored} == {40, 60}


def _trained_history(space, steps=6, size=4, seed=0):
    rng = np.random.default_rng(seed)
    history, rewards = History(space), np.zeros(size)
    for s in range(1, steps + 1):
        configs = [space.sample(rng) for _ in range(size)]
        for m, c in enumerate(configs):
            rewards[m] += 1.0 - (space.to_unit(c)[0] - 0.7) ** 2
        history.add_round(s * 100, configs, list(rewards), [-1] * size)
    return history, rewards


def test_pending_points_lower_the_acquisition_where_they_lie():
    from metapbt.surrogates.acquisition import acquisition_objective

    space = SearchSpace({"x": Float(0.0, 1.0)})
    history, rewards = _trained_history(space)
    ctx = RoundContext(space, history, 600, rewards, 4)
    explorer = methods.make("pb2-star").explorer
    explorer.begin_round(ctx, np.random.default_rng(0))
    first = explorer.explore(
        ctx, ExploreRequest(0, 3, {"x": 0.5}, rewards[3], ()), np.random.default_rng(1)
    )
    model = explorer._round
    fixed = model.query(600, 3, float(rewards[3]), explorer.settings.query)
    pending_x = np.concatenate([fixed, [first["x"]]])[None, :]
    u = np.array([first["x"]], np.float32)
    f32 = np.asarray(fixed, np.float32)

    def value(pending):
        acquisition = explorer.acquisition.build(model, pending)
        posterior = model.posterior.with_pending(pending)
        return float(acquisition_objective((acquisition, posterior, f32), u))

    # The earlier pick of the round lowers the UCB bonus where it lies (GP-BUCB).
    assert value(pending_x) < value(np.zeros((0, 2 + space.dim))) - 1e-4


def test_pb2_star_draws_at_random_and_pb2_copies_when_donor_has_no_data():
    space = SearchSpace({"x": Float(0.0, 1.0)})
    ctx = RoundContext(space, History(space), 100, np.zeros(4), 4)
    req = ExploreRequest(0, 3, {"x": 0.123}, 1.0, ())
    rng = np.random.default_rng(0)
    assert methods.make("pb2").explorer.explore(ctx, req, rng) == {"x": 0.123}
    drawn = {methods.make("pb2-star").explorer.explore(ctx, req, rng)["x"] for _ in range(5)}
    assert len(drawn) == 5


def test_pb2_star_moves_toward_the_good_region():
    space = SearchSpace({"x": Float(0.0, 1.0)})
    history, rewards = _trained_history(space, steps=8)
    ctx = RoundContext(space, history, 800, rewards, 4)
    explorer = methods.make("pb2-star").explorer
    explorer.begin_round(ctx, np.random.default_rng(0))
    picks = [
        explorer.explore(
            ctx, ExploreRequest(0, 1, {"x": 0.1}, rewards[1], ()), np.random.default_rng(s)
        )["x"]
        for s in range(3)
    ]
    assert all(abs(p - 0.7) < 0.25 for p in picks)
    assert explorer.fits and explorer.fits[-1]["rows"] == 28


def test_unknown_method_lists_known_ones():
    with pytest.raises(UnknownNameError, match="pb2-star"):
        methods.make("pb3")
