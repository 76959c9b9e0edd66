"""Stored traced programs: loaded instead of traced when everything matches, never otherwise."""

from __future__ import annotations

import dataclasses
import logging
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metapbt import compile_cache, stored_programs
from metapbt.engine.trainer import PopulationTrainer
from metapbt.stored_programs import StoredProgram
from metapbt.surrogates.gp import ExactGP
from metapbt.surrogates.kernels import TimeVaryingSE
from tests.engine.helpers import configs, tiny


@pytest.fixture
def program_store(tmp_path, monkeypatch):
    """A fresh program store directory; returns it."""
    monkeypatch.setattr(compile_cache, "current", lambda: str(tmp_path))
    monkeypatch.delenv(stored_programs.ENV_VAR, raising=False)
    return tmp_path / "programs"


class Traced:
    """A jitted ``{x, y} -> {x * scale + y, y}`` that counts how often it is traced.

    Each test "process" builds its own (a new process holds nothing in memory; one jitted
    function would reuse its in-memory trace).
    """

    def __init__(self) -> None:
        self.traces = 0

        @partial(jax.jit, static_argnames="scale")
        def fn(args, scale):
            self.traces += 1
            return {"x": args["x"] * scale + args["y"], "y": args["y"]}

        self.fn = fn

    def program(self, owner=None) -> StoredProgram:
        return StoredProgram(
            "affine", self.fn, owner or {"what": "test"}, output=lambda a: jax.tree.structure(a[0])
        )


def args(n=3, dtype=jnp.float32):
    return ({"x": jnp.arange(n, dtype=dtype), "y": jnp.ones(n, dtype)},)


def expected(a, scale):
    return np.asarray(a[0]["x"]) * scale + np.asarray(a[0]["y"])


def test_a_later_process_loads_the_program_without_tracing(program_store):
    traced = Traced()
    first = traced.program()(*args(), scale=2.0)
    assert traced.traces == 1 and len(list(program_store.glob("*.bin"))) == 1
    later = Traced()
    again = later.program()(*args(), scale=2.0)
    assert later.traces == 0  # loaded from disk
    np.testing.assert_array_equal(again["x"], first["x"])
    np.testing.assert_array_equal(again["x"], expected(args(), 2.0))


def test_one_program_used_with_another_store_writes_there_too(program_store, tmp_path, monkeypatch):
    """A module-level program (the GP fit) outlives a change of the compilation cache's folder."""
    traced = Traced()
    program = traced.program()
    program(*args(), scale=2.0)
    other = tmp_path / "other"
    monkeypatch.setattr(compile_cache, "current", lambda: str(other))
    np.testing.assert_array_equal(program(*args(), scale=2.0)["x"], expected(args(), 2.0))
    assert len(list(program_store.glob("*.bin"))) == 1
    assert len(list((other / "programs").glob("*.bin"))) == 1


@pytest.mark.parametrize(
    "change",
    ["owner", "static", "shape", "dtype", "source", "versions"],
)
def test_any_change_of_the_key_traces_again_and_computes_the_new_program(
    program_store, monkeypatch, change
):
    traced = Traced()
    traced.program()(*args(), scale=2.0)
    a, scale, owner = args(), 2.0, None
    if change == "owner":
        owner = {"what": "another trainer"}
    elif change == "static":
        scale = 3.0
    elif change == "shape":
        a = args(4)
    elif change == "dtype":
        a = args(dtype=jnp.int32)
    else:
        env = dict(stored_programs._environment())
        if change == "source":
            env["source"] = "0" * 64  # the package's code changed
        else:
            env["versions"] = {**env["versions"], "jax": "0.0.0"}
        monkeypatch.setattr(stored_programs, "_environment", lambda: env)
    later = Traced()
    out = later.program(owner)(*a, scale=scale)
    assert later.traces == 1
    np.testing.assert_array_equal(out["x"], expected(a, scale))
    assert len(list(program_store.glob("*.bin"))) == 2


def test_a_file_stored_under_another_key_is_never_used(program_store):
    Traced().program()(*args(), scale=2.0)
    Traced().program()(*args(), scale=5.0)
    by_scale = {}
    for path in program_store.glob("*.bin"):
        by_scale['"scale": 5.0' in path.read_bytes().partition(b"\n")[0].decode()] = path
    # The file where scale 2 is looked up now holds the scale-5 program (renamed, swapped).
    by_scale[False].write_bytes(by_scale[True].read_bytes())
    later = Traced()
    out = later.program()(*args(), scale=2.0)
    assert later.traces == 1
    np.testing.assert_array_equal(out["x"], expected(args(), 2.0))
    assert b'"scale": 2.0' in by_scale[False].read_bytes()  # replaced by the right one


def test_a_corrupt_file_is_replaced_with_a_warning(program_store, caplog):
    traced = Traced()
    traced.program()(*args(), scale=2.0)
    (path,) = program_store.glob("*.bin")
    key, _, blob = path.read_bytes().partition(b"\n")
    path.write_bytes(key + b"\n" + blob[: len(blob) // 2])
    later = Traced()
    with caplog.at_level(logging.WARNING, logger="metapbt.stored_programs"):
        out = later.program()(*args(), scale=2.0)
    assert "corrupt" in caplog.text
    assert later.traces == 1
    np.testing.assert_array_equal(out["x"], expected(args(), 2.0))
    last = Traced()
    last.program()(*args(), scale=2.0)
    assert last.traces == 0  # the rewritten file loads


def test_off_with_the_compilation_cache_or_the_switch(program_store, monkeypatch):
    traced = Traced()
    monkeypatch.setenv(stored_programs.ENV_VAR, "off")
    traced.program()(*args(), scale=2.0)
    monkeypatch.delenv(stored_programs.ENV_VAR)
    monkeypatch.setattr(compile_cache, "current", lambda: None)
    traced.program()(*args(), scale=2.0)
    assert not program_store.exists()


@pytest.mark.parametrize("agent", ["ppo", pytest.param("dqn", marks=pytest.mark.slow)])  # one store
def test_the_trainers_stored_programs_compute_what_tracing_does(program_store, monkeypatch, agent):
    from tests.engine.test_dqn import TINY

    config = tiny() if agent == "ppo" else TINY

    def run():
        trainer = PopulationTrainer("cart_pole", "earth", config, 2, agent=agent)
        hparams = configs([1e-3, 3e-4]) if agent == "ppo" else [{"lr": 1e-3}, {"lr": 3e-4}]
        state = trainer.init(jax.random.PRNGKey(0), hparams)
        state = trainer.train(state, 4 * config.num_envs * config.rollout_len)
        return state, trainer.evaluate(state, jax.random.PRNGKey(1))

    exported, rewards = run()  # traced, exported and stored
    loaded, rewards_loaded = run()  # loaded
    assert len(list(program_store.glob("*.bin"))) == 2
    monkeypatch.setenv(stored_programs.ENV_VAR, "off")
    plain, rewards_plain = run()  # plain jit
    for other in (loaded, plain):
        for x, y in zip(jax.tree.leaves(exported), jax.tree.leaves(other), strict=True):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    np.testing.assert_array_equal(rewards, rewards_loaded)
    np.testing.assert_array_equal(rewards, rewards_plain)


def test_weak_and_strong_inputs_share_one_stored_program(program_store):
    """A fresh state's counters are weakly typed, a trained one's are not: one program."""
    traced = Traced()
    program = traced.program()
    weak = ({"x": jnp.asarray(2.0) * jnp.ones(3), "y": jnp.ones(3)},)
    weak[0]["x"] = jnp.asarray(1.5)  # a Python-scalar-born value: weakly typed
    strong = ({"x": jnp.asarray(1.5, jnp.float32), "y": jnp.ones(3)},)
    assert weak[0]["x"].weak_type and not strong[0]["x"].weak_type
    np.testing.assert_array_equal(program(*weak, scale=2.0)["x"], 1.5 * 2.0 + np.ones(3))
    np.testing.assert_array_equal(program(*strong, scale=2.0)["x"], 1.5 * 2.0 + np.ones(3))
    assert traced.traces == 1 and len(list(program_store.glob("*.bin"))) == 1
    assert program.cache_size() == 1  # one compiled call for both


def test_a_program_jax_cannot_export_runs_traced_with_a_warning(program_store, caplog):
    @jax.jit
    def host(args):  # a host callback: no compatibility guarantee, so jax.export refuses it
        doubled = jax.pure_callback(
            lambda x: np.asarray(x) * 2, jax.ShapeDtypeStruct((3,), jnp.float32), args["x"]
        )
        return {"x": doubled, "y": args["y"]}

    program = StoredProgram("host", host, {}, output=lambda a: jax.tree.structure(a[0]))
    with caplog.at_level(logging.WARNING, logger="metapbt.stored_programs"):
        out = program(*args())
    assert "cannot be stored" in caplog.text
    np.testing.assert_array_equal(out["x"], 2 * np.arange(3))
    assert not program_store.exists() or not list(program_store.glob("*.bin"))


def test_describe_takes_every_field_and_refuses_what_it_cannot_write():
    @dataclasses.dataclass(frozen=True)
    class Model:
        scale: float
        hidden: float = dataclasses.field(default=1.0, repr=False, compare=False)

    assert stored_programs.describe(Model(2.0, 3.0))["hidden"] == 3.0  # not in repr: still keyed
    assert stored_programs.describe(Model(2.0)) != stored_programs.describe(Model(2.0, 3.0))
    with pytest.raises(stored_programs.UndescribableError):
        stored_programs.describe({"objective": lambda x: x})


def test_a_static_argument_that_cannot_be_described_runs_traced_and_stores_nothing(program_store):
    @partial(jax.jit, static_argnames="f")
    def apply(args, f):
        return {"x": f(args["x"]), "y": args["y"]}

    program = StoredProgram("apply", apply, {}, output=lambda a: jax.tree.structure(a[0]))
    out = program(*args(), f=jnp.square)
    np.testing.assert_array_equal(out["x"], np.arange(3) ** 2)
    assert not program_store.exists()


def test_a_stored_gp_fit_equals_the_traced_one_and_a_changed_model_refits(
    program_store, monkeypatch
):
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(20, 3)).astype(np.float32)
    y = np.sin(3 * x[:, 1]).astype(np.float32)
    stored = ExactGP(TimeVaryingSE()).fit(x, y)
    again = ExactGP(TimeVaryingSE()).fit(x, y)  # loaded
    monkeypatch.setenv(stored_programs.ENV_VAR, "off")
    plain = ExactGP(TimeVaryingSE()).fit(x, y)
    for other in (again, plain):
        np.testing.assert_array_equal(np.asarray(stored.alpha), np.asarray(other.alpha))
    monkeypatch.delenv(stored_programs.ENV_VAR)
    ExactGP(TimeVaryingSE(), jitter=1e-4).fit(x, y)  # another model: another program
    names = [p.read_bytes().partition(b"\n")[0] for p in program_store.glob("*.bin")]
    assert len(names) == 2 and all(b'"gp.fit"' in n for n in names)
