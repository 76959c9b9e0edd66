from dataclasses import replace

import jax.numpy as jnp
import numpy as np
import pytest

from metapbt.errors import ConfigError, SurrogateError
from metapbt.surrogates import ExactGP, TimeVaryingSE
from metapbt.surrogates.dkl import DeepKernel, DKLSettings, fit_dkl, heldout_nll
from metapbt.surrogates.gp import bucket_size, pad_rows, predict

# The deep kernel alone, fitted by maximum likelihood (no raw-input factor, no weight prior):
# what the network can learn, apart from the defaults that keep it near PB2*'s kernel.
FREE = DKLSettings(raw_factor=False, start_from_gp=False, prior_std=None)


def _step_data(rng, n):
    """y = sign(u0 - 0.5): a step in one input, flat elsewhere (time and u1 irrelevant)."""
    x = rng.uniform(0, 1, (n, 3))
    y = np.where(x[:, 1] > 0.5, 1.0, -1.0) + 0.05 * rng.normal(size=n)
    return x, y


def _rmse(gp, x, y):
    return float(
        np.sqrt(np.mean((np.asarray(predict(gp, jnp.asarray(x, jnp.float32))[0]) - y) ** 2))
    )


def test_deep_kernel_is_a_valid_covariance():
    kernel = DeepKernel(inputs=2)
    params = {**kernel.inits[0]}
    x = np.random.default_rng(0).uniform(0, 1, (20, 3)).astype(np.float32)
    k = np.asarray(kernel({k: jnp.asarray(v) for k, v in params.items()}, x, x))
    np.testing.assert_allclose(k, k.T, atol=1e-6)
    assert np.linalg.eigvalsh(k + 1e-5 * np.eye(20)).min() > 0
    assert kernel.n_weights == params["net"].size == 3 * 32 + 32 * 32 + 32 * 2 + 32 + 32 + 2 - 32


def test_dkl_fits_a_step_that_a_plain_gp_cannot():
    rng = np.random.default_rng(0)
    x, y = _step_data(rng, 80)
    xt, yt = _step_data(rng, 400)
    settings = FREE
    fit = fit_dkl(settings.model(2), x, y, settings, np.random.default_rng(1))
    plain = ExactGP(TimeVaryingSE()).fit(x, y)
    assert _rmse(fit.gp, xt, yt) < 0.8 * _rmse(plain, xt, yt)


def test_early_stopping_returns_the_best_iterate_not_the_last():
    rng = np.random.default_rng(3)
    x, y = _step_data(rng, 40)
    y = y + 0.5 * rng.normal(size=40)  # noisy: the training fit overfits, validation turns
    settings = replace(FREE, steps=400, patience=15, lr_net=3e-2, val_fraction=0.3)
    model = settings.model(2)
    fit = fit_dkl(model, x, y, settings, np.random.default_rng(0))
    assert fit.held_out.sum() == 12
    finite = np.isfinite(fit.val_loss)
    assert fit.val_loss[fit.best_step] == fit.val_loss[finite].min()
    assert fit.best_step < settings.steps - settings.patience - 1  # it did stop early
    assert np.isinf(fit.val_loss[-1])
    # the returned parameters are the best step's: their held-out loss is the recorded minimum
    xp, yp, valid = pad_rows(x, y, bucket_size(40))
    train = valid.copy()
    train[:40] &= ~fit.held_out
    val = np.zeros_like(valid)
    val[:40] = fit.held_out
    again = float(heldout_nll(model, fit.params, xp, yp, train, val))
    assert again == pytest.approx(float(fit.val_loss[fit.best_step]), rel=1e-4, abs=1e-4)


def _family(rng, shift, n):
    """Related tasks: the same bumpy function of u, shifted a little per task."""
    x = rng.uniform(0, 1, (n, 3))
    y = np.sin(6 * x[:, 1] + shift) * np.cos(3 * x[:, 2]) + 0.05 * rng.normal(size=n)
    return x, y


@pytest.mark.slow  # about 140 s on 2 cores; the slow job runs it
def test_pretraining_lowers_the_first_rounds_error_on_a_related_task():
    rng = np.random.default_rng(0)
    meta = [_family(rng, s, 150) for s in (-0.2, 0.0, 0.2)]
    mx, my = np.concatenate([m[0] for m in meta]), np.concatenate([m[1] for m in meta])
    settings = replace(FREE, steps=100)  # meta-dkl's fine-tuning budget
    model = settings.model(2)
    pre = fit_dkl(model, mx, my, replace(FREE, steps=600, patience=100), np.random.default_rng(0))
    cold, warm = [], []
    for seed in range(3):
        data = np.random.default_rng(10 + seed)
        x, y = _family(data, 0.1, 12)
        xt, yt = _family(data, 0.1, 300)
        cold.append(_rmse(fit_dkl(model, x, y, settings, data).gp, xt, yt))
        start = {k: np.asarray(v) for k, v in pre.params.items()}
        warm.append(_rmse(fit_dkl(model, x, y, settings, data, start=start).gp, xt, yt))
    assert np.mean(warm) < 0.9 * np.mean(cold)


def test_bad_input_and_settings():
    settings = DKLSettings()
    with pytest.raises(SurrogateError):
        fit_dkl(
            settings.model(2), np.zeros((0, 3)), np.zeros(0), settings, np.random.default_rng(0)
        )
    with pytest.raises(ConfigError):
        DKLSettings(val_fraction=1.0)
    with pytest.raises(ConfigError):
        DeepKernel(inputs=0)


def test_the_raw_factor_multiplies_in_pb2_stars_kernel_on_the_raw_inputs():
    kernel = DKLSettings().model(2).kernel  # the default has the raw factor
    params = {k: jnp.asarray(v) for k, v in kernel.inits[0].items()}
    params["raw_lengthscale"] = jnp.asarray(0.3)
    x = np.random.default_rng(0).uniform(0, 1, (7, 3)).astype(np.float32)
    z = np.asarray(kernel.features_of(params["net"], jnp.asarray(x[:, 1:])))
    t, u = x[:, 0], x[:, 1:]
    dt = np.abs(t[:, None] - t[None, :])
    du = ((u[:, None, :] - u[None, :, :]) ** 2).sum(-1)
    dz = ((z[:, None, :] - z[None, :, :]) ** 2).sum(-1)
    ls, eps = float(params["lengthscale"]), float(params["epsilon"])
    expected = (1 - eps) ** (dt / 2) * np.exp(-du / 0.3) * np.exp(-dz / ls)
    np.testing.assert_allclose(np.asarray(kernel(params, x, x)), expected, rtol=2e-5, atol=1e-6)
    # the feature lengthscale starts long: the deep kernel starts within 8 % of PB2*'s
    pb2 = TimeVaryingSE()({"variance": 1.0, "lengthscale": 0.3, "epsilon": eps}, x, x)
    assert np.abs(np.asarray(kernel(params, x, x)) / np.asarray(pb2) - 1).max() < 0.08


def test_the_weight_prior_adds_its_closed_form_to_the_loss_and_holds_the_network():
    rng = np.random.default_rng(0)
    x, y = _step_data(rng, 30)
    free = DKLSettings(steps=1, val_fraction=0.0, prior_std=None)
    model = free.model(2)
    start = dict(model.kernel.inits[0])
    anchor = np.asarray(start["net"]) + 0.1
    plain = fit_dkl(model, x, y, free, rng, start=start)
    prior = fit_dkl(
        model, x, y, DKLSettings(steps=1, val_fraction=0.0, prior_std=0.5), rng, start, 0, anchor
    )
    penalty = 0.5 * np.sum((np.asarray(start["net"]) - anchor) ** 2) / 0.5**2 / 30
    assert prior.train_loss[0] == pytest.approx(plain.train_loss[0] + penalty, rel=1e-4)
    # a tight prior keeps the trained network at its anchor; no prior lets it move
    tight = DKLSettings(steps=200, patience=200, val_fraction=0.0, prior_std=1e-3, lr_net=3e-2)
    held = fit_dkl(model, x, y, tight, rng, start=start)
    moved = fit_dkl(model, x, y, replace(tight, prior_std=None), rng, start=start)
    drift = np.abs(np.asarray(held.params["net"]) - np.asarray(start["net"])).max()
    assert drift < 0.02 < np.abs(np.asarray(moved.params["net"]) - start["net"]).max()


def test_new_settings_are_checked():
    with pytest.raises(ConfigError, match="start_from_gp needs raw_factor"):
        DKLSettings(raw_factor=False)
    with pytest.raises(ConfigError, match="prior_std"):
        DKLSettings(prior_std=0.0)
    with pytest.raises(ConfigError, match="noise_floor"):
        DKLSettings(noise_floor=0.0)
    with pytest.raises(ConfigError, match="variance"):
        DKLSettings(variance="both")
