"""One population run end to end: a batch of one (`metapbt.runs.batch`).

Each round trains every member for an interval, evaluates them, tells the population the
rewards and applies its decisions; then the history and the checkpoint are written
(`metapbt.runs.outputs`), so a killed run resumes from its last finished round.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from metapbt.runs.batch import RoundReport, RunJob, run_batch
from metapbt.runs.config import RunConfig
from metapbt.runs.loggers import RunLogger
from metapbt.runs.outputs import CHECKPOINT
from metapbt.runs.resolve import ResolvedRun, bundled_metadata

__all__ = ["CHECKPOINT", "RoundReport", "RunConfig", "bundled_metadata", "run"]


def run(
    config: RunConfig,
    out: Path,
    resume: bool = False,
    on_round: Callable[[RoundReport], None] | None = None,
    loggers: Sequence[RunLogger] = (),
    resolved: ResolvedRun | None = None,
) -> dict[str, Any]:
    """Run (or resume) a population and return its summary (``metapbt.summary/1``).

    Args:
        config: The run's settings.
        out: Its directory.
        resume: Continue the run saved in ``out``.
        on_round: Called with each finished round's report.
        loggers: Watch each finished round (e.g. a
            `TensorBoardLogger`); closed when the run ends.
        resolved: ``config`` resolved already (e.g. to check it before anything is written);
            ``None``: it is resolved here.

    Raises:
        ConfigError: If ``out`` holds another run, or ``resume`` finds a different config.
        MetaPBTError: Any error of the run (it is not recorded, it is raised).
    """
    report = None if on_round is None else (lambda _index, r: on_round(r))
    job = RunJob(config, Path(out), resume, tuple(loggers), resolved)
    [result] = run_batch([job], on_round=report, raise_errors=True)
    assert isinstance(result, dict)
    return result
