"""Renamed public names still import: the new object, with a DeprecationWarning naming it."""

import importlib
import sys

import pytest

RENAMED = [
    ("metapbt.studies.config", "MethodSpec", "metapbt.studies.config", "StudyMethod"),
    ("metapbt.studies.config", "Protocol", "metapbt.runs.config", "TrainingProtocol"),
    ("metapbt.runs.config", "Protocol", "metapbt.runs.config", "TrainingProtocol"),
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


def test_the_old_portfolio_building_module_is_the_new_one_and_warns(monkeypatch) -> None:
    from metapbt.studies import portfolio_build

    monkeypatch.delitem(sys.modules, "metapbt.studies.portfolio", raising=False)
    with pytest.warns(DeprecationWarning, match="use metapbt.studies.portfolio_build"):
        old = importlib.import_module("metapbt.studies.portfolio")
    assert old is portfolio_build
    assert old.read_setup is portfolio_build.read_setup
