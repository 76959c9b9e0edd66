"""Resolving a run once: its warm start, its target (recognised by its context values)."""

import pytest

from metapbt.runs.config import RunConfig
from metapbt.runs.resolve import resolve
from tests.engine.helpers import portfolio_file


@pytest.mark.parametrize(("context", "seen"), [("gravity=9.8", True), ("neptune", False)])
def test_a_portfolio_that_saw_the_target_under_another_id_warns(tmp_path, caplog, context, seen):
    path = portfolio_file(tmp_path, ["cart_pole earth", "cart_pole venus"])
    config = RunConfig(context=context, portfolio=str(path))
    with caplog.at_level("WARNING"):
        resolve(config)
    assert ("has seen the target" in caplog.text) == seen


def test_a_portfolio_scored_under_another_preset_warns(tmp_path, caplog):
    path = portfolio_file(tmp_path, ["cart_pole venus"], preset="paper")
    with caplog.at_level("WARNING"):
        resolve(RunConfig(context="neptune", portfolio=str(path)))
    assert "'paper' preset" in caplog.text


def test_the_target_is_the_resolved_context():
    target = resolve(RunConfig(context="gravity=9.8")).target
    assert target.same_as("cart_pole", dict(resolve(RunConfig(context="earth")).target.context))
    assert not target.same_as("cart_pole", dict(resolve(RunConfig(context="venus")).target.context))


def test_a_run_is_resolved_once(monkeypatch, tmp_path):
    """After the configuration is built, neither resolving it nor setting up its batch resolves
    the context again (every later step reads the resolved run)."""
    from metapbt import envs
    from metapbt.runs.batch import Batch, RunJob

    configs = [RunConfig(method="meta-prior", context="neptune", seed=s) for s in (0, 1)]
    calls = []
    real = envs.resolve_context
    monkeypatch.setattr(envs, "resolve_context", lambda *a: calls.append(a) or real(*a))
    resolved = resolve(configs[0])
    batch = Batch([RunJob(c, tmp_path / str(c.seed)) for c in configs])
    assert calls == []
    assert [r.resolved.context["gravity"] for r in batch.runs] == [resolved.context["gravity"]] * 2
    assert resolved.meta is not None and resolved.meta.stores[0].name == "cart_pole"
    assert resolved.target.name == "cart_pole neptune"


def test_meta_data_for_a_method_that_takes_none_is_refused_in_one_wording(tmp_path):
    from metapbt.errors import ConfigError
    from metapbt.population import methods

    with pytest.raises(ConfigError, match="does not use meta-data") as from_run:
        resolve(RunConfig(method="pb2", metadata=str(tmp_path)))
    with pytest.raises(ConfigError) as from_make:
        methods.check_metadata("pb2", given=True)
    assert str(from_run.value) == str(from_make.value)
