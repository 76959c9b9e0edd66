"""Patience: a clone keeps a still-improving donor's configuration, and explores once it stalls."""

import math

import numpy as np
import pytest

from metapbt import Clone, Population
from metapbt.errors import ConfigError
from metapbt.population import methods
from metapbt.population.explorers.patience import (
    PatienceSettings,
    PatientExplorer,
    still_improving,
)
from metapbt.population.space import default_space

SPACE = default_space()


def test_the_rule_by_hand():
    rule = PatienceSettings(window=2, tolerance=0.1)
    spread = 10.0  # the rise must exceed 0.1 * 10 = 1
    assert still_improving(np.array([5.0]), spread, rule)  # too young to judge
    assert still_improving(np.array([5.0, 6.0]), spread, rule)
    assert still_improving(np.array([5.0, 0.0, 6.5]), spread, rule)  # 6.5 - 5 = 1.5 > 1
    assert not still_improving(np.array([5.0, 9.0, 6.0]), spread, rule)  # 1.0 is not > 1
    assert not still_improving(np.array([1.0, 5.0, 9.0, 5.0]), spread, rule)  # fell from 5 to 5
    assert still_improving(np.array([math.nan, 1.0, 2.0]), spread, rule)  # a diverged past
    assert not still_improving(np.array([1.0, 2.0, math.nan]), spread, rule)
    # Tolerance 0: any rise counts; negative rewards are fine.
    assert still_improving(np.array([-200.0, -199.0]), 0.0, PatienceSettings(window=1))
    assert not still_improving(np.array([-199.0, -199.0]), 0.0, PatienceSettings(window=1))


@pytest.mark.parametrize(
    "bad",
    [
        {"window": 0},
        {"window": 1.5},
        {"window": True},
        {"tolerance": -0.1},
        {"tolerance": math.inf},
    ],
)
def test_bad_settings_are_refused(bad):
    with pytest.raises(ConfigError, match="patience"):
        PatienceSettings(**bad)


def _run(method, rewards_of, rounds=6, seed=0):
    """Drive a population of 4 whose member m's reward at round k is ``rewards_of(m, k)``."""
    pop = Population(SPACE, size=4, method=methods.make(method), seed=seed)
    clones = []
    for k in range(1, rounds + 1):
        before = pop.ask()
        for d in pop.tell(k * 1000, [rewards_of(m, k) for m in range(4)]):
            if isinstance(d, Clone):
                clones.append((k, d.member, d.source, before[d.source], d.config))
    return clones, pop


def test_a_clone_of_a_climbing_donor_keeps_its_configuration():
    # Member 0 climbs every round; member 3 is always worst and clones it.
    clones, pop = _run("pb2-star-patient", lambda m, k: float(k * (4 - m)))
    assert clones and all(donor_config == config for *_, donor_config, config in clones)
    kept = pop.method.explorer.kept
    assert len(kept) == len(clones)
    assert {(k["step"], k["member"]) for k in kept} == {(k * 1000, m) for k, m, *_ in clones}


def test_a_clone_of_a_stalled_donor_explores():
    # Every reward stops rising after round 3: from round 3 + window on the donors have stalled.
    clones, pop = _run("pb2-star-patient", lambda m, k: float(min(k, 3) * (4 - m)), rounds=8)
    late = [(k, donor_config, config) for k, _, _, donor_config, config in clones if k >= 5]
    assert late and all(donor_config != config for _, donor_config, config in late)
    early = [(donor_config, config) for k, _, _, donor_config, config in clones if k <= 3]
    assert early and all(donor_config == config for donor_config, config in early)
    assert pop.method.explorer.kept and all(k["step"] <= 4000 for k in pop.method.explorer.kept)
    # The same stalled run without patience explores from the first clone on.
    plain, _ = _run("pb2-star", lambda m, k: float(min(k, 3) * (4 - m)), rounds=8)
    assert all(donor_config != config for *_, donor_config, config in plain)


def test_state_round_trips_and_resumes_the_same():
    def rewards(m, k):
        return float(min(k, 3) * (4 - m) + 0.1 * m * k)

    _, first = _run("pbt-patient", rewards, rounds=4)
    state = first.state_dict()
    second = Population(SPACE, size=4, method=methods.make("pbt-patient"), seed=0)
    second.load_state_dict(state)
    assert second.method.explorer.kept == first.method.explorer.kept
    for k in (5, 6, 7):
        a = first.tell(k * 1000, [rewards(m, k) for m in range(4)])
        b = second.tell(k * 1000, [rewards(m, k) for m in range(4)])
        assert a == b


def test_the_wrapper_takes_its_inner_explorers_categorical_abilities():
    pbt = methods.make("pbt-patient").explorer
    star = methods.make("pb2-star-patient").explorer
    assert isinstance(pbt, PatientExplorer) and isinstance(star, PatientExplorer)
    assert pbt.handles_categorical and not pbt.models_numbers
    assert not star.handles_categorical and star.models_numbers


def test_every_patient_variant_is_registered_with_its_bases_metadata_need():
    for base in methods.PATIENT_BASES:
        assert methods.uses_metadata(f"{base}-patient") == methods.uses_metadata(base)
