"""Trainers shared by the engine tests: built once per session, so their programs compile once."""

import pytest

from metapbt.engine.host_trainer import HostPopulationTrainer
from metapbt.engine.trainer import PopulationTrainer
from tests.engine.helpers import tiny


@pytest.fixture(scope="session")
def cart_pole_trainer():
    """A JAX-native trainer: CartPole on Earth, the ``tiny`` preset, 3 members."""
    return PopulationTrainer("cart_pole", "earth", tiny(), 3)


@pytest.fixture(scope="session")
def lunar_trainer():
    """A host trainer (Box2D LunarLander on Neptune), 2 envs of minibatches of 32, 3 members."""
    return HostPopulationTrainer("lunar_lander", "neptune", tiny(num_envs=2, minibatch_size=32), 3)
