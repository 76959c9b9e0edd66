"""Deprecated name of ``metapbt.studies.portfolio_build`` (building portfolios offline).

``metapbt.studies.portfolio`` read as ``metapbt.population.portfolio`` (the portfolio type and
its greedy selection). Importing it warns once and gives the new module itself, so every name
(and a test's monkeypatch) reaches the same objects.
"""

import sys
import warnings

from metapbt.studies import portfolio_build

warnings.warn(
    "metapbt.studies.portfolio is deprecated: use metapbt.studies.portfolio_build",
    DeprecationWarning,
    stacklevel=2,
)
sys.modules[__name__] = portfolio_build
