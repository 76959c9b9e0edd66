"""The GP layer against closed forms computed directly in numpy (float64)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metapbt.errors import SurrogateError
from metapbt.surrogates import ExactGP, TimeVaryingSE, negative_log_likelihood
from metapbt.surrogates import gp as gp_module
from metapbt.surrogates.params import constrain, unconstrain

PARAMS = {"variance": 1.7, "lengthscale": 0.3, "epsilon": 0.2, "noise": 0.05}


def np_kernel(p, x1, x2):
    sq = ((x1[:, None, 1:] - x2[None, :, 1:]) ** 2).sum(-1)
    dt = np.abs(x1[:, None, 0] - x2[None, :, 0])
    return p["variance"] * np.exp(-sq / p["lengthscale"]) * (1 - p["epsilon"]) ** (dt / 2)


def np_nll(p, x, y):
    k = np_kernel(p, x, x) + p["noise"] * np.eye(len(x))
    _, logdet = np.linalg.slogdet(k)
    return 0.5 * y @ np.linalg.solve(k, y) + 0.5 * logdet + 0.5 * len(x) * math.log(2 * math.pi)


def data(n=25, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(n, 4))
    y = np.sin(5 * x[:, 1]) + 0.5 * x[:, 2] + 0.1 * rng.standard_normal(n)
    return x, y


def test_kernel_is_symmetric_psd_with_variance_on_the_diagonal():
    x, _ = data()
    k = np.asarray(TimeVaryingSE()(PARAMS, jnp.asarray(x), jnp.asarray(x)))
    np.testing.assert_allclose(k, k.T, atol=1e-6)
    assert np.linalg.eigvalsh(k.astype(np.float64)).min() > -1e-4
    np.testing.assert_allclose(np.diag(k), PARAMS["variance"], rtol=1e-5)
    np.testing.assert_allclose(k, np_kernel(PARAMS, x, x), rtol=1e-4, atol=1e-6)
    # The time factor alone: same features, times 0 and 3.
    pair = jnp.array([[0.0, 0.5, 0.5, 0.5], [3.0, 0.5, 0.5, 0.5]])
    k2 = TimeVaryingSE()(PARAMS, pair, pair)
    assert float(k2[0, 1]) == pytest.approx(1.7 * 0.8**1.5, rel=1e-5)


def test_posterior_matches_a_direct_solve_and_ignores_padding():
    x, y = data()
    model = ExactGP(TimeVaryingSE())
    xq = np.random.default_rng(1).uniform(size=(7, 4))
    k = np_kernel(PARAMS, x, x) + PARAMS["noise"] * np.eye(len(x))
    kq = np_kernel(PARAMS, x, xq)
    mean_np = kq.T @ np.linalg.solve(k, y)
    var_np = PARAMS["variance"] - np.einsum("ij,ij->j", kq, np.linalg.solve(k, kq))
    for size in (32, 64):  # two paddings, same answer
        xp, yp, mask = gp_module.pad_rows(x, y, size)
        fitted = model.condition(PARAMS, xp, yp, mask)
        mean, var = fitted.predict(xq)
        np.testing.assert_allclose(mean, mean_np, rtol=2e-3, atol=2e-3)
        np.testing.assert_allclose(var, var_np, rtol=2e-3, atol=2e-3)


def test_negative_log_likelihood_matches_numpy():
    x, y = data()
    xp, yp, mask = gp_module.pad_rows(x, y, 64)
    params = {k: jnp.float32(v) for k, v in PARAMS.items()}
    nll = negative_log_likelihood(ExactGP(TimeVaryingSE()), params, xp, yp, mask)
    # The model adds a relative jitter of 1e-5 * variance to the noise.
    expected = np_nll({**PARAMS, "noise": PARAMS["noise"] + 1e-5 * 1.7}, x, y)
    assert float(nll) == pytest.approx(expected, rel=1e-4)


def test_likelihood_gradients_match_finite_differences():
    x, y = data()
    xp, yp, mask = gp_module.pad_rows(x, y, 32)
    model = ExactGP(TimeVaryingSE(), jitter=0.0)
    grad = jax.grad(lambda p: negative_log_likelihood(model, p, xp, yp, mask))(
        {k: jnp.float32(v) for k, v in PARAMS.items()}
    )
    for name in PARAMS:
        h = 1e-5 * max(1.0, PARAMS[name])
        up, down = dict(PARAMS), dict(PARAMS)
        up[name] += h
        down[name] -= h
        fd = (np_nll(up, x, y) - np_nll(down, x, y)) / (2 * h)
        assert float(grad[name]) == pytest.approx(fd, rel=2e-2, abs=2e-2), name


def test_fit_stays_in_bounds_and_moves_from_its_start():
    x, y = data(n=60)
    model = ExactGP(TimeVaryingSE())
    fitted = model.fit(x, y)
    hp = fitted.hyperparameters()
    for name, spec in model.specs.items():
        assert spec.low <= hp[name] <= spec.high, name
    starts = [dict(s) for s in TimeVaryingSE().inits]
    assert all(abs(hp["lengthscale"] - s["lengthscale"]) > 0.02 for s in starts)
    assert abs(hp["noise"] - 0.5) > 0.1
    # The fit beats every start on the likelihood.
    xp, yp, mask = gp_module.pad_rows(x, y, 64)
    fitted_nll = negative_log_likelihood(model, fitted.params, xp, yp, mask)
    for start in starts:
        p = constrain(model.specs, unconstrain(model.specs, {**start, "noise": 0.5}))
        assert float(fitted_nll) < float(negative_log_likelihood(model, p, xp, yp, mask))


def test_pending_point_lowers_variance_near_it_only():
    x, y = data()
    fitted = ExactGP(TimeVaryingSE()).fit(x, y, reserve=4)
    here = np.array([[1.0, 0.9, 0.9, 0.9]])
    far = np.array([[1.0, 0.1, 0.1, 0.1]])
    pending = fitted.with_pending(here)
    assert float(pending.predict(here)[1][0]) < 0.5 * float(fitted.predict(here)[1][0])
    assert float(pending.predict(far)[1][0]) == pytest.approx(
        float(fitted.predict(far)[1][0]), rel=0.05
    )
    with pytest.raises(SurrogateError, match="free padded rows"):
        fitted.with_pending(np.tile(here, (40, 1)))


def test_growing_data_within_a_bucket_does_not_recompile():
    x, y = data(n=40)
    model = ExactGP(TimeVaryingSE())
    model.fit(x[:33], y[:33]).predict(x[:3])
    fit_compiles = gp_module.FIT.cache_size()
    predict_compiles = gp_module.predict._cache_size()
    for n in range(34, 41):
        fitted = model.fit(x[:n], y[:n], warm_start={**PARAMS})
        fitted.predict(x[:3])
    assert gp_module.FIT.cache_size() == fit_compiles
    assert gp_module.predict._cache_size() == predict_compiles


def test_empty_data_is_an_error():
    with pytest.raises(SurrogateError, match="m > 0"):
        ExactGP(TimeVaryingSE()).fit(np.zeros((0, 3)), np.zeros(0))


def test_a_warm_start_is_added_to_the_fixed_starts_not_put_in_their_place():
    model = ExactGP(TimeVaryingSE())
    fixed = [
        {**init, "noise": noise} for init in model.kernel.inits for noise in model.noise_starts
    ]
    cold = constrain(model.specs, model.initial_raw())
    warm = constrain(model.specs, model.initial_raw({**PARAMS}))
    assert cold["variance"].shape == warm["variance"].shape == (len(fixed) + 1,)
    for i, start in enumerate(fixed):  # every fixed start is still tried with a warm start
        for name, value in start.items():
            assert float(warm[name][i]) == pytest.approx(value, rel=1e-4)
    for name, value in PARAMS.items():
        assert float(warm[name][-1]) == pytest.approx(value, rel=1e-3)


def test_warm_only_starts_from_the_warm_start_alone_and_keeps_one_program():
    kernel = TimeVaryingSE(starts=((1.0, 0.5, 0.1),))
    model = ExactGP(kernel, warm_only=True)
    cold = constrain(model.specs, model.initial_raw())
    warm = constrain(model.specs, model.initial_raw({**PARAMS}))
    assert cold["variance"].shape == warm["variance"].shape == (1,)  # same compiled program
    assert float(cold["variance"][0]) == pytest.approx(1.0, rel=1e-4)
    for name, value in PARAMS.items():
        assert float(warm[name][0]) == pytest.approx(value, rel=1e-3)
