"""Helpers shared by the benchmark scripts: medians and JSON output."""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Iterator
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
    """Wall seconds of one ``metapbt.runs.run.run(config)`` into a temporary directory."""
    import tempfile

    from metapbt.runs.run import run

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run(config, Path(tmp) / "run")
        return time.perf_counter() - start


def simulated_rounds(rows: int, size: int, seed: int) -> Iterator[tuple[Any, ...]]:
    """Rounds of a simulated population, for timing explore steps at about ``rows`` rows.

    Every round adds ``size`` random configurations whose reward grows with the first
    hyperparameter. From the round whose PB2 table holds ``rows - 24`` rows on, yields
    ``(rng, context, request)``: the round's context and one explore request with a pending
    point; the last round is the first whose table holds ``rows`` rows.
    """
    from metapbt import History, default_space
    from metapbt.population.explorers import ExploreRequest, RoundContext

    space = default_space()
    rng = np.random.default_rng(seed)
    history, rewards = History(space), np.zeros(size)
    step = 0
    while True:
        step += 1000
        configs = [space.sample(rng) for _ in range(size)]
        rewards += rng.uniform(size=size) + np.array([space.to_unit(c)[0] for c in configs])
        history.add_round(step, configs, list(rewards), [-1] * size)
        n = (step // 1000 - 1) * size
        if n < rows - 24:
            continue
        ctx = RoundContext(space, history, step, rewards.copy(), size)
        request = ExploreRequest(0, 1, configs[1], float(rewards[1]), (configs[2],))
        yield rng, ctx, request
        if n >= rows:
            return


def training_rate(trainer: Any, state: Any, steps: int, repeats: int) -> tuple[float, Any]:
    """Median env steps/s (all members) of ``trainer.train(state, steps)``, after a warm-up.

    The warm-up trains ``steps`` too: the JAX trainer compiles per number of iterations.
    """
    state = trainer.train(state, steps)  # compile
    jax.block_until_ready(state.params)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        state = trainer.train(state, steps)
        jax.block_until_ready(state.params)
        rates.append(trainer.size * steps / (time.perf_counter() - start))
    return median(rates), state
