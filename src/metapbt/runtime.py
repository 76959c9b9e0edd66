"""Process-level XLA settings that the command line applies before JAX starts.

XLA's CPU backend runs large kernels on an Eigen thread pool, which intermittently wedges on
vmapped programs (every thread parked, 0 % CPU, no progress): on the 2-core development machine
a batch of 3 runs x 3 members and a 32-member trainer each hung once, and the same programs ran
at the next attempt. Users of other JAX projects report the same wedge and that
``--xla_cpu_multi_thread_eigen=false`` avoids it (PyAutoLabs/PyAutoFit #1528, #1530). A study
that hangs forever is worse than a slightly slower one, so :func:`configure_xla` sets that flag
unless ``XLA_FLAGS`` already mentions it; set ``XLA_FLAGS=--xla_cpu_multi_thread_eigen=true``
to keep the pool. It only matters on CPU, and only before JAX initialises its backend.
"""

from __future__ import annotations

import os

EIGEN_FLAG = "--xla_cpu_multi_thread_eigen=false"


def configure_xla() -> None:
    """Add :data:`EIGEN_FLAG` to ``XLA_FLAGS`` unless the user chose a value (idempotent)."""
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_multi_thread_eigen" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {EIGEN_FLAG}".strip()
