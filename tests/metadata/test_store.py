import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from metapbt import Float, SearchSpace, default_space
from metapbt.envs.contexts import task_id
from metapbt.metadata.source import MetaSource, TaskRef, same_context
from metapbt.metadata.store import MetaDataError, MetaStore
from metapbt.population.history import History
from metapbt.population.meta_io import meta_rows, save_run


def history(space, shift=0.0, steps=4, size=2):
    h = History(space)
    rng = np.random.default_rng(0)
    for s in range(1, steps + 1):
        configs = [space.sample(rng) for _ in range(size)]
        h.add_round(s * 100, configs, [s + shift + m for m in range(size)], [-1] * size)
    return h


GRAVITY = {"cart_pole earth": 9.81, "cart_pole earth2": 9.9, "cart_pole neptune": 11.0}


def fill(root, space, protocol=None):
    for task, gravity in GRAVITY.items():
        for seed in (0, 1):
            save_run(
                root,
                history(space, shift=seed),
                task=task,
                seed=seed,
                method="pb2",
                env="cart_pole",
                context={"gravity": gravity, "length": 0.5},
                protocol=protocol,
            )


def test_round_trip_pools_seeds_per_task(tmp_path):
    space = default_space()
    fill(tmp_path, space)
    tasks = MetaStore(tmp_path).tasks(space.to_dict())
    assert [t.task for t in tasks] == ["cart_pole earth", "cart_pole earth2", "cart_pole neptune"]
    rows = meta_rows(history(space))
    assert len(tasks[0]) == 2 * len(rows) and tasks[0].seeds == (0, 1)
    assert np.all(np.diff(tasks[0].time) >= 0)
    assert tasks[0].hparams.shape == (len(tasks[0]), 3)


def test_target_is_left_out_by_its_context_values_not_its_id_string(tmp_path):
    fill(tmp_path, default_space())
    space = default_space().to_dict()
    # Another spelling of Earth's gravity is the same physical task: left out.
    same = TaskRef(
        "cart_pole", {"gravity": 9.81 * (1 + 1e-9), "length": 0.5}, "cart_pole gravity=9.81"
    )
    tasks = MetaStore(tmp_path).tasks(space, exclude=same.same_as)
    assert [t.task for t in tasks] == ["cart_pole earth2", "cart_pole neptune"]
    # "cart_pole earth2" contains the target's id as a substring and must stay.
    by_id = TaskRef("cart_pole", {"gravity": 5.0, "length": 0.5}, "cart_pole earth")
    assert [t.task for t in MetaStore(tmp_path).tasks(space, exclude=by_id.same_as)] == [
        "cart_pole earth2",
        "cart_pole neptune",
    ]
    # Another env with the same values is another task.
    other_env = TaskRef("mountain_car", {"gravity": 9.81, "length": 0.5}, "mountain_car x")
    assert len(MetaStore(tmp_path).tasks(space, exclude=other_env.same_as)) == 3


def test_same_context_compares_features_and_values():
    assert same_context({"g": 9.81, "l": 0.5}, {"l": 0.5, "g": 9.810000001})
    assert not same_context({"g": 9.81}, {"g": 9.82})
    assert not same_context({"g": 9.81}, {"g": 9.81, "l": 0.5})


def test_protocol_is_recorded_and_checked(tmp_path, caplog):
    space = default_space()
    fast = {"preset": "fast", "population": 4, "budget": 600_000, "interval": 40_000}
    fill(tmp_path, space, protocol=fast)
    _, meta = MetaStore(tmp_path).read(MetaStore(tmp_path).runs()[0])
    assert meta["protocol"] == fast
    target = TaskRef("cart_pole", {"gravity": 11.0, "length": 0.5}, "cart_pole neptune")
    same = MetaSource(tmp_path, target, protocol=fast, strict=True)
    assert [t.task.task for t in same.load(space.to_dict())] == [
        "cart_pole earth",
        "cart_pole earth2",
    ]
    paper = {**fast, "preset": "paper"}
    with pytest.raises(MetaDataError, match=r"another protocol.*paper.*drop --strict"):
        MetaSource(tmp_path, target, protocol=paper, strict=True).load(space.to_dict())
    with caplog.at_level("WARNING"):
        tasks = MetaSource(tmp_path, target, protocol=paper).load(space.to_dict())
    assert len(tasks) == 2 and "another protocol" in caplog.text


def test_runs_without_a_recorded_protocol_are_refused_under_strict(tmp_path):
    fill(tmp_path, default_space())
    target = TaskRef("cart_pole", {"gravity": 11.0, "length": 0.5}, "cart_pole neptune")
    protocol = {"preset": "fast", "population": 4, "budget": 600_000, "interval": 40_000}
    with pytest.raises(MetaDataError, match="no recorded protocol"):
        MetaSource(tmp_path, target, protocol=protocol, strict=True).load(default_space().to_dict())


def test_a_store_of_only_the_target_is_refused(tmp_path):
    fill(tmp_path, default_space())
    target = TaskRef("cart_pole", {}, "x")
    everything = lambda env, context, name: True  # noqa: E731
    assert MetaStore(tmp_path).tasks(default_space().to_dict(), exclude=everything) == []
    only = MetaSource(tmp_path / "cart_pole__neptune", target)
    with pytest.raises(MetaDataError, match="no meta-data runs"):
        only.load(default_space().to_dict())


def test_mismatched_search_space_is_a_clear_error(tmp_path):
    fill(tmp_path, default_space())
    other = SearchSpace(
        {"lr": Float(1e-5, 1e-2, log=True), "lambda": Float(0.9, 0.99), "clip": Float(0.1, 0.5)}
    )
    with pytest.raises(MetaDataError, match="search space"):
        MetaStore(tmp_path).tasks(other.to_dict())


def test_corrupted_and_foreign_files_are_named(tmp_path):
    fill(tmp_path, default_space())
    bad = tmp_path / "cart_pole__neptune" / "pb2-seed0.parquet"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(MetaDataError, match=r"pb2-seed0\.parquet"):
        MetaStore(tmp_path).tasks(default_space().to_dict())
    bad.unlink()
    table = pa.table({"x": [1.0]}).replace_schema_metadata(
        {b"metapbt": json.dumps({"schema": "other/9"}).encode()}
    )
    pq.write_table(table, bad)
    with pytest.raises(MetaDataError, match="schema"):
        MetaStore(tmp_path).tasks(default_space().to_dict())


def test_empty_store_and_task_ids(tmp_path):
    with pytest.raises(MetaDataError, match="no meta-data runs"):
        MetaStore(tmp_path / "none").tasks(default_space().to_dict())
    assert task_id("cart_pole", "earth") == "cart_pole earth"
    assert task_id("cart_pole", "length=0.7, gravity=12") == task_id(
        "cart_pole", "gravity=12.0,length=0.70"
    )


def test_meta_data_of_another_agent_is_refused_even_without_strict(tmp_path):
    space = SearchSpace({"lr": Float(1e-5, 1e-3, log=True)})  # a space both agents tune
    fast = {"preset": "classic", "population": 4, "budget": 100_000, "interval": 10_000}
    fill(tmp_path, space, protocol=fast)  # recorded before agents were: PPO's
    target = TaskRef("cart_pole", {"gravity": 11.0, "length": 0.5}, "cart_pole neptune")
    ppo = MetaSource(tmp_path, target, protocol={**fast, "agent": "ppo"}, strict=True)
    assert len(ppo.load(space.to_dict())) == 2
    dqn = MetaSource(tmp_path, target, protocol={**fast, "agent": "dqn"})
    with pytest.raises(MetaDataError, match=r"another agent than this run's 'dqn'.*by 'ppo'"):
        dqn.load(space.to_dict())
