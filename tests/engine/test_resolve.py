"""Resolving a run's warm start: the target is recognised by its context values."""

import pytest

from metapbt.engine.config import RunConfig
from metapbt.engine.resolve import initializer_for, target_of
from metapbt.population.space import default_space
from tests.engine.helpers import portfolio_file


@pytest.mark.parametrize(("context", "seen"), [("gravity=9.8", True), ("neptune", False)])
def test_a_portfolio_that_saw_the_target_under_another_id_warns(tmp_path, caplog, context, seen):
    path = portfolio_file(tmp_path, ["cart_pole earth", "cart_pole venus"])
    config = RunConfig(context=context, portfolio=str(path))
    with caplog.at_level("WARNING"):
        initializer_for(config, default_space())
    assert ("has seen the target" in caplog.text) == seen


def test_a_portfolio_scored_under_another_preset_warns(tmp_path, caplog):
    path = portfolio_file(tmp_path, ["cart_pole venus"], preset="paper")
    with caplog.at_level("WARNING"):
        initializer_for(RunConfig(context="neptune", portfolio=str(path)), default_space())
    assert "'paper' preset" in caplog.text


def test_the_target_is_the_resolved_context():
    target = target_of(RunConfig(context="gravity=9.8"))
    assert target.same_as("cart_pole", dict(target_of(RunConfig(context="earth")).context))
    assert not target.same_as("cart_pole", dict(target_of(RunConfig(context="venus")).context))
