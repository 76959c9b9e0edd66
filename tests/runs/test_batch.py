"""Runs trained together: same results as alone, failures isolated, a killed batch resumes."""

import json

import pandas as pd
import pytest

from metapbt import ConfigError
from metapbt.errors import MetaPBTError
from metapbt.runs import batch as batch_module
from metapbt.runs.batch import RunJob, run_batch
from metapbt.runs.config import RunConfig
from metapbt.runs.outputs import PHASES
from metapbt.runs.resolve import batch_key

PROTOCOL = {"budget": 6000, "interval": 2000, "population": 3}
SETTINGS = [("pb2-star", "neptune", 0), ("pbt", "neptune", 1), ("random", "neptune", 2)]
CONFIGS = [RunConfig(method=m, context=c, seed=s, **PROTOCOL) for m, c, s in SETTINGS]


class KilledError(Exception):
    pass


def _history(path):
    return pd.read_parquet(path / "history.parquet")


@pytest.fixture(scope="module")
def batched(tmp_path_factory):
    root = tmp_path_factory.mktemp("batch")
    results = run_batch([RunJob(c, root / f"run{i}") for i, c in enumerate(CONFIGS)])
    return root, results


def test_a_run_gives_the_same_history_in_a_batch_as_alone(batched, tmp_path):
    root, results = batched
    assert [r["method"] for r in results] == ["pb2-star", "pbt", "random"]
    for i, config in enumerate(CONFIGS):
        [alone] = run_batch([RunJob(config, tmp_path / f"alone{i}")])
        pd.testing.assert_frame_equal(_history(tmp_path / f"alone{i}"), _history(root / f"run{i}"))
        assert alone["final_best"] == results[i]["final_best"]
        assert alone["context_values"] == results[i]["context_values"]


def test_every_run_of_a_batch_writes_the_outputs_of_a_run(batched):
    root, _ = batched
    for i, config in enumerate(CONFIGS):
        summary = json.loads((root / f"run{i}" / "summary.json").read_text())
        assert summary["seed"] == config.seed and summary["context"] == config.context
        assert len(summary["best_per_round"]) == config.rounds
        assert (root / f"run{i}" / "run.png").exists()
        assert (root / f"run{i}" / "checkpoint.msgpack").exists()


def test_every_run_gets_its_share_of_where_the_batchs_time_went(batched):
    root, _ = batched
    timings = [json.loads((root / f"run{i}" / "timings.json").read_text()) for i in range(3)]
    assert all(t == timings[0] for t in timings)  # equal shares of one batch
    assert timings[0]["runs_in_batch"] == 3
    seconds = timings[0]["seconds"]
    assert list(seconds) == list(PHASES)
    assert all(v >= 0 for v in seconds.values())
    assert seconds["train"] > 0 and seconds["evaluate"] > 0 and seconds["explore"] > 0


def test_a_failing_run_is_reported_and_the_others_go_on(tmp_path):
    empty = tmp_path / "no-meta"
    empty.mkdir()
    bad = RunConfig(method="meta-prior", context="neptune", metadata=str(empty), **PROTOCOL)
    results = run_batch([RunJob(CONFIGS[0], tmp_path / "good"), RunJob(bad, tmp_path / "bad")])
    assert isinstance(results[1], Exception) and not isinstance(results[0], Exception)
    assert not (tmp_path / "bad" / "summary.json").exists()
    assert (tmp_path / "good" / "summary.json").exists()
    with pytest.raises(MetaPBTError):  # a lone run raises instead
        run_batch([RunJob(bad, tmp_path / "bad2")], raise_errors=True)


@pytest.mark.slow  # one run's kill and resume: test_run.py; kills at any instant: test_chaos.py
def test_a_killed_batch_resumes_every_run_to_the_same_history(batched, tmp_path, monkeypatch):
    root, _ = batched
    jobs = [RunJob(c, tmp_path / f"run{i}") for i, c in enumerate(CONFIGS)]

    def kill_in_round_two(index, report):
        if report.round == 2 and index == 1:
            raise KilledError

    with pytest.raises(KilledError):
        run_batch(jobs, on_round=kill_in_round_two)
    # killed between two runs' round-2 files: runs 0 and 1 have 2 rounds, run 2 has 1
    assert [len(_history(j.out)) // 3 for j in jobs] == [2, 2, 1]
    built = []
    monkeypatch.setattr(batch_module, "make_trainer", lambda *a: built.append(a))
    with pytest.raises(ConfigError, match="same number of rounds"):
        run_batch([RunJob(j.config, j.out, resume=True) for j in jobs])
    assert built == []  # refused before anything was built
    monkeypatch.undo()
    run_batch([RunJob(j.config, j.out, resume=True) for j in jobs[:2]])
    run_batch([RunJob(jobs[2].config, jobs[2].out, resume=True)])
    for i in range(3):
        pd.testing.assert_frame_equal(_history(tmp_path / f"run{i}"), _history(root / f"run{i}"))


def test_runs_of_other_envs_contexts_or_protocols_do_not_share_a_batch(tmp_path):
    other = RunConfig(env="acrobot", **PROTOCOL)
    assert batch_key(other) != batch_key(CONFIGS[0])
    assert batch_key(RunConfig(context="earth", **PROTOCOL)) != batch_key(CONFIGS[0])
    # methods and seeds may differ; a context is compared by its values
    assert batch_key(CONFIGS[2]) == batch_key(CONFIGS[1]) == batch_key(CONFIGS[0])
    same = RunConfig(context="gravity=9.8", **PROTOCOL)
    assert batch_key(same) == batch_key(RunConfig(context="earth", **PROTOCOL))
    with pytest.raises(ConfigError, match="share env, context, preset and protocol"):
        run_batch([RunJob(CONFIGS[0], tmp_path / "a"), RunJob(other, tmp_path / "b")])


@pytest.mark.slow  # per-member contexts in one program: tests/engine/test_any_env.py
def test_contexts_of_one_env_mix_in_a_batch_with_the_same_history_as_alone(batched, tmp_path):
    root, _ = batched
    earth = RunConfig(method="pbt", context="earth", seed=1, **PROTOCOL)
    results = run_batch([RunJob(CONFIGS[0], tmp_path / "neptune"), RunJob(earth, tmp_path / "e")])
    assert results[0]["context_values"] != results[1]["context_values"]
    # run0 of the fixture trained with neptune's parameters as constants (alone: tested above)
    pd.testing.assert_frame_equal(_history(tmp_path / "neptune"), _history(root / "run0"))


def test_which_runs_may_mix_contexts():
    earth, neptune = (RunConfig(context=c, **PROTOCOL) for c in ("earth", "neptune"))
    assert batch_key(earth, mix_contexts=True) == batch_key(neptune, mix_contexts=True)
    assert batch_key(earth) != batch_key(neptune)
    acrobot = RunConfig(env="acrobot", **PROTOCOL)
    assert batch_key(acrobot, mix_contexts=True) != batch_key(earth, mix_contexts=True)
    lander = RunConfig(env="lunar_lander", preset="box2d", budget=8000, interval=4000)
    moon = lander.model_copy(update={"context": "neptune"})
    assert batch_key(lander, mix_contexts=True) != batch_key(moon, mix_contexts=True)


@pytest.mark.parametrize(
    ("env", "context", "preset", "interval"),
    [
        pytest.param(  # the host trainer's run: tests/engine/test_host_trainer.py
            "lunar_lander", "leg_height=12", "classic", 2000, marks=pytest.mark.slow
        ),
        pytest.param(
            "inverted_pendulum", "earth", "brax-fast", 51_200, marks=pytest.mark.slow
        ),  # a Brax compilation: in the slow job
    ],
)
def test_host_and_brax_runs_give_the_same_history_in_a_batch_as_alone(
    tmp_path, env, context, preset, interval
):
    configs = [
        RunConfig(
            env=env,
            context=context,
            method=m,
            seed=s,
            preset=preset,
            population=2,
            budget=2 * interval,
            interval=interval,
        )
        for m, s in (("pbt", 0), ("pb2-star", 1))
    ]
    together = run_batch([RunJob(c, tmp_path / f"b{i}") for i, c in enumerate(configs)])
    for i, config in enumerate(configs):
        [alone] = run_batch([RunJob(config, tmp_path / f"a{i}")])
        pd.testing.assert_frame_equal(_history(tmp_path / f"a{i}"), _history(tmp_path / f"b{i}"))
        assert alone["final_best"] == together[i]["final_best"]
