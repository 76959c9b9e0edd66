"""Host-trainer timings on LunarLander: env steps/s for population 4, and evaluation time.

    python benchmarks/lunar_lander_throughput.py [--repeats 3] [--iterations 4]

1. env steps/s of one bare gymnasium LunarLander-v3 with random actions (the host ceiling);
2. env steps/s of the host population trainer (population 4, LunarLander, default context),
   training included, for the ``fast`` and ``box2d`` presets, measured on compiled iterations
   (median of repeats);
3. wall time of one evaluation (``eval_episodes`` episodes per member) of the trained members.
Writes benchmarks/results/lunar_lander_throughput.json.
"""

from __future__ import annotations

import argparse
import time

import gymnasium
import jax
import numpy as np

from metapbt.engine import presets
from metapbt.engine.host_trainer import HostPopulationTrainer

from _common import median, training_rate, write

CONFIGS = [{"lr": 3e-4, "lambda": 0.95, "clip": 0.2}] * 4


def bare_env(steps: int = 20_000) -> float:
    env = gymnasium.make("LunarLander-v3")
    env.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, 4, steps)
    start = time.perf_counter()
    for action in actions:
        _, _, term, trunc, _ = env.step(int(action))
        if term or trunc:
            env.reset()
    return steps / (time.perf_counter() - start)


def throughput(preset: str, repeats: int, iterations: int) -> tuple[float, float]:
    config = presets.make(preset)
    trainer = HostPopulationTrainer("lunar_lander", None, config, 4)
    state = trainer.init(jax.random.PRNGKey(0), CONFIGS)
    rate, state = training_rate(trainer, state, config.batch_size * iterations, repeats)
    trainer.evaluate(state, jax.random.PRNGKey(0))  # compile
    start = time.perf_counter()
    trainer.evaluate(state, jax.random.PRNGKey(1))
    return rate, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=4)
    args = parser.parse_args()
    results: dict[str, object] = {"population": 4}
    bare = median([bare_env() for _ in range(args.repeats)])
    results["bare_env_steps_per_s"] = bare
    print(f"bare gymnasium LunarLander-v3, random actions: {bare:10.0f} env steps/s (1 env)")
    for preset in ("fast", "box2d"):
        rate, eval_s = throughput(preset, args.repeats, args.iterations)
        results[f"steps_per_s_{preset}"] = rate
        results[f"evaluate_s_{preset}"] = eval_s
        print(
            f"host population trainer, {preset:5s}: {rate:10.0f} env steps/s (4 members); "
            f"one evaluation {eval_s:.1f} s"
        )
    print(f"wrote {write('lunar_lander_throughput', results)}")


if __name__ == "__main__":
    main()
