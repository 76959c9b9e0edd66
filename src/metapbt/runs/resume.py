"""The resume policy: which runs of one batch key resume, and which train together.

A run resumes when its directory holds a checkpoint; an unreadable checkpoint (a kill
mid-write) is set aside as ``checkpoint.msgpack.corrupt`` and its run starts again. Runs that
have finished the same number of rounds train together as one batch
(`metapbt.runs.batch.run_batch`); the study runner hands every batch of cells to
`run_groups`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from metapbt.runs import batch
from metapbt.runs.batch import Result, RunJob
from metapbt.runs.checkpoint import Checkpoint
from metapbt.runs.loggers import RoundReport
from metapbt.runs.outputs import CHECKPOINT

logger = logging.getLogger(__name__)


def run_groups(
    jobs: Sequence[RunJob],
    on_round: Callable[[int, RoundReport], None] | None = None,
    on_start: Callable[[], None] | None = None,
) -> list[Result]:
    """`run_batch` for runs of one key that may have finished different rounds.

    Each job resumes when its directory holds a checkpoint (``job.resume`` is ignored); an
    unreadable checkpoint is set aside first (`set_aside_corrupt`) and its run starts
    again. Runs with the same finished rounds train together, ``on_start`` before each group
    (a kill between two runs' files leaves them one round apart). Results in ``jobs`` order.
    """
    groups: dict[int, list[int]] = {}
    for i, job in enumerate(jobs):
        groups.setdefault(set_aside_corrupt(job.out / CHECKPOINT), []).append(i)
    results: dict[int, Result] = {}
    for members in groups.values():
        if on_start is not None:
            on_start()
        group = [replace(jobs[i], resume=(jobs[i].out / CHECKPOINT).exists()) for i in members]
        report = None if on_round is None else (lambda k, r, m=members: on_round(m[k], r))
        try:
            # read from its module when called, so that a stand-in put there is the one run
            outcomes: list[Result] = batch.run_batch(group, on_round=report)
        except Exception as err:  # the batch itself failed (e.g. its trainer)
            outcomes = [err] * len(group)
        results.update(zip(members, outcomes, strict=True))
    return [results[i] for i in range(len(jobs))]


def set_aside_corrupt(checkpoint: Path) -> int:
    """The checkpoint's finished rounds; an unreadable one is moved aside (``.corrupt``): 0.

    Moving it aside is logged as a warning: its run starts again.
    """
    rounds = Checkpoint.finished_rounds(checkpoint)
    if rounds >= 0:
        return rounds
    aside = checkpoint.with_name(checkpoint.name + ".corrupt")
    os.replace(checkpoint, aside)
    logger.warning(
        "%s is unreadable (truncated?): moved to %s; the run starts again", checkpoint, aside.name
    )
    return 0
