import math

import jax.numpy as jnp
import numpy as np
import pytest

from metapbt.surrogates import expected_improvement, maximize_unit_box, ucb, ucb_kappa, ucb_variance


def test_kappa_formula():
    assert ucb_kappa(10) == pytest.approx(math.sqrt(0.2 + math.log(4.0)))
    assert ucb_kappa(2) == pytest.approx(math.sqrt(0.2))  # ln(0.8) < 0 is clipped
    assert ucb_kappa(10, exploration=1.0, growth=1.0) == pytest.approx(math.sqrt(1 + math.log(10)))


def test_ucb_grows_with_its_exploration_weight():
    mean, var = jnp.array([0.0, 1.0]), jnp.array([0.25, 0.04])
    low, high = ucb(mean, var, 0.5), ucb(mean, var, 2.0)
    assert bool(jnp.all(high > low))
    np.testing.assert_allclose(high, [1.0, 1.4], rtol=1e-6)
    np.testing.assert_allclose(ucb_variance(mean, var, 2.0), [0.5, 1.08], rtol=1e-6)


def test_expected_improvement_closed_form_and_zero_variance():
    mean, var, best = 1.0, 0.25, 0.8
    s, z = 0.5, (1.0 - 0.8) / 0.5
    pdf = math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    cdf = 0.5 * (1 + math.erf(z / math.sqrt(2)))
    got = expected_improvement(jnp.array(mean), jnp.array(var), best)
    assert float(got) == pytest.approx((mean - best) * cdf + s * pdf, rel=1e-5)
    assert float(expected_improvement(jnp.array(0.5), jnp.array(0.0), 0.8)) == 0.0
    assert float(expected_improvement(jnp.array(0.9), jnp.array(0.0), 0.8)) == pytest.approx(0.1)


def _bowl(center, u):
    return -jnp.sum((u - center) ** 2)


def test_optimiser_finds_an_interior_and_a_corner_maximum():
    import jax

    for center in ([0.31, 0.77, 0.52], [1.3, -0.2, 0.5]):
        u, value = maximize_unit_box(_bowl, jnp.array(center), jax.random.key(0), dim=3)
        expected = np.clip(center, 0.0, 1.0)
        np.testing.assert_allclose(u, expected, atol=2e-3)
        assert float(value) == pytest.approx(-np.sum((expected - center) ** 2), abs=1e-4)
