"""PB2-Mix's mixture kernel against a hand computation, and a GP that learns a category's effect."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from metapbt.surrogates import ExactGP, TimeVaryingMixture

PARAMS = {"variance": 1.5, "lengthscale": 0.4, "epsilon": 0.2, "mix": 0.3}


def test_two_points_by_hand():
    # x = (t, r, c1, c2, h): two categorical inputs, one numeric
    x = jnp.array([[0.0, 0.5, 0.0, 1.0, 0.2], [2.0, 0.3, 0.0, 2.0, 0.6]])
    k = np.asarray(TimeVaryingMixture(categorical=2)(PARAMS, x, x))
    se = math.exp(-((0.5 - 0.3) ** 2 + (0.2 - 0.6) ** 2) / 0.4)
    overlap = 0.5  # the first category agrees, the second does not
    both = 0.7 * (se + overlap) / 2 + 0.3 * se * overlap
    assert k[0, 1] == pytest.approx(1.5 * 0.8 ** (2 / 2) * both, rel=1e-5)
    assert k[0, 0] == pytest.approx(1.5, rel=1e-6)  # se = overlap = 1 on the diagonal


def test_the_kernel_is_symmetric_psd():
    rng = np.random.default_rng(0)
    x = np.column_stack(
        [rng.uniform(size=30), rng.uniform(size=30), rng.integers(0, 3, 30), rng.uniform(size=30)]
    )
    k = np.asarray(TimeVaryingMixture()(PARAMS, jnp.asarray(x), jnp.asarray(x)), np.float64)
    np.testing.assert_allclose(k, k.T, atol=1e-6)
    assert np.linalg.eigvalsh(k).min() > -1e-4


def test_a_fitted_gp_tells_the_categories_apart():
    rng = np.random.default_rng(1)
    n = 40
    h = rng.uniform(size=n)
    c = rng.integers(0, 2, n).astype(float)
    y = np.sin(3 * h) + 1.5 * c + 0.05 * rng.standard_normal(n)  # category 1 is better
    x = np.column_stack([np.zeros(n), np.full(n, 0.5), c, h])
    fitted = ExactGP(TimeVaryingMixture()).fit(x, y)
    query = jnp.array([[0.0, 0.5, 0.0, 0.5], [0.0, 0.5, 1.0, 0.5]])
    mean, _ = fitted.predict(query)
    assert float(mean[1] - mean[0]) == pytest.approx(1.5, abs=0.3)
    assert 0.0 <= fitted.hyperparameters()["mix"] <= 1.0
