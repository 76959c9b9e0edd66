import numpy as np
import pytest

from metapbt.errors import ConfigError
from metapbt.population import methods
from metapbt.population.explorers import ExploreRequest, RoundContext
from metapbt.population.explorers import dkl as dkl_module
from metapbt.surrogates.posterior import posterior_predict
from tests.population.conftest import SPACE, bump_history, source


def _round(explorer, history, step, seed=0):
    ctx = RoundContext(SPACE, history, step, np.zeros(4), 4)
    explorer.begin_round(ctx, np.random.default_rng(seed))
    return ctx


def test_meta_dkl_leaves_the_target_out_and_pretrains_once(bump_store, monkeypatch):
    calls = []
    real = dkl_module.fit_dkl

    def counting(model, x, y, settings, rng, start=None, reserve=0, anchor=None):
        calls.append("pretrain" if start is None else "finetune")
        return real(model, x, y, settings, rng, start=start, reserve=reserve, anchor=anchor)

    monkeypatch.setattr(dkl_module, "fit_dkl", counting)
    explorer = methods.make(
        "meta-dkl", metadata=source(bump_store, "bump same", centre=0.8)
    ).explorer
    for rounds in (4, 5, 6):
        _round(explorer, bump_history(7, rounds=rounds), rounds * 100)
    assert explorer.surrogate.pretrained_on == ["bump far"]
    assert calls == ["pretrain", "finetune", "finetune", "finetune"]
    # each round: PB2*'s GP (the start of the deep kernel's time, noise and raw terms), then it
    assert [f["model"] for f in explorer.fits] == ["plain", "meta-dkl"] * 3


def test_dkl_explores_inside_the_space_and_respects_pending_points():
    explorer = methods.make("dkl").explorer
    history = bump_history(3, rounds=6)
    ctx = _round(explorer, history, 600)
    reward = float(history.to_frame().query("step == 600")["reward"].iloc[1])
    first = explorer.explore(
        ctx, ExploreRequest(0, 1, {"x": 0.5}, reward, ()), np.random.default_rng(1)
    )
    second = explorer.explore(
        ctx, ExploreRequest(2, 1, {"x": 0.5}, reward, (first,)), np.random.default_rng(1)
    )
    assert 0.0 <= first["x"] <= 1.0 and 0.0 <= second["x"] <= 1.0
    # The pending point lowers the deep-kernel posterior's variance where it lies.
    model = explorer._round
    fixed = model.query(600, 1, reward, explorer.settings.query)
    x = np.concatenate([fixed, [first["x"]]])[None, :]
    before = posterior_predict(model.posterior, x)[1][0]
    after = posterior_predict(model.posterior.with_pending(x), x)[1][0]
    assert after < 0.8 * before
    assert explorer.fits[-1]["rows"] > 0 and "net" not in explorer.fits[-1]


def test_dkl_warm_starts_from_its_last_fit_and_survives_a_resume():
    explorer = methods.make("dkl").explorer
    _round(explorer, bump_history(3, rounds=5), 500)
    state = explorer.state_dict()
    last = state["surrogate"]["warm_start"]["dkl"]
    assert last is not None and len(last["net"]) > 100
    fresh = methods.make("dkl").explorer
    fresh.load_state_dict(state)
    np.testing.assert_array_equal(fresh.surrogate.warm["dkl"]["net"], np.asarray(last["net"]))


def test_meta_dkl_needs_metadata(bump_store):
    with pytest.raises(ConfigError, match="needs meta-data"):
        methods.make("meta-dkl")
    with pytest.raises(ConfigError, match="does not use meta-data"):
        methods.make("dkl", metadata=source(bump_store, "x", centre=0.3))
    only_target = methods.make("meta-dkl", metadata=source(bump_store, "bump same", centre=0.8))
    assert only_target.explorer.surrogate.pretrained_on == []


def test_start_from_gp_starts_the_deep_kernel_at_pb2_stars_fit(monkeypatch):
    from metapbt.population.explorers.dkl import DeepKernelSurrogate
    from metapbt.surrogates.dkl import DKLSettings

    seen = {}
    real = dkl_module.fit_dkl

    def spy(model, x, y, settings, rng, start=None, reserve=0, anchor=None):
        seen["start"] = dict(start)
        return real(model, x, y, settings, rng, start=start, reserve=reserve, anchor=anchor)

    settings = DKLSettings(steps=5)  # the defaults: raw factor, PB2* start
    explorer = methods.make("dkl").explorer
    explorer.surrogate = DeepKernelSurrogate(settings)
    monkeypatch.setattr(dkl_module, "fit_dkl", spy)
    _round(explorer, bump_history(3, rounds=5), 500)
    plain = next(f for f in explorer.fits if f["model"] == "plain")
    for key in ("variance", "epsilon", "noise"):
        assert seen["start"][key] == pytest.approx(plain[key])
    assert seen["start"]["raw_lengthscale"] == pytest.approx(plain["lengthscale"])
    assert seen["start"]["lengthscale"] == pytest.approx(100.0)  # features start switched off


def test_plain_variance_reads_the_plain_gps_variance_and_the_deep_kernels_mean():
    from metapbt.population.explorers.dkl import DeepKernelSurrogate
    from metapbt.surrogates.dkl import DKLSettings
    from metapbt.surrogates.gp import predict

    explorer = methods.make("dkl").explorer
    explorer.surrogate = DeepKernelSurrogate(DKLSettings(variance="plain", steps=20))
    _round(explorer, bump_history(3, rounds=5), 500)
    post = explorer._round.posterior
    x = np.random.default_rng(0).uniform(0, 1, (5, post.gp.x.shape[1])).astype(np.float32)
    mean, var = posterior_predict(post, x)
    np.testing.assert_allclose(mean, predict(post.gp, x)[0], rtol=1e-5)
    np.testing.assert_allclose(var, predict(post.variance_gp, x)[1], rtol=1e-5)
    assert post.variance_gp.model is not post.gp.model
