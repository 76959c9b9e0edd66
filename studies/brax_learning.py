"""The table of docs/guides/brax.md ("Does each robot learn?") from brax_learning.toml's cells.

    metapbt study run studies/brax_learning.toml
    python studies/brax_learning.py        # writes studies/results/brax_learning/learning.md

Per robot: the untrained policy's return (the study's population initialised as a run
initialises it, seed 0, evaluated before any training: mean and best of the 4 members, 4
episodes each), and the best member's return after the first sync point and at the end.
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np

from metapbt.analysis.render import md_table
from metapbt.engine import presets
from metapbt.engine.factory import make_trainer
from metapbt.population.space import default_space

RESULTS = Path(__file__).resolve().parent / "results" / "brax_learning"


def untrained(env: str, context: str, preset: str, population: int) -> np.ndarray:
    """Evaluation returns of a freshly initialised population (one per member)."""
    trainer = make_trainer(env, context, presets.make(preset, env=env), population)
    rng, space = np.random.default_rng(0), default_space()
    configs = [space.sample(rng) for _ in range(population)]
    state = trainer.init(jax.random.PRNGKey(0), configs)
    return np.asarray(trainer.evaluate(state, jax.random.PRNGKey(1)))


def main() -> None:
    """Print the table and write it to ``learning.md``."""
    rows = []
    for path in sorted(RESULTS.glob("*/summary.json")):
        summary = json.loads(path.read_text())
        before = untrained(
            summary["env"], summary["context"], summary["preset"], summary["population"]
        )
        rounds = summary["best_per_round"]
        rows.append(
            [
                summary["env"],
                f"{before.mean():.1f} (best {before.max():.1f})",
                f"{rounds[0]['best']:.1f}",
                f"{summary['final_best']:.1f}",
                f"{summary['budget']:,}",
            ]
        )
        print(" | ".join(rows[-1]), flush=True)
    header = [
        "robot",
        "untrained: mean (best)",
        "best after the first sync point",
        "best at the end",
        "steps per member",
    ]
    out = RESULTS / "learning.md"
    out.write_text(md_table(header, rows) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
