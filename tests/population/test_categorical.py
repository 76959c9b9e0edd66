"""Categorical hyperparameters: validation, sampling, files, and the methods that take them."""

import json

import numpy as np
import pytest

from metapbt import ConfigError, Float, Int, Population, SearchSpace
from metapbt.population.explorers.base import ExploreRequest, RoundContext
from metapbt.population.explorers.basic import PBTPerturbation
from metapbt.population.history import History
from metapbt.population.space import Categorical

SPACE = SearchSpace(
    {
        "lr": Float(1e-5, 1e-3, log=True),
        "opt": Categorical(("adam", "sgd", "rmsprop")),
        "norm": Categorical((True, False)),
        "epochs": Int(3, 30),
    }
)


@pytest.mark.parametrize(
    ("choices", "match"),
    [
        (("adam",), "at least 2 choices"),
        (("adam", "adam"), "distinct"),
        (("adam", 1), "all be str, all int"),
        ((1, True), "all be str, all int"),  # a bool is not an int here
        ((0.9, float("nan")), "finite"),
        (([1], [2]), "all be str, all int"),
    ],
)
def test_bad_choices_are_refused(choices, match):
    with pytest.raises(ConfigError, match=match):
        Categorical(choices)


def test_values_are_the_choices_of_their_type():
    opt = SPACE["opt"]
    assert opt.index("sgd") == 1
    with pytest.raises(ConfigError, match="not one of the choices"):
        opt.index("lamb")
    flag = Categorical((True, False))
    with pytest.raises(ConfigError, match="not one of the choices"):
        flag.index(1)  # 1 == True, but not a bool
    assert Categorical((0.9, 0.99)).index(np.float64(0.99)) == 1
    good = {"lr": 1e-4, "opt": "sgd", "norm": False, "epochs": 10}
    assert SPACE.validate(good) == good
    with pytest.raises(ConfigError, match="opt: 'lamb' is not one of the choices"):
        SPACE.validate({**good, "opt": "lamb"})
    with pytest.raises(ConfigError, match="cannot narrow 'opt': it is categorical"):
        SPACE.narrowed({"opt": (0, 1)})


def test_sampling_covers_every_choice_uniformly():
    rng = np.random.default_rng(0)
    draws = [SPACE.sample(rng) for _ in range(3000)]
    counts = {c: sum(d["opt"] == c for d in draws) for c in ("adam", "sgd", "rmsprop")}
    assert all(abs(n / 3000 - 1 / 3) < 0.03 for n in counts.values())
    assert all(isinstance(d["norm"], bool) and isinstance(d["epochs"], int) for d in draws)


def test_a_space_with_categoricals_round_trips_through_json_and_histories(tmp_path):
    assert SearchSpace.from_dict(json.loads(json.dumps(SPACE.to_dict()))) == SPACE
    with pytest.raises(ConfigError, match="needs a list of 'choices'"):
        SearchSpace.from_dict({"opt": {"type": "categorical"}})
    history = History(SPACE)
    configs = [SPACE.sample(np.random.default_rng(s)) for s in range(3)]
    history.add_round(10, configs, [1.0, 2.0, float("nan")], [-1, -1, -1])
    frame = history.to_frame()
    assert frame["opt"].tolist() == [c["opt"] for c in configs]  # written as the choices
    assert frame["norm"].tolist() == [c["norm"] for c in configs]
    history.to_parquet(tmp_path / "h.parquet")
    again = History.from_parquet(tmp_path / "h.parquet")
    assert again.space == SPACE and again.to_frame().equals(frame)


def test_models_that_need_numbers_refuse_a_categorical_space():
    with pytest.raises(ConfigError, match="the unit cube needs numeric parameters"):
        SPACE.to_unit({"lr": 1e-4, "opt": "sgd", "norm": True, "epochs": 3})
    for method in ("pb2", "pb2-star", "dkl"):
        with pytest.raises(ConfigError, match=rf"{method} method models numeric parameters only"):
            Population(SPACE, size=4, method=method)


def test_pbt_redraws_a_categorical_with_its_probability_and_otherwise_keeps_it():
    explorer = PBTPerturbation(resample_probability=0.25)
    donor = {"lr": 1e-4, "opt": "adam", "norm": True, "epochs": 10}
    context = RoundContext(SPACE, History(SPACE), step=10, rewards=np.array([1.0, 2.0]), size=2)
    request = ExploreRequest(member=0, donor=1, donor_config=donor, donor_reward=2.0, pending=())
    rng = np.random.default_rng(1)
    picks = [explorer.explore(context, request, rng)["opt"] for _ in range(4000)]
    # kept with 0.75, redrawn with 0.25 (a redraw lands on adam a third of the time)
    assert np.mean([p == "adam" for p in picks]) == pytest.approx(0.75 + 0.25 / 3, abs=0.02)
    assert {"sgd", "rmsprop"} <= set(picks)


def test_random_and_pbt_populations_run_and_resume_with_categoricals():
    def run(pop, rounds, start=1):
        for t in range(start, start + rounds):
            pop.tell(t * 10, [float(i + t) for i in range(4)])

    whole = Population(SPACE, size=4, method="pbt", seed=3)
    run(whole, 6)
    first = Population(SPACE, size=4, method="pbt", seed=3)
    run(first, 3)
    state = json.loads(json.dumps(first.state_dict()))
    resumed = Population(SPACE, size=4, method="pbt", seed=3)
    resumed.load_state_dict(state)
    run(resumed, 3, start=4)
    assert resumed.history.to_frame().equals(whole.history.to_frame())
    assert all(c["opt"] in ("adam", "sgd", "rmsprop") for c in whole.ask())
    fixed = Population(SPACE, size=4, method="random", seed=0)
    before = fixed.ask()
    run(fixed, 3)
    assert fixed.ask() == before


MIXED = SearchSpace(
    {
        "lr": Float(1e-5, 1e-3, log=True),
        "opt": Categorical(("adam", "sgd", "rmsprop")),
        "clip": Float(0.1, 0.5),
    }
)


def _run_mixed(seed: int, rounds: int = 10, pop: Population | None = None, start: int = 1):
    """pb2-mix on a task whose 'sgd' category learns four times faster."""
    pop = pop or Population(MIXED, size=4, method="pb2-mix", seed=seed)
    noise = np.random.default_rng(seed + 100 * start)
    score = [0.0] * 4 if start == 1 else pop.history.to_frame().groupby("member")["reward"].last()
    score = list(score)
    for t in range(start, start + rounds):
        for m, config in enumerate(pop.ask()):
            score[m] += (2.0 if config["opt"] == "sgd" else 0.5) + noise.normal(0, 0.1)
        for decision in pop.tell(t * 10, list(score)):
            if hasattr(decision, "source"):
                score[decision.member] = score[decision.source]
    return pop


def test_pb2_mix_learns_the_better_category_and_keeps_it_fixed_while_searching_numbers():
    pop = _run_mixed(seed=0)
    explorer = pop.method.explorer
    probs = explorer.categorical.probabilities(pop.space)["opt"]
    assert probs[1] > 0.5 and probs[1] == probs.max()  # sgd
    late = pop.history.to_frame().query("step >= 60")
    assert (late["opt"] == "sgd").mean() >= 0.75
    # the GP behind it is PB2-Mix's mixture over one categorical input
    fits = explorer.surrogate.fits
    assert fits and "mix" in fits[-1]
    assert all(0.0 <= f["mix"] <= 1.0 for f in fits if "mix" in f)
    # same seed, same run
    assert _run_mixed(seed=0).history.to_frame().equals(pop.history.to_frame())


def test_pb2_mix_resumes_to_the_same_history():
    whole = _run_mixed(seed=1, rounds=6)
    first = _run_mixed(seed=1, rounds=3)
    resumed = Population(first.space, size=4, method="pb2-mix", seed=1)
    resumed.load_state_dict(json.loads(json.dumps(first.state_dict())))
    assert resumed.history.to_frame().equals(first.history.to_frame())
    assert resumed.ask() == first.ask()
    assert whole.history.to_frame().iloc[:12].equals(first.history.to_frame())


def test_an_unplayed_category_is_tried_before_the_bandit_draws():
    from metapbt.population.explorers.bandit import CategoricalBandit
    from metapbt.population.history import SurrogateData

    space = SearchSpace({"lr": Float(1e-4, 1e-3), "opt": Categorical(("a", "b", "c"))})
    rows = SurrogateData(  # four members, two rounds, all on "a"
        time=np.repeat([1.0, 2.0], 4),
        reward_before=np.zeros(8),
        hparams=np.column_stack([np.full(8, 3e-4), np.zeros(8)]),
        target=np.linspace(0.0, 1.0, 8),
        member=np.tile(np.arange(4), 2),
    )
    rng = np.random.default_rng(0)
    bandit = CategoricalBandit()
    bandit.observe(space, rows, size=4)
    assert sorted(bandit.choose(space, rng)["opt"] for _ in range(2)) == [1, 2]
    # then (and under PB2-Mix's own rule at once) draws favour the played "a"
    probs = bandit.probabilities(space)["opt"]
    assert probs[0] > probs[1] == probs[2]
    plain = CategoricalBandit(optimistic=False)
    plain.observe(space, rows, size=4)
    assert np.mean([plain.choose(space, rng)["opt"] == 0 for _ in range(300)]) > 0.4


def _first_round_on_best(seed: int, optimistic: bool, rounds: int = 5) -> float:
    pop = Population(MIXED, size=4, method="pb2-mix", seed=seed)
    pop.method.explorer.categorical.optimistic = optimistic
    frame = _run_mixed(seed, rounds, pop=pop).history.to_frame()
    return frame.loc[frame["opt"] == "sgd", "step"].min() / 10  # NaN: never tried


def test_pb2_mix_tries_the_best_choice_within_three_rounds_when_the_first_draw_missed_it():
    # Seeds 7, 9 and 12 start without "sgd" (the better choice); with PB2-Mix's own rule they
    # first tried it at rounds 6, 13 and 11 of 15 (20 seeds measured, docs: pb2-mix).
    for seed in (7, 9, 12):
        assert _first_round_on_best(seed, optimistic=True) <= 3
    assert np.isnan(_first_round_on_best(9, optimistic=False))
