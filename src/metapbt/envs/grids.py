"""Sets of contexts given as text: planets, the metaPBT reference's grids, or a list.

* ``"planets"``: the five planets (the Meta-PB2 protocol);
* ``"grid:FEATURE"``: the metaPBT reference's grid, the feature's default times
  0.1, 0.2, ..., 2.2 (22 contexts; id ``k`` is multiplier ``k / 10``, id 10 the default), e.g.
  ``grid:length`` for CartPole's pole (half-)length 0.05 ... 1.1;
* otherwise contexts separated by ``;`` (planet names or ``name=value,...``).
"""

from __future__ import annotations

from metapbt.envs import PLANETS, resolve_context, spec
from metapbt.errors import ConfigError

GRID_MULTIPLIERS = tuple(round(0.1 * k, 1) for k in range(1, 23))


def context_grid(env_id: str, feature: str) -> list[str]:
    """The reference's 22 contexts of ``feature`` (default x 0.1 ... 2.2), as text.

    Raises:
        ConfigError: For an unknown feature, one whose default is 0 (a grid of zeros, as the
            reference's GRAVITY_X was), or values outside the feature's bounds.
    """
    features = spec(env_id).features
    if feature not in features:
        raise ConfigError(f"{env_id} has no context feature {feature!r}; it has {list(features)}")
    default = features[feature].default
    if default == 0:
        raise ConfigError(f"{env_id}.{feature} defaults to 0: a multiplier grid would be all 0")
    contexts = [f"{feature}={float(f'{default * m:.6g}'):g}" for m in GRID_MULTIPLIERS]
    for context in contexts:
        resolve_context(env_id, context)
    return contexts


def expand_contexts(env_id: str, text: str) -> list[str]:
    """Expand ``"planets"``, ``"grid:FEATURE"`` or ``"a; b; ..."`` into context texts.

    Raises:
        ConfigError: If the text names no context, or any context is invalid for ``env_id``.
    """
    text = text.strip()
    if text == "planets":
        contexts = list(PLANETS)
    elif text.startswith("grid:"):
        contexts = context_grid(env_id, text.removeprefix("grid:").strip())
    else:
        contexts = [c.strip() for c in text.split(";") if c.strip()]
    if not contexts:
        raise ConfigError(f"no contexts in {text!r}")
    for context in contexts:
        resolve_context(env_id, context)
    return contexts
