import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from metapbt import Float, SearchSpace, default_space
from metapbt.metadata.store import MetaDataError, MetaStore, task_id
from metapbt.population.history import History
from metapbt.population.meta_io import meta_rows, save_run


def history(space, shift=0.0, steps=4, size=2):
    h = History(space)
    rng = np.random.default_rng(0)
    for s in range(1, steps + 1):
        configs = [space.sample(rng) for _ in range(size)]
        h.add_round(s * 100, configs, [s + shift + m for m in range(size)], [-1] * size)
    return h


def fill(root, space):
    for task in ("cart_pole earth", "cart_pole earth2", "cart_pole neptune"):
        for seed in (0, 1):
            save_run(
                root,
                history(space, shift=seed),
                task=task,
                seed=seed,
                method="pb2",
                env="cart_pole",
                context={"gravity": 9.8},
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


def test_target_is_left_out_by_exact_id_only(tmp_path):
    fill(tmp_path, default_space())
    tasks = MetaStore(tmp_path).tasks(default_space().to_dict(), exclude="cart_pole earth")
    # "cart_pole earth2" contains the target's id as a substring and must stay.
    assert [t.task for t in tasks] == ["cart_pole earth2", "cart_pole neptune"]


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
