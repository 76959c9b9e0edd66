"""MetaPrior and TAF on a mixed space: PB2-Mix's categorical step with meta tasks whose GPs
condition on the category; MultiTask refuses one."""

import numpy as np
import pytest

from metapbt import Categorical, ConfigError, Float, Population, SearchSpace
from metapbt.metadata.source import MetaSource, TaskRef
from metapbt.population import methods
from metapbt.population.explorers.meta_models import fitted_tasks
from metapbt.population.meta_io import save_run
from metapbt.surrogates import TimeVaryingMixture
from metapbt.surrogates.gp import predict
from metapbt.toy import MovingOptimum, run_toy

SPACE = SearchSpace(
    {"x": Float(0.0, 1.0), "y": Float(0.0, 1.0), "cat": Categorical(("good", "poor", "other"))}
)
# "good" trains at the full rate for the whole run, the two others at a fifth of it.
PROBLEM = MovingOptimum(
    start=(0.3, 0.7),
    end=(0.7, 0.3),
    budget=240_000,
    interval=40_000,
    choices=("good", "poor", "other"),
    switch=1.0,
    off=0.2,
)


@pytest.fixture(scope="module")
def mixed_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("mixed")
    for k, task in enumerate(("toy a", "toy b")):
        for seed in (0, 1):
            history = run_toy("pbt", seed + 10 * k, size=6, problem=PROBLEM, space=SPACE)
            save_run(
                root,
                history.population.history,
                task=task,
                seed=seed,
                method="pbt",
                env="toy",
                context={"k": float(k)},
            )
    return root


def test_meta_gps_condition_on_the_category(mixed_store):
    source = MetaSource(mixed_store, TaskRef("toy", {"k": 9.0}, "toy target"))
    tasks, gps = fitted_tasks(source, SPACE, log_space=True)
    assert len(gps) == 2 and all(isinstance(g.model.kernel, TimeVaryingMixture) for g in gps)
    for task, gp in zip(tasks, gps, strict=True):
        x, _ = task.rows(SPACE, True)
        assert set(np.unique(x[:, 2])) <= {0.0, 1.0, 2.0} and x[:, 2].max() == 2.0  # unclipped
        good, poor = x.copy(), x.copy()
        good[:, 2], poor[:, 2] = 0.0, 1.0  # the category column: "good" is index 0
        mean_good = np.asarray(predict(gp, good.astype(np.float32))[0]).mean()
        mean_poor = np.asarray(predict(gp, poor.astype(np.float32))[0]).mean()
        assert mean_good > mean_poor + 0.1, (task.task.task, mean_good, mean_poor)


@pytest.mark.parametrize("name", ["meta-prior", "taf"])
def test_mixed_meta_methods_explore_valid_mixed_configs(mixed_store, name):
    source = MetaSource(mixed_store, TaskRef("toy", {"k": 9.0}, "toy target"))
    method = methods.make(name, metadata=source)
    result = run_toy(method, 3, problem=PROBLEM, space=SPACE)
    frame = result.population.history.to_frame()
    assert set(frame["cat"]) <= {"good", "poor", "other"}
    assert frame[["x", "y"]].stack().between(0.0, 1.0).all()
    explorer = method.explorer
    assert explorer.weights, "the RGPE weights were never computed"


def test_multitask_refuses_a_mixed_space(mixed_store):
    source = MetaSource(mixed_store, TaskRef("toy", {"k": 9.0}, "toy target"))
    with pytest.raises(ConfigError, match="meta-prior or taf"):
        Population(SPACE, size=4, method=methods.make("multitask", metadata=source), seed=0)
