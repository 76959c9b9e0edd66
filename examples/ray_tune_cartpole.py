"""Tune a small JAX PPO agent on CartPole with Ray Tune, MetaPB2 choosing the explores.

    pip install -e ".[ray]"
    python examples/ray_tune_cartpole.py --method pb2-star --samples 4 --iterations 15

Each trial is one PPO agent of our engine (a population trainer of size 1), reporting its
evaluation return every 40k environment steps and checkpointing its whole state (weights,
optimiser, environments) as flax bytes. Switching the method is one argument: ``pbt``,
``pb2-star``, ``dkl``, or a meta method with ``--metadata``/``--target`` (e.g. the bundled
CartPole store: ``--method multitask --metadata src/metapbt/data/meta/cart_pole --target
"cart_pole earth"``). The winning schedule ends up in ``history.parquet`` next to Ray's results.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import jax
from flax import serialization
from ray import tune

from metapbt.engine import presets
from metapbt.engine.factory import make_trainer
from metapbt.integrations.ray_tune import MetaPB2

STEPS_PER_REPORT = 40_000
TUNED = ("lr", "lambda", "clip")


def trainable(config: dict) -> None:
    """One PPO agent on CartPole earth; restores its state from a checkpoint when cloned."""
    trainer = make_trainer("cart_pole", "earth", presets.make("classic", env="cart_pole"), 1)
    hparams = [{k: config[k] for k in TUNED}]
    state = trainer.init(jax.random.PRNGKey(config["seed"]), hparams)
    iteration = 0
    restored = tune.get_checkpoint()
    if restored:
        with restored.as_directory() as d:
            data = serialization.msgpack_restore((Path(d) / "state.msgpack").read_bytes())
        leaves = [data["leaves"][str(i)] for i in range(len(data["leaves"]))]
        state = jax.tree.unflatten(jax.tree.structure(state), leaves)
        state = trainer.set_hparams(state, hparams)  # the explore's new values
        iteration = int(data["iteration"])
    key = jax.random.PRNGKey(config["seed"] + 1)
    while iteration < config["iterations"]:
        iteration += 1
        state = trainer.train(state, STEPS_PER_REPORT)
        key, k_eval = jax.random.split(key)
        reward = float(trainer.evaluate(state, k_eval)[0])
        with tempfile.TemporaryDirectory() as d:
            leaves = {str(i): leaf for i, leaf in enumerate(jax.tree.leaves(state))}
            payload = {"leaves": leaves, "iteration": iteration}
            (Path(d) / "state.msgpack").write_bytes(serialization.msgpack_serialize(payload))
            tune.report({"reward": reward}, checkpoint=tune.Checkpoint.from_directory(d))


def main() -> None:
    """Run the experiment and write the population's history."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="pb2-star")
    parser.add_argument("--metadata", default=None)
    parser.add_argument("--target", default=None)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--iterations", type=int, default=15)
    parser.add_argument("--out", default="runs/ray_tune")
    args = parser.parse_args()
    scheduler = MetaPB2(
        args.method,
        metadata=args.metadata,
        target=args.target,
        metric="reward",
        mode="max",
        perturbation_interval=1,
    )
    out = Path(args.out).resolve()
    tuner = tune.Tuner(
        trainable,
        param_space={"seed": tune.randint(0, 10_000), "iterations": args.iterations},
        tune_config=tune.TuneConfig(
            scheduler=scheduler, num_samples=args.samples, reuse_actors=True
        ),
        run_config=tune.RunConfig(storage_path=str(out.parent), name=out.name),
    )
    best = tuner.fit().get_best_result(metric="reward", mode="max")
    print(f"best final reward {best.metrics['reward']:.1f} with {best.config}")
    print(f"schedule: {scheduler.write_history(out / 'history.parquet')}")


if __name__ == "__main__":
    main()
