"""Should a DQN clone take its donor's replay buffer? PBT on CartPole, both ways.

    python benchmarks/dqn_clone_buffer.py [--seeds 5] [--rounds 10]

PBT (population 4, quantile 0.25) tunes DQN's default space with the ``classic`` DQN preset on
CartPole under Earth gravity, 10k steps per round, once with ``clone_buffer=True`` (a clone
takes its donor's weights *and* its buffer) and once with ``clone_buffer=False`` (it keeps its
own experience). Every seed starts both settings from the same initial population, networks
and environment keys (common random numbers: the settings differ only from the first clone
on). The seeds of one setting train together as one batch, as ``study run`` batches them.

Reports, per setting, each seed's best member per round, the mean over seeds of the final best
and of the mean best over rounds (an area under the curve), and the number of seeds whose best
member reached 500; writes benchmarks/results/dqn_clone_buffer.json. A learning comparison, not
a timing: its numbers do not depend on the machine's load.
"""

from __future__ import annotations

import argparse
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from metapbt import Clone, Keep, Population
from metapbt.engine.dqn_agent import default_space
from metapbt.engine.dqn_presets import DQN_PRESETS
from metapbt.engine.trainer import PopulationTrainer
from metapbt.population import methods

from _common import write


def run(clone_buffer: bool, seeds: int, rounds: int, interval: int, size: int) -> np.ndarray:
    """Best member per round ``[seeds, rounds]`` of PBT with this clone rule."""
    config = DQN_PRESETS.make("classic").with_overrides(clone_buffer=clone_buffer)
    trainer = PopulationTrainer("cart_pole", "earth", config, seeds * size, agent="dqn")
    space = default_space()
    pops = [Population(space, size, methods.make("pbt", 0.25), seed) for seed in range(seeds)]
    configs = [c for pop in pops for c in pop.ask()]
    keys = jnp.concatenate(
        [jax.random.split(jax.random.PRNGKey(seed), size) for seed in range(seeds)]
    )
    state = trainer.init_members(keys, configs)
    best = np.zeros((seeds, rounds))
    for r in range(rounds):
        state = trainer.train(state, interval)
        rewards = trainer.evaluate(state, jax.random.PRNGKey(1000 + r))
        decisions: list[Any] = []
        for i, pop in enumerate(pops):
            own = rewards[i * size : (i + 1) * size]
            best[i, r] = np.nanmax(own)
            pop.ask()
            for d in pop.tell((r + 1) * interval, [float(x) for x in own]):
                off = i * size
                decisions.append(
                    Clone(d.member + off, d.source + off, d.config)
                    if isinstance(d, Clone)
                    else Keep(d.member + off, d.config)
                )
        state = trainer.apply(state, decisions)
        print(f"clone_buffer={clone_buffer} round {r + 1}: best {np.round(best[:, r], 1)}")
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--interval", type=int, default=10_000)
    parser.add_argument("--population", type=int, default=4)
    args = parser.parse_args()
    results = {}
    for clone_buffer in (True, False):
        best = run(clone_buffer, args.seeds, args.rounds, args.interval, args.population)
        results[str(clone_buffer).lower()] = {
            "best_per_round": best.tolist(),
            "final_best_mean": float(best[:, -1].mean()),
            "auc_mean": float(best.mean()),
            "seeds_reaching_500": int((best.max(axis=1) >= 500).sum()),
        }
    for name, row in results.items():
        print(
            f"clone_buffer={name}: final best {row['final_best_mean']:.1f} (mean of "
            f"{args.seeds} seeds), mean best over rounds {row['auc_mean']:.1f}, "
            f"{row['seeds_reaching_500']}/{args.seeds} seeds reached 500"
        )
    path = write("dqn_clone_buffer", {**vars(args), "results": results})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
