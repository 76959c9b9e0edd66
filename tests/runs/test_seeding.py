"""Seeding per (seed, task), the legacy "shared" seeding, and initial draws from a range."""

import json

import numpy as np
import pytest

from metapbt.errors import ConfigError
from metapbt.population.space import default_space
from metapbt.runs.checkpoint import Checkpoint
from metapbt.runs.config import LEGACY, RunConfig, derived_seed, with_legacy
from metapbt.runs.resolve import resolve
from tests.engine.helpers import portfolio_file


def initial(**settings):
    return resolve(RunConfig(**settings)).population().ask()


def test_task_seeding_draws_per_task_and_equally_across_methods():
    earth = initial(context="earth", seed=3)
    assert initial(context="saturn", seed=3) != earth
    assert initial(env="pendulum", context="earth", seed=3) != earth
    assert initial(context="earth", seed=4) != earth
    # Common random numbers: every method of one (seed, task) starts from one population.
    for method in ("pbt", "random", "pb2", "meta-prior"):
        assert initial(context="earth", seed=3, method=method) == earth
    config = RunConfig(context="saturn", seed=3)
    assert config.random_seed == derived_seed(3, "cart_pole saturn") != 3
    assert 0 <= config.random_seed < 2**31


def test_shared_seeding_is_the_seed_alone_on_every_task():
    shared = [initial(context=c, seed=3, seeding="shared") for c in ("earth", "saturn", "venus")]
    assert shared[0] == shared[1] == shared[2]
    assert RunConfig(seed=3, seeding="shared").random_seed == 3
    assert shared[0] != initial(context="earth", seed=3)
    with pytest.raises(ConfigError, match="seeding"):
        RunConfig(seeding="per-task")


def test_derived_seeds_of_20_tasks_and_10_seeds_are_distinct():
    tasks = [f"{e} {p}" for e in ("a", "b", "c", "d") for p in ("earth", "venus", "x", "y", "z")]
    seeds = {derived_seed(s, t) for s in range(10) for t in tasks}
    assert len(seeds) == 200


def test_init_ranges_draw_the_start_from_part_of_the_space():
    configs = initial(population=16, init_ranges={"lr": (6.31e-4, 1e-3)})
    lrs = np.array([c["lr"] for c in configs])
    assert ((lrs >= 6.31e-4) & (lrs <= 1e-3)).all()
    clips = {c["clip"] for c in configs}
    assert len(clips) == 16 and min(clips) >= 0.1 and max(clips) <= 0.5  # the rest as usual
    plain = initial(population=16)
    assert min(c["lr"] for c in plain) < 6.31e-4  # log-uniform over [1e-5, 1e-3]


def test_init_ranges_fill_the_members_beyond_a_portfolio(tmp_path):
    path = portfolio_file(tmp_path, ["cart_pole venus", "cart_pole uranus"])
    configs = initial(
        context="neptune", population=6, portfolio=str(path), init_ranges={"lr": (5e-4, 6e-4)}
    )
    assert [c["lr"] for c in configs[:2]] == pytest.approx([1e-4, 2e-4])  # the entries first
    assert all(5e-4 <= c["lr"] <= 6e-4 for c in configs[2:])


@pytest.mark.parametrize(
    ("ranges", "match"),
    [
        ({"lr": (1e-6, 1e-4)}, r"1e-05 <= low < high <= 0.001"),
        ({"lr": (1e-4, 1e-4)}, "low < high"),
        ({"gamma": (0.9, 0.99)}, "not a parameter"),
        ({}, "at least one"),
    ],
)
def test_impossible_init_ranges_name_the_field(ranges, match):
    with pytest.raises(ConfigError, match=f"init_ranges.*{match}"):
        RunConfig(init_ranges=ranges)


def test_narrowed_space_keeps_scales_and_order():
    space = default_space()
    narrowed = space.narrowed({"lr": (1e-4, 1e-3)})
    assert narrowed.names == space.names and narrowed["lr"].log
    assert (narrowed["lr"].low, narrowed["clip"].low) == (1e-4, space["clip"].low)


def test_a_setting_older_files_lack_counts_as_what_they_ran_with(tmp_path):
    old = RunConfig(seeding="shared").model_dump(mode="json")
    for key in LEGACY:
        old.pop(key)
    assert with_legacy(old) == RunConfig(seeding="shared").model_dump(mode="json")
    ckpt = Checkpoint(old, state=None, key=None, population={})
    ckpt.check_config(RunConfig(seeding="shared").model_dump(mode="json"), tmp_path)
    with pytest.raises(ConfigError, match="resume with the same settings"):
        ckpt.check_config(RunConfig().model_dump(mode="json"), tmp_path)
    # The JSON form round-trips (ranges as lists, as a checkpoint stores them).
    ranged = RunConfig(init_ranges={"lr": (1e-4, 1e-3)}).model_dump(mode="json")
    assert json.loads(json.dumps(ranged)) == ranged
