"""Renamed public names still import: the new object, with a DeprecationWarning naming it."""

import importlib
import sys

import pytest

RENAMED = [
    ("metapbt.studies.config", "MethodSpec", "metapbt.studies.config", "StudyMethod"),
    ("metapbt.studies.config", "Protocol", "metapbt.runs.config", "TrainingProtocol"),
    ("metapbt.runs.config", "Protocol", "metapbt.runs.config", "TrainingProtocol"),
    ("metapbt.runs.batch", "run_groups", "metapbt.runs.resume", "run_groups"),
    ("metapbt.runs.batch", "set_aside_corrupt", "metapbt.runs.resume", "set_aside_corrupt"),
]


@pytest.mark.parametrize(("module", "old", "new_module", "new"), RENAMED)
def test_an_old_name_returns_the_new_object_and_warns(
    module: str, old: str, new_module: str, new: str
) -> None:
    expected = getattr(importlib.import_module(new_module), new)
    with pytest.warns(DeprecationWarning, match=rf"{module}\.{old} is deprecated: use "):
        found = getattr(importlib.import_module(module), old)
    assert found is expected


def test_from_import_of_an_old_name_warns_at_the_import() -> None:
    with pytest.warns(DeprecationWarning, match="use metapbt.runs.config.TrainingProtocol") as w:
        from metapbt.runs.config import Protocol  # noqa: F401
    assert w[0].filename == __file__  # the warning points at the importing line


def test_an_unknown_name_is_still_an_attribute_error() -> None:
    config = importlib.import_module("metapbt.runs.config")
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        config.Nope  # noqa: B018
    assert not hasattr(config, "Nope")


MOVED = [
    ("metapbt.studies.portfolio", "metapbt.studies.portfolio_build", "read_setup"),
    (
        "metapbt.population.explorers.acquisitions",
        "metapbt.population.explorers.acquisition_rules",
        "UCBRule",
    ),
]


@pytest.mark.parametrize(("old", "new", "name"), MOVED)
def test_an_old_module_is_the_new_one_and_warns(old, new, name, monkeypatch) -> None:
    module = importlib.import_module(new)
    monkeypatch.delitem(sys.modules, old, raising=False)
    with pytest.warns(DeprecationWarning, match=rf"{old} is deprecated: use {new}"):
        found = importlib.import_module(old)
    assert found is module
    assert getattr(found, name) is getattr(module, name)
