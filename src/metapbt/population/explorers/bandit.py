"""The time-varying multiple-play EXP3 bandit of PB2-Mix, for categorical hyperparameters.

PB2-Mix (Parker-Holder et al., NeurIPS 2021, "Tuning Mixed Input Hyperparameters on the Fly for
Efficient Population Based AutoRL") chooses each categorical hyperparameter with TV.EXP3.M: the
multiple-play EXP3 of Uchiya et al. (2010; ``B`` plays per round, one per member of the
population), whose weights *forget* through a fixed share (Auer et al.'s EXP3.S) so that the
best category may change during training. Pure functions of numpy arrays:

* [`probabilities`][metapbt.population.explorers.bandit.probabilities]: per-play probabilities
  ``p_c = (1 - gamma) w_c / sum(w) + gamma / C`` from weights capped at ``alpha`` when one category
  would otherwise have to be played more than once per round (Exp3.M's capping; the capped set is
  returned);
* [`update`][metapbt.population.explorers.bandit.update]: one round of rewards in [0, 1]; category
  ``c`` played by members with rewards ``r_i`` gets the importance-weighted reward
  ``sum_i r_i / (B p_c)`` and ``w_c <- w_c exp(gamma B xhat_c / C) + e omega sum(w) / C`` (a capped
  category only the share), then the weights are normalised to sum 1;
* [`replay`][metapbt.population.explorers.bandit.replay]: the weights after a history of rounds,
  from uniform weights;
* [`default_gamma`][metapbt.population.explorers.bandit.default_gamma] and
  [`default_omega`][metapbt.population.explorers.bandit.default_omega]: PB2-Mix's exploration and
  forgetting rates;
* [`CategoricalBandit`][metapbt.population.explorers.bandit.CategoricalBandit]: the explore step's
  categorical part (``pb2-mix``).

Where we differ from PB2-Mix's published code, deliberately: the share term goes into every
category's weight each round, as EXP3.S defines it (the code added it to the probabilities and
to the played categories' weights only); the capping threshold ``alpha`` is solved exactly (a
sort; the code minimised a random-started objective with BFGS); and a category that no member
has trained with yet is tried first (an optimistic value for unseen arms, as UCB starts): with
a population of 4, only the explored member draws each round, and the per-play floor
``gamma / C`` left a choice the first draw missed untried for most of a run: on a three-choice
toy, 7 of 20 seeds started without the better choice and, under the published rule, three of
them first tried it at rounds 6, 11 and 13 of 15; tried first, every seed had it by round 3
(``tests/population/test_categorical.py`` keeps three of those seeds).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from metapbt.errors import ConfigError
from metapbt.population.history import SurrogateData
from metapbt.population.space import SearchSpace

logger = logging.getLogger(__name__)


def default_gamma(arms: int, batch: int, rounds: int) -> float:
    """PB2-Mix's exploration rate: ``sqrt(C ln(C/B) / ((e - 1) B T / 10))`` if ``B < C``, else 0.2.

    Args:
        arms: Number of categories ``C`` (at least 2).
        batch: Plays per round ``B`` (members of the population).
        rounds: Rounds of the run ``T``.
    """
    _check_counts(arms, batch)
    if batch >= arms:
        return 0.2
    gamma = math.sqrt(arms * math.log(arms / batch) / ((math.e - 1) * batch * rounds / 10))
    return min(1.0, gamma)


def default_omega(rounds: int) -> float:
    """PB2-Mix's forgetting rate (the fixed share): ``1 / (10 T)``."""
    if rounds < 1:
        raise ConfigError(f"rounds must be at least 1, got {rounds}")
    return 1.0 / (10 * rounds)


def cap(weights: np.ndarray, gamma: float, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """Exp3.M's capped weights and the capped set (a boolean mask).

    With ``eta = (1 / B - gamma / C) / (1 - gamma)``, a category whose share ``w_c / sum(w)``
    reaches ``eta`` would need a probability above 1 per round; its weight is lowered to the
    ``alpha`` with ``alpha / sum_c min(w_c, alpha) = eta``. Nothing is capped when ``B >= C``.
    """
    weights = _weights(weights)
    arms = weights.size
    if batch >= arms or gamma >= 1.0:
        return weights.copy(), np.zeros(arms, dtype=bool)
    eta = (1.0 / batch - gamma / arms) / (1.0 - gamma)
    if weights.max() < eta * weights.sum():
        return weights.copy(), np.zeros(arms, dtype=bool)
    # alpha with k categories capped: alpha = eta * rest / (1 - k * eta), where rest is the sum of
    # the other weights; the right k keeps every capped weight >= alpha >= every other weight.
    order = np.sort(weights)[::-1]
    for k in range(1, arms):
        rest = order[k:].sum()
        alpha = eta * rest / (1.0 - k * eta)
        if order[k - 1] >= alpha >= order[k]:
            capped = weights >= alpha
            return np.where(capped, alpha, weights), capped
    raise ConfigError(f"no capping threshold for weights {weights.tolist()} (batch {batch})")


def probabilities(weights: np.ndarray, gamma: float, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-play probabilities of the categories (they sum to 1) and the capped set.

    ``p_c = (1 - gamma) w'_c / sum(w') + gamma / C`` over the capped weights ``w'``; a round
    plays category ``c`` about ``B p_c`` times (at most once when ``B < C``).
    """
    _check_gamma(gamma)
    capped_weights, capped = cap(weights, gamma, batch)
    arms = capped_weights.size
    probs = (1.0 - gamma) * capped_weights / capped_weights.sum() + gamma / arms
    return probs, capped


def update(
    weights: np.ndarray,
    chosen: Sequence[int],
    rewards: Sequence[float],
    gamma: float,
    omega: float,
) -> np.ndarray:
    """The weights after one round: members played ``chosen`` and earned ``rewards`` in [0, 1].

    ``B`` is the number of plays this round (``len(chosen)``). Returns weights summing to 1.

    Raises:
        ConfigError: On a category outside the weights, rewards outside [0, 1], or lengths that
            differ.
    """
    weights = _weights(weights)
    chosen = [int(c) for c in chosen]
    rewards = [float(r) for r in rewards]
    if len(chosen) != len(rewards) or not chosen:
        raise ConfigError(f"need one reward per play, got {len(chosen)} plays, {len(rewards)}")
    if any(not 0 <= c < weights.size for c in chosen):
        raise ConfigError(f"categories must be in 0..{weights.size - 1}, got {chosen}")
    if any(not 0.0 <= r <= 1.0 for r in rewards):
        raise ConfigError(f"rewards must be normalised to [0, 1], got {rewards}")
    if omega < 0:
        raise ConfigError(f"omega must be non-negative, got {omega}")
    batch, arms = len(chosen), weights.size
    probs, capped = probabilities(weights, gamma, batch)
    estimate = np.zeros(arms)
    for c, r in zip(chosen, rewards, strict=True):
        estimate[c] += r / (batch * probs[c])
    share = math.e * omega * weights.sum() / arms
    growth = np.where(capped, 1.0, np.exp(gamma * batch * estimate / arms))
    new = weights * growth + share
    return new / new.sum()


def replay(
    arms: int,
    rounds: Sequence[tuple[Sequence[int], Sequence[float]]],
    gamma: float,
    omega: float,
) -> np.ndarray:
    """The weights after ``rounds`` of (categories played, rewards), from uniform weights."""
    if arms < 2:
        raise ConfigError(f"a categorical needs at least 2 choices, got {arms}")
    weights = np.full(arms, 1.0 / arms)
    for chosen, rewards in rounds:
        weights = update(weights, chosen, rewards, gamma, omega)
    return weights


def _weights(weights: np.ndarray) -> np.ndarray:
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 1 or weights.size < 2 or not np.all(weights > 0):
        raise ConfigError(f"weights must be a vector of at least 2 positives, got {weights}")
    return weights


def _check_gamma(gamma: float) -> None:
    if not 0.0 < gamma <= 1.0:
        raise ConfigError(f"gamma must be in (0, 1], got {gamma}")


def _check_counts(arms: int, batch: int) -> None:
    if arms < 2 or batch < 1:
        raise ConfigError(f"need at least 2 categories and 1 play, got {arms} and {batch}")


@dataclass
class CategoricalBandit:
    """PB2-Mix's categorical step: one TV.EXP3.M bandit per categorical hyperparameter.

    Each sync point ([`observe`][metapbt.population.explorers.bandit.CategoricalBandit.observe]) the
    bandits replay the run's PB2 rows from uniform weights: a round is the rows ending at one time,
    each row a play of the category its member trained with, rewarded by its reward change per step
    min-max normalised to [0, 1] over all rows.
    [`choose`][metapbt.population.explorers.bandit.CategoricalBandit.choose] then draws each
    categorical from its bandit's probabilities, with ``B`` = the population size. Replaying keeps
    the state in the history (nothing to save).

    Args:
        horizon: Rounds of a run ``T`` for PB2-Mix's rates (15: the reference protocol).
        gamma: Exploration rate (``None``:
            [`default_gamma`][metapbt.population.explorers.bandit.default_gamma]).
        omega: Forgetting rate (``None``:
            [`default_omega`][metapbt.population.explorers.bandit.default_omega]).
        optimistic: Try a category no row has played before drawing from the bandit (one
            explored member per unseen category, in a random order); ``False``: PB2-Mix's rule.
    """

    horizon: int = 15
    gamma: float | None = None
    omega: float | None = None
    optimistic: bool = True
    _weights: dict[str, np.ndarray] = field(default_factory=dict, init=False, repr=False)
    _size: int = field(default=1, init=False, repr=False)
    _unseen: dict[str, set[int]] = field(default_factory=dict, init=False, repr=False)

    def observe(self, space: SearchSpace, data: SurrogateData, size: int) -> None:
        """Replay the rows ``data`` (encoded: a category as its index) for every categorical."""
        self._size = size
        self._weights = {}
        self._unseen = {}
        target = np.asarray(data.target, np.float64)
        finite = np.isfinite(target)
        low, high = (target[finite].min(), target[finite].max()) if finite.any() else (0, 0)
        rewards = np.where(finite, (target - low) / (high - low) if high > low else 0.5, 0.0)
        for name, param in space.categoricals.items():
            arms = len(param.choices)
            column = data.hparams[:, space.names.index(name)].astype(int)
            rounds = [
                (column[data.time == t], rewards[data.time == t]) for t in np.unique(data.time)
            ]
            self._weights[name] = replay(arms, rounds, self._gamma(arms), self._omega())
            self._unseen[name] = set(range(arms)) - set(column.tolist())
        logger.debug("categorical weights: %s", {k: v.round(3) for k, v in self._weights.items()})

    def choose(self, space: SearchSpace, rng: np.random.Generator) -> dict[str, int]:
        """An index per categorical: an unplayed category first (``optimistic``), else a draw.

        Draws follow the bandit's probabilities (uniform before any row); an unplayed category,
        once chosen, counts as played for the rest of the round.
        """
        out = {}
        for name, probs in self.probabilities(space).items():
            unseen = sorted(self._unseen.get(name, ())) if self.optimistic else []
            if unseen:
                out[name] = int(rng.choice(unseen))
                self._unseen[name].discard(out[name])
            else:
                out[name] = int(rng.choice(len(probs), p=probs / probs.sum()))
        return out

    def probabilities(self, space: SearchSpace) -> dict[str, np.ndarray]:
        """The current per-play probabilities of every categorical's choices."""
        out = {}
        for name, param in space.categoricals.items():
            arms = len(param.choices)
            weights = self._weights.get(name, np.full(arms, 1.0 / arms))
            out[name] = probabilities(weights, self._gamma(arms), self._size)[0]
        return out

    def _gamma(self, arms: int) -> float:
        return (
            self.gamma if self.gamma is not None else default_gamma(arms, self._size, self.horizon)
        )

    def _omega(self) -> float:
        return self.omega if self.omega is not None else default_omega(self.horizon)
