import json

import numpy as np
import pytest

from metapbt import (
    Clone,
    ConfigError,
    Keep,
    Population,
    PopulationStateError,
    default_space,
)
from metapbt.population.initializers import given


def test_ask_tell_returns_typed_decisions():
    pop = Population(default_space(), size=4, method="pbt", seed=0)
    before = pop.ask()
    decisions = pop.tell(40_000, [1.0, 4.0, 3.0, 2.0])
    assert [type(d) for d in decisions] == [Clone, Keep, Keep, Keep]
    assert decisions[0].source == 1
    assert decisions[1].config == before[1]
    assert pop.ask()[0] == decisions[0].config
    frame = pop.history.to_frame()
    assert frame["clone_source"].tolist() == [1, -1, -1, -1]
    assert frame["lr"].tolist() == [c["lr"] for c in before]


def test_protocol_errors():
    pop = Population(default_space(), size=2, seed=0)
    pop.tell(10, [1.0, 2.0])
    with pytest.raises(PopulationStateError, match="increase"):
        pop.tell(10, [1.0, 2.0])
    with pytest.raises(ConfigError, match="expected 2 rewards"):
        pop.tell(20, [1.0])
    with pytest.raises(ConfigError, match="positive int"):
        Population(default_space(), size=0)


def test_none_reward_is_a_failed_member():
    pop = Population(default_space(), size=4, method="pbt", seed=0)
    decisions = pop.tell(10, [None, 1.0, 2.0, 3.0])
    assert isinstance(decisions[0], Clone) and decisions[0].source == 3
    assert np.isnan(pop.history.to_frame()["reward"][0])


def test_given_initial_configs_then_random_fill():
    first = {"lr": 1e-4, "lambda": 0.95, "clip": 0.2}
    pop = Population(default_space(), size=3, seed=0, initializer=given([first]))
    configs = pop.ask()
    assert configs[0] == first and configs[1] != first and configs[2] != configs[1]


@pytest.mark.parametrize("method", ["pbt", "pb2-star"])
def test_state_dict_resume_gives_identical_run(method):
    def rewards(pop, r):
        return [r + (c["lr"] * 1e3) - abs(c["clip"] - 0.3) for c in pop.ask()]

    full = Population(default_space(), size=4, method=method, seed=7)
    for r in range(1, 7):
        full.tell(r * 10, rewards(full, r))

    part = Population(default_space(), size=4, method=method, seed=7)
    for r in range(1, 4):
        part.tell(r * 10, rewards(part, r))
    state = json.loads(json.dumps(part.state_dict()))
    resumed = Population(default_space(), size=4, method=method, seed=123)
    resumed.load_state_dict(state)
    for r in range(4, 7):
        resumed.tell(r * 10, rewards(resumed, r))
    assert resumed.history.to_frame().equals(full.history.to_frame())
    assert resumed.ask() == full.ask()


def test_state_of_another_method_is_refused():
    state = Population(default_space(), size=2, method="pbt").state_dict()
    with pytest.raises(ConfigError, match="method"):
        Population(default_space(), size=2, method="pb2").load_state_dict(state)


def test_tell_member_ranks_one_report_against_the_latest_of_the_others():
    pop = Population(default_space(), size=4, method="pbt", seed=0)
    start = pop.ask()
    # Until everyone has reported, the silent members are last: no one is cloned.
    assert isinstance(pop.tell_member(0, 10, 1.0), Keep)
    assert isinstance(pop.tell_member(1, 11, 5.0), Keep)
    assert isinstance(pop.tell_member(2, 12, 3.0), Keep)
    assert isinstance(pop.tell_member(3, 13, 4.0), Keep)  # member 0 is last now, not 3
    # Member 0's next report is still the worst latest reward: it clones the best (1).
    decision = pop.tell_member(0, 20, 2.0)
    assert isinstance(decision, Clone) and decision.source == 1
    assert pop.ask()[0] == decision.config and decision.config != start[0]
    frame = pop.history.to_frame()
    assert frame["step"].tolist() == [10, 11, 12, 13, 20]
    assert frame["member"].tolist() == [0, 1, 2, 3, 0]
    assert frame["clone_source"].tolist() == [-1, -1, -1, -1, 1]
    assert frame["lr"].iloc[-1] == start[0]["lr"]  # the config it trained with until step 20


def test_tell_member_protocol_errors_and_resume():
    pop = Population(default_space(), size=2, method="pb2-star", seed=0)
    pop.tell_member(0, 10, 1.0)
    with pytest.raises(PopulationStateError, match="member 0's sync points must increase"):
        pop.tell_member(0, 10, 2.0)
    with pytest.raises(PopulationStateError, match="asynchronously"):
        pop.tell(20, [1.0, 2.0])
    with pytest.raises(ConfigError, match=r"not in 0\.\.1"):
        pop.tell_member(2, 30, 1.0)
    synchronous = Population(default_space(), size=2, method="pb2-star", seed=0)
    synchronous.tell(10, [1.0, 2.0])
    with pytest.raises(PopulationStateError, match="synchronously"):
        synchronous.tell_member(0, 20, 1.0)
    state = json.loads(json.dumps(pop.state_dict()))
    again = Population(default_space(), size=2, method="pb2-star", seed=0)
    again.load_state_dict(state)
    for member, step, reward in [(1, 12, 0.5), (0, 20, 0.1), (1, 22, 0.7), (0, 30, 0.2)]:
        assert again.tell_member(member, step, reward) == pop.tell_member(member, step, reward)


def test_asynchronous_bridge_row_starts_from_the_donors_latest_reward():
    pop = Population(default_space(), size=2, method="pbt", seed=0, quantile=0.5)
    pop.tell_member(0, 10, 1.0)
    pop.tell_member(1, 12, 5.0)
    pop.tell_member(0, 20, 2.0)  # worst latest: clones member 1, whose latest is 5.0 (step 12)
    pop.tell_member(0, 30, 9.0)
    data = pop.history.surrogate_data()
    row = int(np.flatnonzero(data.time == 30)[0])
    assert data.reward_before[row] == 5.0
    # It continued from the donor's weights at step 12: the interval is 12 -> 30.
    assert data.target[row] == pytest.approx((9.0 - 5.0) / (30 - 12))


def test_an_asynchronous_clone_continues_from_its_donors_step():
    # Ray rewinds a cloned trial to its donor's checkpoint: its next report may come before
    # its own last one, and its surrogate row spans the time since the donor's report.
    pop = Population(default_space(), size=2, method="pbt", seed=0, quantile=0.5)
    pop.tell_member(1, 10, 5.0)
    pop.tell_member(0, 30, 1.0)
    clone = pop.tell_member(0, 40, 2.0)  # worst latest reward: clones member 1 (step 10)
    assert isinstance(clone, Clone) and clone.source == 1
    with pytest.raises(PopulationStateError, match="after 10"):
        pop.tell_member(0, 10, 6.0)
    pop.tell_member(0, 20, 7.0)  # the donor's step + 10: allowed, though below 40
    data = pop.history.surrogate_data()
    row = int(np.flatnonzero((data.member == 0) & (data.time == 20))[0])
    assert data.reward_before[row] == 5.0
    assert data.target[row] == pytest.approx((7.0 - 5.0) / (20 - 10))
