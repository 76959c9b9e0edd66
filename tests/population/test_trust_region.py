"""The trust region: TuRBO's grow / shrink / restart rule, and picks inside the box."""

import math

import numpy as np
import pytest

from metapbt import Clone, Population
from metapbt.errors import ConfigError
from metapbt.population import methods
from metapbt.population.explorers.trust_region import (
    TrustRegionSettings,
    TrustRegionState,
    box,
    next_state,
)
from metapbt.population.space import default_space

SETTINGS = TrustRegionSettings(init_length=0.4, min_length=0.1, max_length=0.8)


def test_the_rule_against_a_hand_computation():
    bests = [10.0, 20.0, 30.0, 40.0, 40.0, 40.005, 39.0, 41.0, 30.0, 30.0, 30.0, 30.0, 30.0]
    state = TrustRegionState(SETTINGS.init_length)
    lengths = []
    for step, best in enumerate(bests):
        state = next_state(state, best, step, SETTINGS)
        lengths.append(state.length)
    # 10: sets the bar. 20, 30: two successes -> 0.8. 40: success (streak 1). 40: failure.
    # 40.005: below 40 + 1e-3 * 40 -> failure: halve -> 0.4. 39: failure (1). 41: success (1).
    # 30 x 5: failures 1, 2 -> 0.2; 1, 2 -> 0.1; 1.
    assert lengths == [0.4, 0.4, 0.8, 0.8, 0.8, 0.4, 0.4, 0.4, 0.4, 0.2, 0.2, 0.1, 0.1]
    assert state.best == 41.0 and state.last_step == 12
    # Two more failures: 0.05 < min_length restarts at init_length.
    state = next_state(next_state(state, 1.0, 13, SETTINGS), 1.0, 14, SETTINGS)
    assert state.length == 0.4
    # A non-finite best is a failure and never the bar.
    nan = next_state(TrustRegionState(0.4, best=5.0), math.nan, 1, SETTINGS)
    assert nan.failures == 1 and nan.best == 5.0


def test_the_box_is_centred_on_the_donor_and_clipped_to_the_cube():
    low, high = box(np.array([0.5, 0.05, 0.9]), 0.4)
    np.testing.assert_allclose(low, [0.3, 0.0, 0.7])
    np.testing.assert_allclose(high, [0.7, 0.25, 1.0])
    with pytest.raises(ConfigError, match="min_length <= init_length"):
        TrustRegionSettings(init_length=0.01, min_length=0.1)


def _drive(method, rounds=4, seed=0):
    space = default_space()
    pop = Population(space, size=4, method=methods.make(method), seed=seed)
    rewards = np.zeros(4)
    picks = []
    for r in range(1, rounds + 1):
        configs = pop.ask()
        for m, c in enumerate(configs):
            u = space.to_unit(c)
            rewards[m] += 1.0 - float(np.sum((u - 0.3) ** 2))
        decisions = pop.tell(r * 1000, list(rewards))
        for d in decisions:
            if isinstance(d, Clone):
                rewards[d.member] = rewards[d.source]
                picks.append((r * 1000, configs[d.source], d.config))
    return pop, picks


def test_every_pick_lies_in_the_box_around_its_donor():
    pop, picks = _drive("pb2-star-tr")
    region = pop.method.explorer.trust_region
    lengths = {row["step"]: row["length"] for row in region.lengths}
    space = default_space()
    assert len(picks) == 4
    for step, donor, chosen in picks:
        low, high = box(space.to_unit(donor), lengths[step])
        u = space.to_unit(chosen)
        assert np.all(u >= low - 1e-6) and np.all(u <= high + 1e-6), (step, u, low, high)
    # Without the region, PB2* leaves the box at least once on the same problem.
    _, free = _drive("pb2-star")
    outside = [np.any(np.abs(space.to_unit(c) - space.to_unit(d)) > 0.2 / 2) for _, d, c in free]
    assert any(outside)


def test_the_region_resumes_from_its_state():
    pop, _ = _drive("pb2-star-tr", rounds=3)
    state = pop.state_dict()
    twin = Population(default_space(), size=4, method=methods.make("pb2-star-tr"), seed=0)
    twin.load_state_dict(state)
    assert twin.method.explorer.trust_region.state == pop.method.explorer.trust_region.state
    assert twin.method.explorer.trust_region.lengths == pop.method.explorer.trust_region.lengths
    plain = methods.make("pb2-star").explorer.state_dict()
    with pytest.raises(ConfigError, match="no trust region"):
        methods.make("pb2-star-tr").explorer.load_state_dict(plain)
