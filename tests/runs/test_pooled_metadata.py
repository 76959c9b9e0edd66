"""metadata = "pooled": every env's bundled planets store, the target left out across envs."""

import numpy as np
import pytest

from metapbt import Population
from metapbt.errors import ConfigError, MetaDataError
from metapbt.metadata.source import MetaSource, TaskRef
from metapbt.population import methods
from metapbt.population.meta_io import save_run
from metapbt.population.space import default_space
from metapbt.runs.config import RunConfig
from metapbt.runs.resolve import pooled_metadata, resolve
from tests.population.conftest import SPACE, bump_history


def test_the_pool_is_every_planets_store_and_no_grid(tmp_path):
    for name in ("cart_pole", "acrobot", "cart_pole@length"):
        (tmp_path / name).mkdir()
    (tmp_path / "README").write_text("not a store")
    assert [p.name for p in pooled_metadata(tmp_path)] == ["acrobot", "cart_pole"]
    with pytest.raises(ConfigError, match="no bundled meta-data to pool"):
        pooled_metadata(tmp_path / "acrobot")
    with pytest.raises(MetaDataError, match="at least one store"):
        MetaSource((), None)


@pytest.mark.parametrize("context", ["venus", "gravity=8.89092762487258"])
def test_pooled_meta_data_leaves_the_target_out_across_envs(context):
    config = RunConfig(method="meta-prior", metadata="pooled", context=context)
    source = resolve(config).method().explorer.meta.source
    tasks = sorted(t.task.task for t in source.load(default_space().to_dict()))
    assert len(tasks) == 19 and "cart_pole venus" not in tasks
    assert {t.split()[0] for t in tasks} == {"acrobot", "cart_pole", "mountain_car", "pendulum"}
    assert "acrobot venus" in tasks  # another env's venus is another task


def test_rgpe_weighs_all_19_pooled_tasks(tmp_path):
    """Two envs' stores (10 + 10 tasks, one the target): RGPE weighs the other 19."""
    for env in ("toy", "toy2"):
        for k in range(10):
            centre = 0.05 + 0.09 * k
            task = f"{env} centre={centre!r}"
            save_run(
                tmp_path / env,
                bump_history(k, centre=centre),
                task=task,
                seed=0,
                method="pb2",
                env=env,
                context={"centre": centre},
            )
    target = TaskRef("toy", {"centre": 0.05 + 0.09 * 3}, "the target")
    source = MetaSource((tmp_path / "toy", tmp_path / "toy2"), target)
    pop = Population(SPACE, 4, methods.make("meta-prior", metadata=source), seed=0)
    rewards = np.zeros(4)
    for r in range(1, 4):
        for m, c in enumerate(pop.ask()):
            rewards[m] += np.exp(-((c["x"] - 0.3) ** 2) / 0.02)
        pop.tell(r * 100, list(rewards))
    weights = pop.method.explorer.weights[-1]
    tasks = {k for k in weights if k not in ("step", "target")}
    assert len(tasks) == 19 and "toy centre=0.32" not in tasks and "toy2 centre=0.32" in tasks
    assert sum(v for k, v in weights.items() if k != "step") == pytest.approx(1.0)


def test_meta_task_fits_are_shared_by_the_runs_of_a_process_until_a_file_changes(tmp_path):
    import os

    from metapbt.population.explorers.meta_models import fitted_tasks

    for k in range(2):
        centre = 0.2 + 0.5 * k
        save_run(
            tmp_path,
            bump_history(k, centre=centre),
            task=f"toy c{k}",
            seed=0,
            method="pb2",
            env="toy",
            context={"centre": centre},
        )
    target = TaskRef("toy", {"centre": 0.9}, "toy target")
    first = fitted_tasks(MetaSource(tmp_path, target), SPACE, True)
    again = fitted_tasks(MetaSource(tmp_path, target), SPACE, True)
    assert again[1] is first[1] and len(first[1]) == 2
    other = fitted_tasks(MetaSource(tmp_path, TaskRef("toy", {"centre": 0.2}, "c0")), SPACE, True)
    assert len(other[1]) == 1  # another target: its own fits, the target left out
    path = next(tmp_path.glob("*/*.parquet"))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert fitted_tasks(MetaSource(tmp_path, target), SPACE, True)[1] is not first[1]
