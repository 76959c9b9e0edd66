"""Session set-up shared by every test."""

from __future__ import annotations

import os
import tempfile


def pytest_configure(config) -> None:
    """Share a throwaway compilation cache across the session, out of the user's cache directory.

    Commands run by the tests (in process or as subprocesses) use it, and so does every test that
    calls the library directly: many tests compile the same programs (one env, one shape) in new
    trainer objects, which JAX's in-memory cache does not share; the persistent cache, which the
    command line turns on in production, does (``tests/engine/test_batch.py`` and
    ``test_resume_methods.py``: 212 s without it, 138 s with it, on the idle 2-core machine).
    """
    if "METAPBT_COMPILE_CACHE" not in os.environ:
        os.environ["METAPBT_COMPILE_CACHE"] = tempfile.mkdtemp(prefix="metapbt-test-jax-")
    from metapbt import compile_cache

    compile_cache.enable()
