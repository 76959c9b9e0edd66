"""Brax robots: gravity reaches the physics, the default is brax's own, the gymnax interface."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("brax")

from metapbt import envs
from metapbt.envs.brax_envs import BRAX, with_gravity
from metapbt.errors import ConfigError

FAST = ["inverted_pendulum"]
SLOW = [s.id for s in BRAX if s.id not in FAST]
STEPS = 20


def _rollout(env_id, context, actions):
    """Our adapter's observations over fixed actions (no reset reached within STEPS)."""
    env, params = envs.make(env_id, context)

    @jax.jit
    def run(key):
        obs, state = env.reset(key, params)

        def one(state, action):
            obs, state, reward, term, _, _ = env.step(key, state, action, params)
            return state, (obs, reward, term)

        return obs, jax.lax.scan(one, state, actions)[1]

    return run(jax.random.PRNGKey(0))


def _brax_rollout(env_id, actions):
    """The unmodified brax environment (same backend) over the same actions."""
    from brax import envs as brax_envs

    spec = envs.spec(env_id)
    env = brax_envs.get_environment(spec.brax_name, backend=spec.backend)

    @jax.jit
    def run(key):
        state = env.reset(key)

        def one(state, action):
            state = env.step(state, action)
            return state, (state.obs, state.reward, state.done)

        return state.obs, jax.lax.scan(one, state, actions)[1]

    return run(jax.random.PRNGKey(0))


def _actions(env_id):
    env, params = envs.make(env_id, "earth")
    n = env.action_space(params).shape[0]
    return jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (STEPS, n)), jnp.float32)


def _check(env_id):
    actions = _actions(env_id)
    first, (obs_e, _, done_e) = _rollout(env_id, "earth", actions)
    _, (obs_n, _, _) = _rollout(env_id, "neptune", actions)
    alive = int(np.argmax(np.asarray(done_e))) if np.asarray(done_e).any() else STEPS
    assert alive > 2, f"{env_id} terminated at once"
    # Gravity changes the dynamics under the same actions ...
    assert np.abs(np.asarray(obs_e[:alive]) - np.asarray(obs_n[:alive])).max() > 1e-4
    if env_id == "pusher":
        return  # brax's pusher has no gravity (XML "0 0 0"); ours has the planets' (README)
    # ... and the default context is the unmodified brax environment, step by step.
    b_first, (obs_b, _, _) = _brax_rollout(env_id, actions)
    np.testing.assert_allclose(first, b_first, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(obs_e[:alive], obs_b[:alive], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("env_id", FAST)
def test_gravity_changes_dynamics_and_the_default_is_brax(env_id):
    _check(env_id)


@pytest.mark.slow
@pytest.mark.parametrize("env_id", SLOW)
def test_gravity_changes_dynamics_and_the_default_is_brax_slow(env_id):
    _check(env_id)


def test_planets_are_absolute_gravities_and_bad_contexts_are_refused():
    values = [envs.resolve_context("hopper", p)["gravity"] for p in envs.PLANETS]
    assert values == pytest.approx([-8.7, -8.9, -9.0, -9.81, -11.0])
    assert envs.resolve_context("hopper", "gravity=-3.7")["gravity"] == -3.7
    for bad in ("gravity=0", "gravity=2", "mass=3"):
        with pytest.raises(ConfigError, match="gravity"):
            envs.resolve_context("hopper", bad)


def test_with_gravity_sets_both_copies_on_the_innermost_env():
    from brax import envs as brax_envs
    from brax.envs.wrappers.training import EpisodeWrapper

    wrapped = EpisodeWrapper(brax_envs.get_environment("inverted_double_pendulum"), 10, 1)
    with_gravity(wrapped, -11.0)
    sys = wrapped.unwrapped.sys
    np.testing.assert_allclose(sys.gravity, [1e-5, 0.0, -11.0], rtol=1e-6)  # x kept
    np.testing.assert_allclose(sys.opt.gravity, [1e-5, 0.0, -11.0], rtol=1e-6)


def test_time_limit_truncates_and_resets():
    env, params = envs.make("inverted_pendulum", "earth")
    params = type(params)(3)
    step = jax.jit(env.step)
    _, state = env.reset(jax.random.PRNGKey(0), params)
    flags = []
    for i in range(4):
        _, state, _, term, trunc, _ = step(jax.random.PRNGKey(i), state, jnp.zeros(1), params)
        flags.append((bool(term), bool(trunc), int(state[1])))
    assert flags[2] == (False, True, 0)  # the third step ends the episode: steps reset to 0
    assert flags[3][2] == 1


@pytest.mark.slow  # 29 s idle; the default run keeps CartPole's learning tests
def test_ppo_learns_inverted_pendulum_with_brax_fast():
    from metapbt.engine import presets
    from metapbt.engine.factory import make_trainer

    trainer = make_trainer("inverted_pendulum", "earth", presets.make("brax-fast"), 2)
    state = trainer.init(jax.random.PRNGKey(0), [{"lr": 1e-3, "lambda": 0.95, "clip": 0.2}] * 2)
    before = trainer.evaluate(state, jax.random.PRNGKey(1))
    after = trainer.evaluate(trainer.train(state, 65_536), jax.random.PRNGKey(2))
    # An untrained policy balances for tens of steps; 64k steps of PPO reach well beyond 100
    # (1000 is the episode's maximum).
    assert before.max() < 100 < after.max()


TINY = ["--preset", "brax-fast", "--population", "2", "--budget", "2048", "--interval", "1024"]


@pytest.mark.slow
def test_meta_data_and_a_meta_method_work_for_brax_unchanged(tmp_path):
    from typer.testing import CliRunner

    from metapbt.cli import app

    runner = CliRunner()
    meta = tmp_path / "meta"
    build = [
        *("metadata", "build", "--env", "inverted_pendulum", "--contexts", "earth;neptune"),
        *("--method", "pb2", "--seeds", "1", *TINY, "--out", str(meta)),
    ]
    built = runner.invoke(app, build)
    assert built.exit_code == 0, built.output
    tasks = sorted(p.name for p in meta.iterdir() if not p.name.startswith("."))
    assert tasks == ["inverted_pendulum__earth", "inverted_pendulum__neptune"]
    target = [
        *("run", "--env", "inverted_pendulum", "--context", "uranus", "--method", "meta-prior"),
        *("--metadata", str(meta), *TINY, "--out", str(tmp_path / "run")),
    ]
    ran = runner.invoke(app, target)
    assert ran.exit_code == 0, ran.output
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["method"] == "meta-prior" and summary["env"] == "inverted_pendulum"


@pytest.mark.slow
def test_a_portfolio_is_built_and_warm_starts_a_brax_run(tmp_path):
    import pandas as pd

    from metapbt.runs.run import RunConfig, run
    from metapbt.studies import portfolio_build as pf

    setup = pf.PortfolioSetup(
        env="inverted_pendulum",
        contexts=("earth", "neptune", "uranus"),
        configs=2,
        seeds=1,
        steps=2048,
        best=1,
        preset="brax-fast",
    )
    root = tmp_path / "pf"
    pf.candidates(setup, root)
    matrix = pf.evaluate(root)
    assert matrix.scores.shape == (3, 3) and np.isfinite(matrix.scores).all()
    portfolio, path = pf.select_portfolio(root, size=2, exclude="inverted_pendulum earth")
    assert len(portfolio.configs) == 2
    config = RunConfig(
        env="inverted_pendulum",
        context="earth",
        preset="brax-fast",
        population=2,
        budget=2048,
        interval=1024,
        portfolio=str(path),
    )
    run(config, tmp_path / "warm")
    history = pd.read_parquet(tmp_path / "warm" / "history.parquet")
    first = history[history["step"] == 1024].sort_values("member")
    for member, entry in enumerate(portfolio.configs):
        row = first.iloc[member]
        assert {k: row[k] for k in entry} == pytest.approx(entry)
