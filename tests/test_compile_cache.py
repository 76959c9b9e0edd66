import os
from pathlib import Path

import jax
import pytest
from typer.testing import CliRunner

from metapbt import compile_cache
from metapbt.cli import app


@pytest.fixture
def no_cache_configured():
    """Run with JAX's cache settings unset, and put them back afterwards."""
    before = (
        jax.config.jax_compilation_cache_dir,
        jax.config.jax_persistent_cache_min_compile_time_secs,
    )
    jax.config.update("jax_compilation_cache_dir", None)
    yield
    jax.config.update("jax_compilation_cache_dir", before[0])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", before[1])


def test_default_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv(compile_cache.ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert compile_cache.default_dir() == tmp_path / "metapbt" / "jax"
    monkeypatch.setenv(compile_cache.ENV_VAR, str(tmp_path / "mine"))
    assert compile_cache.default_dir() == tmp_path / "mine"
    for off in ("off", "0", "False"):
        monkeypatch.setenv(compile_cache.ENV_VAR, off)
        assert compile_cache.default_dir() is None


def test_enable_keeps_every_program_and_respects_a_configured_cache(
    no_cache_configured, monkeypatch, tmp_path
):
    monkeypatch.setenv(compile_cache.ENV_VAR, "off")
    assert compile_cache.enable() is None
    assert compile_cache.current() is None
    assert compile_cache.enable(tmp_path / "a") == str(tmp_path / "a")
    assert (tmp_path / "a").is_dir()
    assert jax.config.jax_persistent_cache_min_compile_time_secs == 0.0
    assert compile_cache.enable(tmp_path / "b") == str(tmp_path / "a")  # already configured


def test_an_unwritable_cache_directory_leaves_the_cache_off(no_cache_configured, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert compile_cache.enable(blocker / "jax") is None
    assert compile_cache.current() is None


def test_the_cli_turns_the_cache_on_and_off(no_cache_configured, monkeypatch, tmp_path):
    runner = CliRunner()
    monkeypatch.setenv(compile_cache.ENV_VAR, str(tmp_path / "cache"))
    assert runner.invoke(app, ["methods"]).exit_code == 0
    assert compile_cache.current() == str(tmp_path / "cache")
    jax.config.update("jax_compilation_cache_dir", None)
    assert runner.invoke(app, ["--no-compile-cache", "methods"]).exit_code == 0
    assert compile_cache.current() is None
    assert compile_cache.default_dir() is None  # processes it starts inherit the switch
    assert Path(tmp_path / "cache").is_dir()


def test_the_tests_compile_at_llvm_optimisation_level_1():
    # tests/conftest.py sets it for every test process and the commands the tests start.
    if os.environ.get("METAPBT_TEST_XLA_DEFAULTS", "") not in ("", "0"):
        pytest.skip("the tests run with XLA's defaults (METAPBT_TEST_XLA_DEFAULTS)")
    assert "--xla_backend_optimization_level=1" in os.environ["XLA_FLAGS"].split()
