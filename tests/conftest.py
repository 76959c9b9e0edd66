"""Session set-up shared by every test."""

from __future__ import annotations

import os
import tempfile

from metapbt import runtime


def pytest_configure(config) -> None:
    """Keep the tests' compiled programs out of the user's cache directory.

    Commands run by the tests (in process or as subprocesses) use a throwaway compilation cache
    for the session, unless the caller chose one.
    """
    runtime.configure_xla()  # as the command line does (before JAX starts)
    if "METAPBT_COMPILE_CACHE" not in os.environ:
        os.environ["METAPBT_COMPILE_CACHE"] = tempfile.mkdtemp(prefix="metapbt-test-jax-")
