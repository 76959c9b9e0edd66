"""Properties of the search space, the ask/tell core and the history format, over generated
spaces, reward sequences (NaN, None, infinities, ties, members that never report) and rows."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import strategies as st

from metapbt import ConfigError, Float, History, Population, SearchSpace
from tests.properties import FLOAT_MAX, finite, property_test, rewards, spaces


@property_test(spaces(), st.integers(0, 2**32 - 1), examples=60)
def test_a_sampled_config_round_trips_through_every_encoding(space, seed):
    config = space.sample(np.random.default_rng(seed))
    assert space.validate(config) == config and space.clip(config) == config
    for name, value in zip(space.names, space.encode(config), strict=True):
        back = space.decode(name, [value])[0]
        assert back == config[name] and type(back) is type(config[name])
    assert SearchSpace.from_dict(json.loads(json.dumps(space.to_dict()))) == space
    if space.categorical_names:
        return
    unit = space.to_unit(config)
    assert np.all((unit >= -1e-12) & (unit <= 1 + 1e-12)), unit
    again = space.from_unit(unit)
    for name in space.names:
        param = space[name]
        if isinstance(config[name], int):
            assert again[name] == config[name]
        elif param.log:
            assert math.isclose(again[name], config[name], rel_tol=1e-9, abs_tol=5e-324)
        else:
            assert abs(again[name] - config[name]) <= 1e-9 * (param.high - param.low)


test_a_sampled_config_round_trips_through_every_encoding, test_space_round_trips_many = (
    test_a_sampled_config_round_trips_through_every_encoding
)


@property_test(finite, finite, st.booleans(), examples=60)
def test_a_float_range_is_usable_or_refused(low, high, log):
    try:
        param = Float(low, high, log)
    except ConfigError:
        narrow = log and low > 0 and high > 0 and math.log(low) >= math.log(high)
        assert not low < high or (log and low <= 0) or narrow or not math.isfinite(high - low)
        return
    draws = param.sample(np.random.default_rng(0), size=64)
    assert np.all((draws >= low) & (draws <= high))
    assert np.all(np.isfinite(param.to_unit(draws)))


test_a_float_range_is_usable_or_refused, test_float_ranges_many = (
    test_a_float_range_is_usable_or_refused
)


def _check_decisions(pop, decisions, scores):
    """One decision per member; donors finite and in the top quantile; configs in the space."""
    size = pop.size
    assert [d.member for d in decisions] == list(range(size))
    finite_scores = np.isfinite(scores)
    top = sorted(scores[finite_scores], reverse=True)
    n_q = min(math.ceil(size * 0.25), size // 2)
    for d in decisions:
        donor = getattr(d, "donor", None)
        if donor is None:
            continue
        assert donor != d.member and finite_scores[donor]
        assert scores[donor] >= top[n_q - 1]
        assert not finite_scores[d.member] or scores[d.member] <= scores[donor]
    for config in pop.ask():
        assert pop.space.validate(config) == config


def _scores(values):
    return np.array([math.nan if v is None else float(v) for v in values])


@st.composite
def told_populations(draw, methods=("random", "pbt", "pb2-star", "pb2-mix")):
    method = draw(st.sampled_from(methods))
    categorical = method in ("random", "pbt", "pb2-mix")
    space = draw(spaces(categorical=categorical, max_dim=3))
    size = draw(st.integers(1, 6))
    rounds = draw(st.lists(st.lists(rewards, min_size=size, max_size=size), min_size=1, max_size=4))
    return method, space, size, rounds, draw(st.integers(0, 2**16))


@property_test(told_populations(), examples=25)
def test_every_tell_gives_each_member_one_decision_from_a_top_donor_and_restores(case):
    method, space, size, rounds, seed = case
    if method == "pb2-mix" and len(space.categorical_names) == space.dim:
        with pytest.raises(ConfigError, match=r"every one of .* is categorical"):
            Population(space, size, method, seed=seed)
        return
    pop = Population(space, size, method, seed=seed)
    for r, values in enumerate(rounds[:-1]):
        decisions = pop.tell(1000 * (r + 1), values)
        _check_decisions(pop, decisions, _scores(values))
    state = json.loads(json.dumps(pop.state_dict()))
    twin = Population(space, size, method, seed=seed + 1)  # its own generator is overwritten
    twin.load_state_dict(state)
    step, last = 1000 * len(rounds), rounds[-1]
    ours, theirs = pop.tell(step, last), twin.tell(step, last)
    _check_decisions(pop, ours, _scores(last))
    assert ours == theirs and pop.ask() == twin.ask()
    assert pop.history.to_frame().equals(twin.history.to_frame())


(
    test_every_tell_gives_each_member_one_decision_from_a_top_donor_and_restores,
    test_tell_many,
) = test_every_tell_gives_each_member_one_decision_from_a_top_donor_and_restores


@st.composite
def reports(draw):
    space = draw(spaces(max_dim=2))
    size = draw(st.integers(2, 6))
    sequence = draw(st.lists(st.tuples(st.integers(0, size - 1), rewards), min_size=1, max_size=12))
    return space, size, sequence, draw(st.integers(0, 2**16))


@property_test(reports(), examples=25)
def test_asynchronous_reports_in_any_order_keep_the_rules(case):
    """Members report in any order, some never; a member that has not reported never donates."""
    space, size, sequence, seed = case
    pop = Population(space, size, "pbt", seed=seed)
    latest = np.full(size, math.nan)
    for step, (member, reward) in enumerate(sequence, start=1):
        latest[member] = math.nan if reward is None else float(reward)
        decision = pop.tell_member(member, step, reward)
        assert decision.member == member
        donor = getattr(decision, "donor", None)
        if donor is not None:
            assert donor != member and np.isfinite(latest[donor])
            assert not np.isfinite(latest[member]) or latest[member] <= latest[donor]
        assert all(space.validate(c) == c for c in pop.ask())
    twin = Population(space, size, "pbt", seed=seed)
    twin.load_state_dict(json.loads(json.dumps(pop.state_dict())))
    member, reward = sequence[0]
    step = len(sequence) + 1
    assert pop.tell_member(member, step, reward) == twin.tell_member(member, step, reward)


test_asynchronous_reports_in_any_order_keep_the_rules, test_reports_many = (
    test_asynchronous_reports_in_any_order_keep_the_rules
)


@st.composite
def histories(draw):
    space = draw(spaces(max_dim=3))
    size = draw(st.integers(1, 4))
    history = History(space)
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    for r in range(draw(st.integers(0, 4))):
        values = draw(st.lists(rewards, min_size=size, max_size=size))
        sources = draw(st.lists(st.integers(-1, size - 1), min_size=size, max_size=size))
        configs = [space.sample(rng) for _ in range(size)]
        history.add_round(100 * (r + 1), configs, _scores(values), sources)
    return history


@property_test(
    histories(), st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3), examples=30
)
def test_a_history_file_reads_back_as_written(tmp_path_factory, history, labels):
    from metapbt.population.history import read_labels

    path = tmp_path_factory.mktemp("h") / "history.parquet"
    history.to_parquet(path, labels)
    back = History.from_parquet(path)
    assert back.space == history.space
    pd.testing.assert_frame_equal(back.to_frame(), history.to_frame())
    assert read_labels(path) == labels


test_a_history_file_reads_back_as_written, test_history_files_many = (
    test_a_history_file_reads_back_as_written
)


def test_the_widest_float_ranges_are_refused_with_a_reason():
    with pytest.raises(ConfigError, match="wider than a float can hold"):
        Float(-FLOAT_MAX, FLOAT_MAX)
    with pytest.raises(ConfigError, match=r"beyond \+-2\*\*53"):
        from metapbt import Int

        Int(0, 2**60)
