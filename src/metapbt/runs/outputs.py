"""The files of one run directory, every one written atomically (temporary file, then rename).

* ``history.parquet``: one row per member per round (``metapbt.history/1``,
  docs/reference/formats.md);
* ``summary.json``: the run's settings, best score per round, wall time, the explorer's state,
  versions (``metapbt.summary/1``);
* ``run.png``: best reward over time and each hyperparameter's schedule per member;
* ``checkpoint.msgpack``: the whole state after the last finished round (for ``--resume``).

A run killed at any moment leaves the last finished round intact.
"""

from __future__ import annotations

import dataclasses
import json
import platform
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax

from metapbt import __version__
from metapbt._atomic import write_atomic, write_text_atomic
from metapbt.analysis.run_figure import plot_run
from metapbt.engine.dqn_presets import DQNConfig
from metapbt.engine.presets import PPOConfig
from metapbt.population.history import History
from metapbt.runs.checkpoint import Checkpoint
from metapbt.runs.config import RunConfig

SUMMARY_SCHEMA = "metapbt.summary/1"
PHASES = ("start", "train", "evaluate", "explore", "apply", "write", "finish")
"""A batch's wall time, in order: building the trainer and first states (resumes included),
training, evaluation, every run's explore step, applying the decisions (clones, new
hyperparameters), writing histories and checkpoints, and the final summaries and figures."""
CHECKPOINT = "checkpoint.msgpack"


@dataclass(frozen=True)
class RunOutputs:
    """The output files of the run directory ``root``.

    Attributes:
        root: The run directory.
        labels: Written into the history file's metadata (the run's agent).
    """

    root: Path
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def history(self) -> Path:
        """``history.parquet``."""
        return self.root / "history.parquet"

    @property
    def summary(self) -> Path:
        """``summary.json``."""
        return self.root / "summary.json"

    @property
    def figure(self) -> Path:
        """``run.png``."""
        return self.root / "run.png"

    @property
    def checkpoint(self) -> Path:
        """``checkpoint.msgpack``."""
        return self.root / CHECKPOINT

    @property
    def timings(self) -> Path:
        """``timings.json``: where the last process's wall time went (`PHASES`)."""
        return self.root / "timings.json"

    def write_round(self, history: History, checkpoint: Checkpoint) -> None:
        """After each round: the history so far and the checkpoint."""
        history.to_parquet(self.history, self.labels)
        checkpoint.save(self.checkpoint)

    def write_final(self, summary: Mapping[str, Any], history: History, title: str) -> None:
        """After the last round: the summary and the figure."""
        write_text_atomic(self.summary, json.dumps(summary, indent=2))
        frame, names = history.to_frame(), history.space.names
        write_atomic(self.figure, lambda tmp: plot_run(frame, names, tmp, title))


def summary(
    config: RunConfig,
    context: Mapping[str, float],
    agent_config: PPOConfig | DQNConfig,
    checkpoint: Checkpoint,
    explorer: Mapping[str, Any],
) -> dict[str, Any]:
    """The ``metapbt.summary/1`` record of a finished run.

    Args:
        config: The run's config.
        context: Its resolved context values.
        agent_config: Its agent's preset's values (a frozen dataclass).
        checkpoint: The run after its last round (records, elapsed seconds).
        explorer: The explorer's state (GP fits, meta weights).
    """
    return {
        "schema": SUMMARY_SCHEMA,
        **config.model_dump(mode="json"),
        "context_values": dict(context),
        "preset_values": dataclasses.asdict(agent_config),
        "best_per_round": list(checkpoint.records),
        "final_best": checkpoint.records[-1]["best"],
        "wall_seconds": checkpoint.elapsed,
        "explorer": dict(explorer),
        "versions": {
            "metapbt": __version__,
            "jax": jax.__version__,
            "python": platform.python_version(),
        },
    }
