"""The package's exception hierarchy: one root, a few meaningful subclasses.

Every message says what was expected, what came in, and how to fix it.
"""

from __future__ import annotations


class MetaPBTError(Exception):
    """Root of every error raised on purpose by ``metapbt``."""


class ConfigError(MetaPBTError, ValueError):
    """A configuration, search space or argument is invalid."""


class UnknownNameError(ConfigError):
    """A registry lookup used a name that is not registered."""


class PopulationStateError(MetaPBTError, RuntimeError):
    """The ask/tell protocol was used out of order (e.g. ``tell`` twice for one step)."""


class SurrogateError(MetaPBTError, RuntimeError):
    """A surrogate model could not be fitted or evaluated (e.g. a non-finite likelihood)."""


class MetaDataError(ConfigError):
    """Meta-data is unreadable, foreign, or does not match the run that wants to use it."""


class DiskFullError(MetaPBTError, OSError):
    """The disk filled during a write; the file written keeps its previous version."""
