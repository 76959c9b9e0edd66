"""Every registered spec implements one protocol: it makes its own environments."""

import pytest

from metapbt import envs
from metapbt.errors import ConfigError


@pytest.mark.parametrize("env_id", envs.names())
def test_each_spec_makes_its_kind_and_refuses_the_other(env_id):
    family = envs.spec(env_id)
    for name in ("make", "make_host", "features", "gravity_features", "trainer"):
        assert hasattr(family, name)
    wrong = envs.make if family.trainer == "host" else envs.make_host
    with pytest.raises(ConfigError, match=r"use envs\.make|steps on the host"):
        wrong(env_id)


def test_classic_control_params_carry_the_context():
    _, params = envs.make("cart_pole", "length=0.8")
    assert float(params.length) == pytest.approx(0.8)
    host = envs.make_host("lunar_lander", "leg_height=3.2")
    try:
        obs, _ = host.reset(seed=0)
        assert obs.shape == (8,)
    finally:
        host.close()
