"""Schedule transfer: tracing a run's best schedule, scoring, greedy choice, and the replay."""

import math

import numpy as np
import pandas as pd
import pytest

from metapbt import Clone, Float, Population, SearchSpace
from metapbt.errors import ConfigError, MetaDataError
from metapbt.population import methods
from metapbt.population.explorers.schedule import ScheduleExplorer, schedule_portfolio
from metapbt.population.initializers import given
from metapbt.population.schedules import Schedule, score_matrix, select_schedules, trace_best
from tests.population.conftest import source, toy_store

SPACE = SearchSpace({"x": Float(0.0, 1.0)})


def _rows(table):
    """Rows ``(time, member, reward_before, x, reward_after)`` as a stored run (interval 10)."""
    frame = pd.DataFrame(table, columns=["time", "member", "reward_before", "x", "after"])
    frame["target"] = (frame["after"] - frame["reward_before"]) / 10
    return frame.drop(columns="after")


def test_tracing_follows_the_best_member_back_through_its_clone():
    # Two members, sync points 10 (no rows: no reward before it), 20, 30, 40. Member 1 ends
    # (10, 20] best (5 > 2); member 0 clones it at 20 (starts (20, 30] from 5.0), trains x=0.7,
    # keeps its weights at 30, trains x=0.9 and ends best (12). Its schedule: member 1's x in
    # (10, 20], then member 0's.
    rows = _rows(
        [
            (20, 0, 1.0, 0.1, 2.0),
            (20, 1, 1.0, 0.2, 5.0),
            (30, 0, 5.0, 0.7, 8.0),  # starts from member 1's 5.0: a clone of member 1
            (30, 1, 5.0, 0.2, 6.0),
            (40, 0, 8.0, 0.9, 12.0),
            (40, 1, 6.0, 0.2, 7.0),
        ]
    )
    schedule = trace_best(rows, SPACE, interval=10, source="demo")
    assert schedule.ends == (10, 20, 30, 40)
    assert [c["x"] for c in schedule.configs] == [
        0.2,
        0.2,
        0.7,
        0.9,
    ]  # the first replays the second
    assert schedule.final == pytest.approx(12.0)
    assert schedule.source == "demo"


def test_a_member_that_kept_its_weights_stays_followed_even_if_another_matches():
    # Member 1 ends best; at 20 both members ended at 3.0, and member 1 started 30 from 3.0:
    # it kept its own weights (preferred over member 0's equal reward).
    rows = _rows(
        [
            (20, 0, 1.0, 0.1, 3.0),
            (20, 1, 1.0, 0.6, 3.0),
            (30, 0, 3.0, 0.1, 3.5),
            (30, 1, 3.0, 0.8, 9.0),
        ]
    )
    assert [c["x"] for c in trace_best(rows, SPACE, 10).configs] == [0.6, 0.6, 0.8]


def test_schedule_lookup_by_the_step_an_interval_starts_at():
    schedule = Schedule((10, 20, 30), ({"x": 0.1}, {"x": 0.2}, {"x": 0.3}))
    assert [schedule.at(s)["x"] for s in (0, 9, 10, 19, 20, 30, 500)] == [
        0.1,
        0.1,
        0.2,
        0.2,
        0.3,
        0.3,
        0.3,
    ]
    again = Schedule.from_json(schedule.to_json(), SPACE)
    assert again.ends == schedule.ends and again.configs == schedule.configs
    assert math.isnan(again.final)
    with pytest.raises(ConfigError, match="increase"):
        Schedule((10, 10), ({"x": 0.1}, {"x": 0.2}))
    with pytest.raises(ConfigError, match="one configuration per interval"):
        Schedule((10,), ())


def test_empty_rows_are_refused_with_the_source():
    with pytest.raises(MetaDataError, match="run A"):
        trace_best(_rows([]), SPACE, 10, source="run A")


class _LinearGP:
    """A stand-in GP whose mean is ``weight`` times the hyperparameter column."""

    def __init__(self, weight):
        self.weight = weight

    def predict(self, x):
        x = np.asarray(x)
        return self.weight * x[:, 2], np.ones(len(x))


class _Task:
    def __init__(self):
        from metapbt.metadata.scaling import MetaNormaliser

        time = np.array([10.0, 20.0, 30.0])
        reward = np.array([0.0, 1.0, 2.0])
        self.task = type("Rows", (), {"time": time, "reward_before": reward})()
        self.norm = MetaNormaliser.fit(time, reward, np.array([0.0, 1.0, 2.0]))


def test_scores_are_each_tasks_mean_prediction_along_the_schedule():
    low = Schedule((10, 20), ({"x": 0.1}, {"x": 0.3}))
    high = Schedule((10, 20), ({"x": 0.9}, {"x": 0.7}))
    scores = score_matrix([low, high], [_Task(), _Task()], [_LinearGP(1.0), _LinearGP(-1.0)], SPACE)
    np.testing.assert_allclose(scores, [[0.2, -0.2], [0.8, -0.8]])


def test_greedy_choice_covers_tasks_and_cycles_when_short():
    scores = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    # Coverage: the best on task 0 first, then the one that adds task 1 (not the runner-up).
    assert select_schedules(scores, 2) == [0, 2]
    assert select_schedules(scores[:2], 4) == [0, 1, 0, 1]
    with pytest.raises(ConfigError, match="no schedule"):
        select_schedules(np.zeros((0, 2)), 2)


@pytest.fixture(scope="module")
def toy_source(tmp_path_factory):
    from metapbt.population.space import default_space

    store = toy_store(tmp_path_factory.mktemp("schedules"), space=default_space())
    return source(store, "toy a", k=0.0), default_space()


def test_the_portfolio_leaves_the_target_out_and_starts_every_member_on_its_pick(toy_source):
    src, space = toy_source
    chosen, scores = schedule_portfolio(src, space, size=4)
    assert scores.shape == (4, 2)  # toy b and c, 2 seeds each; toy a (the target) left out
    assert all(not s.source.startswith("toy a") for s in chosen)
    pop = Population(space, 4, methods.make("schedule-replay", metadata=src), seed=0)
    assert pop.ask() == [s.at(0) for s in chosen]


def test_kept_members_replay_their_schedule_and_clones_take_their_donors(toy_source):
    src, space = toy_source
    pop = Population(space, 4, methods.make("schedule-pbt", metadata=src), seed=0)
    explorer = pop.method.explorer
    assert isinstance(explorer, ScheduleExplorer)
    for k in range(1, 6):
        step = k * 40_000
        decisions = pop.tell(step, [float(m * k) for m in range(4)])  # member 3 best
        for d in decisions:
            followed = explorer.follows[d.member]
            if isinstance(d, Clone):
                assert followed == explorer.follows[d.source]
            else:
                assert followed == d.member
            assert d.config == explorer.schedules[followed].at(step)


def test_replay_never_clones_and_resumes_from_its_state(toy_source):
    src, space = toy_source
    first = Population(space, 4, methods.make("schedule-pbt", metadata=src), seed=0)
    for k in (1, 2):
        first.tell(k * 40_000, [1.0, 2.0, 3.0, 4.0])
    second = Population(space, 4, methods.make("schedule-pbt", metadata=src), seed=0)
    second.load_state_dict(first.state_dict())
    assert second.method.explorer.follows == first.method.explorer.follows
    assert second.tell(120_000, [4.0, 3.0, 2.0, 1.0]) == first.tell(120_000, [4.0, 3.0, 2.0, 1.0])
    replay = Population(space, 4, methods.make("schedule-replay", metadata=src), seed=0)
    assert not any(isinstance(d, Clone) for d in replay.tell(40_000, [1.0, 2.0, 3.0, 4.0]))


def test_a_schedule_method_refuses_a_second_start(toy_source):
    src, space = toy_source
    with pytest.raises(ConfigError, match="chooses every member's start itself"):
        Population(
            space,
            4,
            methods.make("schedule-replay", metadata=src),
            initializer=given([space.sample(np.random.default_rng(0))]),
        )


def test_a_stored_run_without_a_clock_is_a_named_error(tmp_path):
    from metapbt.metadata.source import MetaSource, TaskRef
    from metapbt.metadata.store import MetaStore

    space = SearchSpace({"x": Float(0.0, 1.0)})
    rows = _rows([(20, 0, 1.0, 0.3, 2.0), (20, 1, 1.0, 0.6, 3.0)])  # one sync point
    for task, k in (("toy b", 1.0), ("toy c", 2.0)):
        MetaStore(tmp_path).write(
            task,
            rows,
            space=space.to_dict(),
            hp_names=["x"],
            seed=0,
            method="pb2",
            env="toy",
            context={"k": k},
        )
    src = MetaSource(tmp_path, TaskRef("toy", {"k": 0.0}, "toy a"))
    with pytest.raises(ConfigError, match="no clock"):
        schedule_portfolio(src, space, size=2)
