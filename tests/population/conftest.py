import numpy as np
import pytest

from metapbt import Float, SearchSpace
from metapbt.metadata.source import MetaSource, TaskRef
from metapbt.population.history import History
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


def source(store, name, **context):
    """A MetaSource whose target is the task ``name`` of env ``toy`` with ``context``."""
    return MetaSource(store, TaskRef("toy", context, name))


@pytest.fixture(scope="session")
def meta_source(meta_store):
    return source(meta_store, "toy a", k=0.0)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


SPACE = SearchSpace({"x": Float(0.0, 1.0)})


def bump_history(seed, centre=0.8, rounds=8, size=4, noise=0.02):
    """Reward grows fastest near ``centre``: a stationary 1-d task."""
    rng = np.random.default_rng(seed)
    history, rewards = History(SPACE), np.zeros(size)
    for s in range(1, rounds + 1):
        configs = [SPACE.sample(rng) for _ in range(size)]
        for m, c in enumerate(configs):
            rewards[m] += np.exp(-((c["x"] - centre) ** 2) / 0.02) + noise * rng.standard_normal()
        history.add_round(s * 100, configs, list(rewards), [-1] * size)
    return history


@pytest.fixture(scope="module")
def bump_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("bump")
    for seed in range(3):
        save_run(
            root,
            bump_history(seed),
            task="bump same",
            seed=seed,
            method="pb2",
            env="toy",
            context={"centre": 0.8},
        )
        save_run(
            root,
            bump_history(seed, centre=0.1),
            task="bump far",
            seed=seed,
            method="pb2",
            context={"centre": 0.1},
            env="toy",
        )
    return root
