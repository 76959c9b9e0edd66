"""Session set-up shared by every test."""

from __future__ import annotations

import os
from pathlib import Path


def pytest_configure(config) -> None:
    """Share a compilation cache across the session and across runs, apart from the user's.

    Commands run by the tests (in process or as subprocesses) use it, and so does every test that
    calls the library directly: many tests compile the same programs (one env, one shape) in new
    trainer objects, which JAX's in-memory cache does not share; the persistent cache, which the
    command line turns on in production, does (``tests/engine/test_batch.py`` and
    ``test_resume_methods.py``: 212 s without it, 138 s with it, on the idle 2-core machine).

    The cache lives in ``$XDG_CACHE_HOME/metapbt/test-jax`` (``~/.cache/...``), kept between
    runs so that a contributor's second run loads what the first compiled (JAX keys entries by
    the program, its version and flags: a changed program compiles again), and apart from the
    cache ``metapbt`` commands use. ``METAPBT_COMPILE_CACHE`` overrides it: a fresh directory
    times a cold run, ``off`` turns it off. A whole run adds about 40 MB; deleting it is always
    safe. Not size-bounded: JAX's bound evicts by access time, which two test workers sharing
    the directory raced on (missing-file warnings, and a slower run).
    """
    if "METAPBT_COMPILE_CACHE" not in os.environ:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        os.environ["METAPBT_COMPILE_CACHE"] = str(Path(base) / "metapbt" / "test-jax")
    from metapbt import compile_cache

    compile_cache.enable()
