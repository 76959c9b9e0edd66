"""JAX's persistent compilation cache, on by default for every ``metapbt`` command.

A run compiles its training program and a dozen small GP, acquisition and meta-model programs;
in a fresh process that is most of a short run's time. With the cache, a second process loads
them from disk instead. Every program is kept (JAX's default keeps only those that took over
1 s to compile, and the many shorter GP programs would then recompile in every process).

Where: ``$METAPBT_COMPILE_CACHE`` if set (a directory, or ``off`` / ``0`` / ``false`` to turn
the cache off), else ``$XDG_CACHE_HOME/metapbt/jax`` (``~/.cache/metapbt/jax``). A cache that
JAX was already pointed at (``JAX_COMPILATION_CACHE_DIR``) is left alone. Deleting the
directory is always safe. ``metapbt --no-compile-cache`` turns it off for one command.

Nothing happens at import: `enable` is called by the command-line interface and by the
processes that run study cells.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import jax

logger = logging.getLogger(__name__)

ENV_VAR = "METAPBT_COMPILE_CACHE"
OFF = {"off", "0", "false", "no", "none"}
"""Values of an environment variable that turn a cache off."""


def default_dir() -> Path | None:
    """The cache directory this process should use (``None``: turned off by the environment)."""
    value = os.environ.get(ENV_VAR, "").strip()
    if not value:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        return Path(base) / "metapbt" / "jax"
    return None if value.lower() in OFF else Path(value).expanduser()


def current() -> str | None:
    """The directory JAX caches compiled programs in, if any."""
    return jax.config.jax_compilation_cache_dir or None  # type: ignore[attr-defined]  # jax's options: dynamic, untyped


def enable(path: str | Path | None = None) -> str | None:
    """Turn the persistent cache on (``path``, else `default_dir`); return its directory.

    A directory JAX already uses is kept (a user's ``JAX_COMPILATION_CACHE_DIR``, or an earlier
    call). A directory that cannot be created leaves the cache off, with a warning: caching
    never stops a run.
    """
    if current():
        return current()
    target = Path(path) if path is not None else default_dir()
    if target is None:
        return None
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        logger.warning("compilation cache off: cannot create %s (%s)", target, err)
        return None
    jax.config.update("jax_compilation_cache_dir", str(target))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    logger.debug("compilation cache: %s", target)
    return str(target)
