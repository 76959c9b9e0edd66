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
    _compile_faster()
    if "METAPBT_COMPILE_CACHE" not in os.environ:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        os.environ["METAPBT_COMPILE_CACHE"] = str(Path(base) / "metapbt" / "test-jax")
    from metapbt import compile_cache

    compile_cache.enable()


#: The XLA option every test process sets (and the commands the tests start inherit): LLVM's
#: code generation at optimisation level 1 instead of XLA's default 2. See ``_compile_faster``.
FAST_COMPILE_FLAG = "--xla_backend_optimization_level=1"


def _compile_faster() -> None:
    """Add :data:`FAST_COMPILE_FLAG` to ``XLA_FLAGS``, before JAX starts its backend.

    Most tests compile more than they run (a few rounds of a small population), and XLA's CPU
    compiler spends most of its time in LLVM. Measured on the idle 2-core machine from cold
    caches: ``tests/engine/test_tuning.py``, ``tests/test_stored_programs.py`` and
    ``tests/runs/test_pooled_metadata.py`` took 74 s with XLA's defaults and 59 s at level 1;
    the tests that run longer (``tests/population/test_categorical.py``,
    ``tests/engine/test_dqn.py``, ``tests/population/test_explorers.py``) 137 s and 140 s; the
    whole default job (``-n 2``) 750 s and 681 s. Level 0 compiles faster still but runs the GP
    fits and the learning tests so much slower that the whole job took longer (821 s). The
    programs are the same (XLA's HLO passes, fusion included, all run);
    only their machine code is less optimised. Benchmarks, studies and every ``metapbt``
    command outside the tests use XLA's defaults; ``METAPBT_TEST_XLA_DEFAULTS=1`` runs the
    tests with them too.
    """
    if os.environ.get("METAPBT_TEST_XLA_DEFAULTS", "") not in ("", "0"):
        return
    flags = os.environ.get("XLA_FLAGS", "")
    if "--xla_backend_optimization_level" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {FAST_COMPILE_FLAG}".strip()
