"""Old public names that still import: each returns the object under its new name, with a warning.

A module that renamed something keeps the old name readable through a module ``__getattr__``
(PEP 562):

```python
_RENAMED = {"MethodSpec": "metapbt.studies.config.StudyMethod"}


def __getattr__(name: str) -> Any:
    return renamed(__name__, name, _RENAMED)
```

Reading ``metapbt.studies.config.MethodSpec`` (or importing it) then emits a
``DeprecationWarning`` naming ``metapbt.studies.config.StudyMethod`` and returns that class.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Mapping
from typing import Any


def renamed(module: str, name: str, names: Mapping[str, str]) -> Any:
    """The object that ``module.name`` was renamed to (``names``: old name -> new dotted path).

    Raises:
        AttributeError: If ``name`` is not an old name of ``module`` (as a missing attribute).
    """
    new = names.get(name)
    if new is None:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    # stacklevel 3: the line that read the old name, above this helper and the module's hook
    warnings.warn(f"{module}.{name} is deprecated: use {new}", DeprecationWarning, stacklevel=3)
    where, _, attr = new.rpartition(".")
    return getattr(importlib.import_module(where), attr)
