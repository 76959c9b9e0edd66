"""Deprecated name of ``metapbt.population.explorers.acquisition_rules`` (UCBRule, TAFRule).

``acquisitions`` read as ``metapbt.surrogates.acquisition`` (the acquisition functions the rules
build). Importing it warns once and gives the new module itself.
"""

import sys
import warnings

from metapbt.population.explorers import acquisition_rules

warnings.warn(
    "metapbt.population.explorers.acquisitions is deprecated: use "
    "metapbt.population.explorers.acquisition_rules",
    DeprecationWarning,
    stacklevel=2,
)
sys.modules[__name__] = acquisition_rules
