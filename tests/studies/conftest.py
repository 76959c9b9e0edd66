"""Fixtures of the study tests: the scripts under ``studies/``, imported as modules."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

STUDIES = Path(__file__).resolve().parents[2] / "studies"


@pytest.fixture
def study_script(monkeypatch):
    """Import a script of ``studies/`` by name; every module it brought in is dropped after."""
    monkeypatch.syspath_prepend(str(STUDIES))
    before = set(sys.modules)
    yield importlib.import_module
    for name in set(sys.modules) - before:
        path = getattr(sys.modules[name], "__file__", None)
        if path and Path(path).parent == STUDIES:
            sys.modules.pop(name)
