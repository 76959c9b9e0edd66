"""Modules that a dependency imports but never uses on our path, loaded on first use instead.

gymnax imports every environment it ships when it is imported, and its rendering code imports
seaborn and ``matplotlib.pyplot`` at module level; seaborn in turn imports scipy.stats and
pandas. That is about 1.5 s of every ``metapbt`` process (``python -X importtime -c "import
gymnax"`` on the 2-core machine: 1.8 s, 0.34 s with the two modules deferred) for code that only
draws frames. `defer` puts a `Deferred` stand-in into ``sys.modules`` for such
modules while the dependency is imported: ``import seaborn`` then binds the stand-in, and the
real module is imported the first time one of its attributes is read (by the dependency's
renderer, or by anyone else), after which ``sys.modules`` holds the real module again.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

GYMNAX_RENDERING = ("seaborn", "matplotlib.pyplot")
"""What gymnax imports at module level for rendering only."""


class Deferred(types.ModuleType):
    """A stand-in for a module that imports the real one when an attribute is first read."""

    def __getattr__(self, attr: str) -> Any:
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), attr)


def defer(names: tuple[str, ...]) -> None:
    """From now on, ``import NAME`` of a module not yet imported binds a `Deferred`.

    A stand-in stays in ``sys.modules`` until its first attribute read replaces it with the
    real module; an already imported module is left as it is.
    """
    for name in names:
        if name not in sys.modules:
            sys.modules[name] = Deferred(name)
