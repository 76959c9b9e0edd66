"""Helpers shared by the benchmark scripts: medians and JSON output."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import jax
import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    return {
        "python": platform.python_version(),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "processor": platform.processor() or platform.machine(),
    }


def write(name: str, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (plus machine info) to ``benchmarks/results/<name>.json``."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=2))
    return path


def median(values: list[float]) -> float:
    return float(np.median(np.asarray(values)))


def timed_run(config: Any) -> float:
    """Wall seconds of one ``metapbt.engine.run.run(config)`` into a temporary directory."""
    import tempfile
    import time

    from metapbt.engine.run import run

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run(config, Path(tmp) / "run")
        return time.perf_counter() - start
