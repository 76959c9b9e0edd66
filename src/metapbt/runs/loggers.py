"""What a finished round of a run reports, and loggers that watch it (TensorBoard).

A batch (`metapbt.runs.batch`) hands every finished round of a run to that run's
loggers (`RunLogger`), after its history and checkpoint are written, and closes them when
the batch ends, however it ends. Loggers are outputs, like the run directory: they are not part
of the run's settings (``summary.json``), so a study's cells are done or not whatever is logged.

`TensorBoardLogger` writes TensorBoard event files through ``tensorboardX`` (an optional
extra: ``pip install 'metapbt[tensorboard]'``; TensorFlow is not needed). Tags, with the
environment steps per member as the x axis:

| tag                                  | kind   | value |
| ------------------------------------ | ------ | ----- |
| ``reward/member_<m>``                | scalar | member ``m``'s reward (none when NaN) |
| ``hparam/<name>/member_<m>``         | scalar | what member ``m`` trained with up to the step |
| ``population/best_reward``           | scalar | the best finite reward of the round |
| ``population/exploits``              | scalar | members that cloned a donor at the step |
| ``population/exploits/text_summary`` | text   | a table of them: member, donor, both rewards |

Member numbers are zero-padded to the population's width (``member_07`` of 12), so they sort.
A custom-scalars layout ("population" in TensorBoard's Custom Scalars tab) draws every member's
reward on one chart, and every member's value of each hyperparameter on another.
"""

from __future__ import annotations

import logging
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from metapbt.errors import ConfigError
from metapbt.population.history import NO_SOURCE
from metapbt.population.space import Config

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'metapbt[tensorboard]'"


@dataclass(frozen=True)
class RoundReport:
    """What one finished round of one run reports (to progress displays and loggers).

    Attributes:
        round: The round's number, ``1 .. rounds``.
        rounds: The run's number of rounds.
        step: The sync point: environment steps per member at the end of the round.
        rewards: Every member's reward at ``step`` (NaN where its evaluation diverged).
        configs: The hyperparameters every member trained with during the round.
        seconds: The round's wall time for this run.
        clone_sources: Per member, the donor it cloned at ``step`` (exploit), or ``-1``: the
            history's ``clone_source`` column.
    """

    round: int
    rounds: int
    step: int
    rewards: list[float]
    configs: list[Config]
    seconds: float
    clone_sources: list[int]


class RunLogger(Protocol):
    """Something that watches one run's finished rounds (TensorBoard, a tracking service)."""

    def log_round(self, report: RoundReport) -> None:
        """Record one finished round of the run (rounds arrive in order)."""

    def close(self) -> None:
        """Release what the logger holds; called once the run's batch ends (twice is harmless)."""


def require_tensorboard() -> Any:
    """The ``tensorboardX`` module.

    Raises:
        ConfigError: If ``tensorboardX`` is not installed (the message says how to install it).
    """
    try:
        import tensorboardX
    except ImportError:
        raise ConfigError(
            f"TensorBoard logging needs tensorboardX, which is not installed: {INSTALL_HINT}"
        ) from None
    return tensorboardX


class TensorBoardLogger:
    """One run's rounds as TensorBoard events in ``logdir`` (see the module docstring).

    The event file is opened at the first round this process logs, with that round's step as
    TensorBoard's purge step: events an earlier attempt left at that step or later are hidden,
    so a resumed run (which writes a new event file next to the old one) reads as one run.
    Events are flushed after every round.

    Args:
        logdir: The run's TensorBoard directory (created when the first round is logged).

    Raises:
        ConfigError: If ``tensorboardX`` is not installed.
    """

    def __init__(self, logdir: str | Path) -> None:
        self._module = require_tensorboard()
        self.logdir = Path(logdir)
        self._writer: Any = None

    def log_round(self, report: RoundReport) -> None:  # noqa: D102
        if self._writer is None:
            self._writer = self._open(report)
        writer, step = self._writer, report.step
        width = len(str(len(report.rewards) - 1))
        for m, (reward, config) in enumerate(zip(report.rewards, report.configs, strict=True)):
            if math.isfinite(reward):
                writer.add_scalar(f"reward/member_{m:0{width}d}", reward, step)
            for name, value in config.items():
                writer.add_scalar(f"hparam/{name}/member_{m:0{width}d}", float(value), step)
        finite = [r for r in report.rewards if math.isfinite(r)]
        if finite:
            writer.add_scalar("population/best_reward", max(finite), step)
        clones = [(m, s) for m, s in enumerate(report.clone_sources) if s != NO_SOURCE]
        writer.add_scalar("population/exploits", len(clones), step)
        if clones:
            writer.add_text("population/exploits", exploit_table(report.rewards, clones), step)
        writer.flush()

    def close(self) -> None:  # noqa: D102
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _open(self, first: RoundReport) -> Any:
        """The writer, its purge step at ``first``'s step, with the custom-scalars layout."""
        self.logdir.mkdir(parents=True, exist_ok=True)
        # The file is named by the second it was opened in: the suffix keeps a resume within
        # that second from overwriting the previous attempt's file.
        suffix = f".{os.getpid()}.step{first.step}"
        writer = self._module.SummaryWriter(
            str(self.logdir), purge_step=first.step, filename_suffix=suffix
        )
        names = list(first.configs[0]) if first.configs else []
        charts = {"reward": ["Multiline", [r"^reward/member_"]]}
        charts |= {name: ["Multiline", [f"^hparam/{re.escape(name)}/member_"]] for name in names}
        writer.add_custom_scalars({"population": charts})
        logger.info("TensorBoard events of %s from step %d", self.logdir, first.step)
        return writer


def exploit_table(rewards: list[float], clones: list[tuple[int, int]]) -> str:
    """A markdown table of a round's exploits: one row per ``(member, donor)``."""
    rows = ["| member | donor | member reward | donor reward |", "|---:|---:|---:|---:|"]
    rows += [f"| {m} | {d} | {rewards[m]:.4g} | {rewards[d]:.4g} |" for m, d in clones]
    return "\n".join(rows)


def tensorboard_loggers(root: str | Path | None, name: str) -> tuple[RunLogger, ...]:
    """The loggers of the run ``name`` under the TensorBoard directory ``root`` (none if ``None``).

    Raises:
        ConfigError: If ``root`` is given and ``tensorboardX`` is not installed.
    """
    if root is None:
        return ()
    return (TensorBoardLogger(Path(root) / name),)
