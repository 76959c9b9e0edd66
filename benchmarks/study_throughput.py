"""Study throughput: the same grid run cell by cell (``--batch 1``) and in automatic batches.

    python benchmarks/study_throughput.py [--preset fast] [--seeds 2] [--modes 1,auto]
    python benchmarks/study_throughput.py --modes auto,mixed,auto-unwatched --label mixed

Modes: a ``--batch`` value (``1``, ``auto``: automatic batches of one context each,
``--one-context``, or a number); ``mixed`` (automatic batches that mix an env's contexts:
``--mix-contexts``, the default); ``auto-unwatched`` (``auto`` in the runner's own process:
``--no-watchdog``, the cost of the watchdog's child processes).

The grid: 3 methods (random, pbt, pb2-star) x 3 envs (cart_pole, acrobot, pendulum) x 2
contexts (earth, neptune) x ``--seeds`` seeds (2: 36 cells), population 4, 600k steps per
member, an explore every 40k. Each mode runs ``python -m metapbt study run FILE --batch B`` in
a fresh process with a fresh compilation cache and results directory, so each pays its own
compilations, as a first study on a machine does. Reported per mode: wall time, cells per
hour, env steps per second, and the share of wall time outside training, estimated as
``1 - (env steps / training rate) / wall``, with the training rate of the population trainer
measured here at the batch's member count (``training_rate`` of ``_common``), and measured:
every run writes where its batch's time went (``timings.json``: start, train, evaluate,
explore, apply, write, finish), summed here over the runs with the rest of the wall time as
``other`` (process starts, imports, claims, the watchdog).

On a GPU the same script runs unchanged; ``--preset paper --seeds 1 --modes auto`` times an
18-cell slice and extrapolates to the 1,600-cell paper grid.
Writes benchmarks/results/study_throughput[_<label>].json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax

from metapbt.engine import presets
from metapbt.engine.trainer import PopulationTrainer
from metapbt.studies.config import load_study
from metapbt.studies.runner import auto_batch

from _common import training_rate, write

ENVS = ("cart_pole", "acrobot", "pendulum")
METHODS = ("random", "pbt", "pb2-star")
PAPER_CELLS = 1600


def study_file(root: Path, preset: str, seeds: int) -> Path:
    tasks = "\n".join(
        f'[[tasks]]\nenv = "{env}"\ncontexts = ["earth", "neptune"]\n' for env in ENVS
    )
    text = (
        f'name = "throughput"\nmethods = {list(METHODS)!r}\nseeds = {seeds}\n\n'
        f'[protocol]\npreset = "{preset}"\npopulation = 4\nbudget = 600000\ninterval = 40000\n\n'
        + tasks
    ).replace("'", '"')
    path = root / "throughput.toml"
    path.write_text(text)
    return path


def run_mode(file: Path, batch: str, root: Path) -> float:
    """Wall seconds of one ``metapbt study run`` process (fresh cache and results).

    Each mode runs in its own child process; its peak resident memory is read afterwards from
    ``resource.getrusage(RUSAGE_CHILDREN)`` (the largest child so far).
    """
    own = root / f"throughput-{batch}.toml"  # results in results/throughput-<batch>
    own.write_text(file.read_text().replace('"throughput"', f'"throughput-{batch}"', 1))
    env = {**os.environ, "METAPBT_COMPILE_CACHE": str(root / f"cache-{batch}")}
    command = [sys.executable, "-m", "metapbt", "study", "run", str(own)]
    command += {
        "auto": ["--one-context"],
        "mixed": ["--mix-contexts"],
        "auto-unwatched": ["--one-context", "--no-watchdog"],
    }.get(batch, ["--batch", batch])
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env)
    return time.perf_counter() - start


def breakdown(root: Path, mode: str, wall: float) -> dict[str, float]:
    """Seconds per phase summed over the mode's runs (``timings.json``), and the rest.

    Each run's file holds its share of its batch's phases (``metapbt.runs.outputs.PHASES``);
    ``other`` is the wall time outside every batch's ``train``: the process start, imports,
    the runner's claims and the watchdog's child processes.
    """
    totals: dict[str, float] = {}
    for path in root.rglob(f"throughput-{mode}/**/timings.json"):
        for phase, seconds in json.loads(path.read_text())["seconds"].items():
            totals[phase] = totals.get(phase, 0.0) + seconds
    totals["other"] = wall - sum(totals.values())
    return totals


def trainer_rate(preset: str, members: int) -> float:
    config = presets.make(preset)
    trainer = PopulationTrainer("cart_pole", "earth", config, members)
    state = trainer.init(jax.random.PRNGKey(0), [{"lr": 3e-4}] * members)
    return training_rate(trainer, state, config.batch_size * 10, 3)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--modes", default="1,auto", help="--batch values to compare")
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    results: dict[str, object] = {"preset": args.preset, "devices": str(jax.devices())}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        file = study_file(root, args.preset, args.seeds)
        cells = len(load_study(file).cells)
        steps = cells * 4 * 600_000
        for mode in args.modes.split(","):
            members = 4 * (int(mode) if mode.isdigit() else auto_batch(4))
            contexts = 1 if mode == "mixed" else 2  # a batch: one env (and one context)
            members = min(members, 4 * cells // (contexts * len(ENVS)))
            wall = run_mode(file, mode, root)
            phases = breakdown(root, mode, wall)
            rate = trainer_rate(args.preset, members)
            outside = 1 - steps / rate / wall
            peak_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
            results[f"batch_{mode}"] = {
                "cells": cells,
                "wall_s": wall,
                "cells_per_hour": cells * 3600 / wall,
                "env_steps_per_s": steps / wall,
                "training_rate_steps_per_s": rate,
                "members_per_batch": members,
                "outside_training": outside,
                "peak_rss_gib_any_child_so_far": peak_gib,
                "phases_s": phases,
                "outside_training_measured": 1 - phases.get("train", 0.0) / wall,
            }
            print(
                f"--batch {mode:>4}: {cells} cells in {wall:.0f} s = {cells * 3600 / wall:.0f} "
                f"cells/h, {steps / wall:,.0f} env steps/s; training rate at {members} members "
                f"{rate:,.0f} steps/s; {100 * outside:.0f} % of wall time outside training; "
                f"peak memory of a child so far {peak_gib:.1f} GiB"
            )
            print(
                "  where the wall time went (timings.json of every run): "
                + ", ".join(f"{k} {100 * v / wall:.1f} %" for k, v in phases.items())
            )
            if args.preset == "paper":
                hours = PAPER_CELLS * wall / cells / 3600
                print(f"  extrapolated {PAPER_CELLS}-cell paper study: {hours:.1f} h")
    name = "_".join(filter(None, ("study_throughput", args.label)))
    print(f"wrote {write(name, results)}")


if __name__ == "__main__":
    main()
