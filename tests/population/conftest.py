import numpy as np
import pytest

from metapbt.population.explorers.meta import MetaSource
from metapbt.population.meta_io import save_run
from metapbt.toy import MovingOptimum, run_toy


def toy_store(root, space=None, tasks=("toy a", "toy b", "toy c"), seeds=(0, 1)):
    """A meta-data store of PB2* toy runs whose optimum paths differ slightly per task."""
    for k, task in enumerate(tasks):
        problem = MovingOptimum(
            start=(0.15 + 0.1 * k, 0.85, 0.2),
            end=(0.85, 0.15, 0.8),
            interval=40_000,
            budget=400_000,
        )
        for seed in seeds:
            result = run_toy("pb2-star", seed, problem=problem, space=space)
            save_run(
                root,
                result.population.history,
                task=task,
                seed=seed,
                method="pb2-star",
                env="toy",
                context={"k": float(k)},
            )
    return root


@pytest.fixture(scope="session")
def meta_store(tmp_path_factory):
    return toy_store(tmp_path_factory.mktemp("meta"))


@pytest.fixture(scope="session")
def meta_source(meta_store):
    return MetaSource(meta_store, "toy a")


@pytest.fixture
def rng():
    return np.random.default_rng(0)
