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


def _posterior(scale=1.0, offset=0.0, prior=None):
    from metapbt.surrogates import ExactGP, TimeVaryingSE
    from metapbt.surrogates.posterior import Posterior

    rng = np.random.default_rng(0)
    x = rng.uniform(size=(12, 3))
    y = np.sin(4 * x[:, 2])
    gp = ExactGP(TimeVaryingSE()).fit(x, y)
    return Posterior.of(gp, scale, offset, prior), gp


def test_ucb_acquisition_adds_std_or_variance_of_the_scaled_posterior():
    from metapbt.surrogates.acquisition import UCB, acquisition_objective

    post, gp = _posterior(scale=2.0, offset=0.5)
    fixed, u = jnp.array([1.0, 0.3], jnp.float32), jnp.array([0.4], jnp.float32)
    x = jnp.concatenate([fixed, u])[None]
    mean, var = (np.asarray(a)[0] for a in gp.predict(x))
    mean, var = 2.0 * mean + 0.5, 4.0 * var
    with_std = acquisition_objective((UCB.of(1.5, std=True), post, fixed), u)
    with_var = acquisition_objective((UCB.of(1.5, std=False), post, fixed), u)
    assert float(with_std) == pytest.approx(mean + 1.5 * math.sqrt(var), rel=1e-4)
    assert float(with_var) == pytest.approx(mean + 1.5 * var, rel=1e-4)


def _terms(weights):
    from metapbt.metadata.scaling import TaskScaling
    from metapbt.surrogates.transfer import MetaTerms

    gps = [_posterior()[1], _posterior()[1]]
    scalings = [
        TaskScaling(np.array([1.0, 1.0]), np.array([0.0, 0.0]), 1.0, 0.0),
        TaskScaling(np.array([0.5, 2.0]), np.array([0.1, -0.2]), 3.0, -1.0),
    ]
    return MetaTerms.build(gps, np.asarray(weights), scalings), gps, scalings


def test_prior_mean_is_the_weighted_sum_of_mapped_task_means():
    from metapbt.surrogates.transfer import prior_mean

    terms, gps, scalings = _terms([0.3, 0.7])
    x = np.array([[0.2, 0.6, 0.9], [0.8, 0.1, 0.3]], np.float32)
    by_hand = np.zeros(2)
    for w, gp, sc in zip([0.3, 0.7], gps, scalings, strict=True):
        mean = np.asarray(gp.predict(sc.to_meta(x)))[0]
        by_hand += w * (mean * sc.output_scale + sc.output_offset)
    np.testing.assert_allclose(prior_mean(terms, jnp.asarray(x)), by_hand, rtol=1e-4, atol=1e-5)


def test_transfer_acquisition_against_a_hand_computation():
    from metapbt.surrogates.acquisition import TransferAcquisition

    terms, gps, scalings = _terms([0.25, 0.5])
    post, gp = _posterior()
    x = np.array([[0.5, 0.4, 0.7]], np.float32)
    meta_best = np.array([0.1, -0.3], np.float32)
    taf = TransferAcquisition(jnp.float32(0.2), jnp.float32(0.25), terms, jnp.asarray(meta_best))
    mean, var = (np.asarray(a)[0] for a in gp.predict(x))
    ei = float(expected_improvement(jnp.array(mean), jnp.array(var), 0.2))
    gains = 0.0
    for w, g, sc, best in zip([0.25, 0.5], gps, scalings, meta_best, strict=True):
        m = float(np.asarray(g.predict(sc.to_meta(x)))[0][0]) * sc.output_scale + sc.output_offset
        gains += w * max(0.0, m - best)
    assert float(taf(post, jnp.asarray(x))[0]) == pytest.approx(0.25 * ei + gains, rel=1e-4)
