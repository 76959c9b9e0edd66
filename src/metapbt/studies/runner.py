"""Execute a study's cells: in this process, in a pool of local processes, or as Ray tasks.

Every cell writes into ``<results>/<cell id>/`` the files of ``metapbt run`` plus ``cell.json``
(its spec). A cell's state is read from those files, so the study itself keeps no state:

* ``done``: ``summary.json`` exists and records the cell's settings (file paths compared as the
  study file names them, so a study reads the same from any working directory or clone);
* ``stale``: ``summary.json`` records other settings (the study file changed): never overwritten;
* ``failed``: ``error.json`` holds the error and traceback of the last attempt;
* ``partial``: a checkpoint but no summary (killed midway): resumed from the checkpoint;
* ``pending``: nothing yet.

``run_study`` runs every cell that is not done (failed ones are retried); a crashing cell is
recorded and the others go on. Cells share JAX's persistent compilation cache
(:mod:`metapbt.compile_cache`: the user's cache directory unless turned off): the cells of one
task compile the same programs, which then load in well under a second instead of several
seconds.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import jax

from metapbt import compile_cache
from metapbt._atomic import write_text_atomic
from metapbt.engine.batch import RoundReport, RunJob, batch_key, run_batch
from metapbt.engine.checkpoint import Checkpoint
from metapbt.engine.outputs import CHECKPOINT
from metapbt.errors import ConfigError
from metapbt.studies.config import Cell, Study

logger = logging.getLogger(__name__)
STATES = ("done", "partial", "failed", "pending", "stale")
MAX_MEMBERS = {"cpu": 64, "gpu": 1024}
"""Members per batch by backend (:func:`auto_batch`). On 2 CPU cores the training rate hardly
grows with the member count (``benchmarks/study_throughput.py`` reports it at the batch's
width): a batch amortises per-round and per-cell costs; a GPU needs many members to be busy."""


@dataclass(frozen=True)
class CellResult:
    """What one attempt at a cell reports."""

    id: str
    state: str
    seconds: float
    final_best: float | None = None
    error: str | None = None


def cell_dir(study: Study, cell: Cell) -> Path:
    """The cell's results directory."""
    return study.results_dir / cell.id


def cell_state(study: Study, cell: Cell) -> str:
    """One of :data:`STATES` (see the module docstring)."""
    out = cell_dir(study, cell)
    summary = out / "summary.json"
    if summary.exists():
        try:
            recorded = json.loads(summary.read_text())
        except json.JSONDecodeError:
            return "failed"
        expected = cell.run_config().model_dump()
        same = all(_same_setting(k, recorded.get(k), v, study.base) for k, v in expected.items())
        return "done" if same else "stale"
    if (out / "error.json").exists():
        return "failed"
    return "partial" if (out / CHECKPOINT).exists() else "pending"


PATH_SETTINGS = ("metadata", "save_meta", "portfolio")
"""Run settings that name files; the study writes them relative to the study file's folder."""


def _tail(path: str) -> tuple[str, ...]:
    """The normalised components of ``path`` without its leading ``..``."""
    parts = Path(os.path.normpath(path)).parts
    return tuple(p for p in parts if p != "..")


def _same_setting(key: str, recorded: Any, expected: Any, base: Path) -> bool:
    """Whether a recorded run setting is the one the study now asks for.

    A relative path in the study file reaches the run config as ``<folder of the study file as
    it was loaded>/<path>``: ``studies/pf/x.json`` when run from the repository root,
    ``/home/me/repo/studies/pf/x.json`` when loaded by absolute path or from elsewhere. Such a
    setting matches when the recorded path ends with the path the study file names (as
    normalised), so results are found again from any working directory or clone location.
    """
    if key not in PATH_SETTINGS or not (isinstance(recorded, str) and isinstance(expected, str)):
        return recorded == expected
    if os.path.normpath(recorded) == os.path.normpath(expected):
        return True
    try:
        named = os.path.relpath(expected, base)
    except ValueError:  # another drive (Windows)
        return False
    tail, have = _tail(named), _tail(recorded)
    return len(have) >= len(tail) > 0 and have[-len(tail) :] == tail


def states(study: Study) -> dict[str, str]:
    """Cell id -> state, in grid order."""
    return {cell.id: cell_state(study, cell) for cell in study.cells}


def run_cells(
    cells_data: Sequence[dict[str, Any]],
    outs: Sequence[str],
    jax_cache: str | None = None,
    on_round: Callable[[str, RoundReport], None] | None = None,
) -> list[CellResult]:
    """Run (or resume) a batch of cells together; never raises: failures go to ``error.json``.

    Module-level and JSON-in so that process pools and Ray can ship it. The cells must share a
    batch (:func:`plan_batches` makes them so); each writes its own run directory. A failure of
    the batch itself (e.g. its trainer cannot be built) fails every cell of it. ``jax_cache``
    turns on JAX's persistent compilation cache there (:func:`metapbt.compile_cache.enable`:
    every program kept; a fresh ``metapbt run`` process with a warm cache took 20.1 s keeping
    only JAX's default >1 s programs, 15.9 s keeping all; ``benchmarks/meta_explore.py``).
    """
    if jax_cache is not None:
        compile_cache.enable(jax_cache)
    cells = [Cell.model_validate(data) for data in cells_data]
    paths = [Path(out) for out in outs]
    for cell, path in zip(cells, paths, strict=True):
        path.mkdir(parents=True, exist_ok=True)
        (path / "error.json").unlink(missing_ok=True)
        _write(path / "cell.json", cell.model_dump(mode="json"))
    jobs = [
        RunJob(c.run_config(), p, resume=(p / CHECKPOINT).exists())
        for c, p in zip(cells, paths, strict=True)
    ]
    report = None if on_round is None else (lambda i, r: on_round(cells[i].id, r))
    start = time.perf_counter()
    # A study must survive any crash of one cell (a diverging agent, a bad file, a bug):
    # the error is recorded with its traceback and the cell is retried on the next run.
    try:
        outcomes: list[Any] = run_batch(jobs, on_round=report)
    except Exception as err:
        outcomes = [err] * len(jobs)
    seconds = (time.perf_counter() - start) / len(jobs)
    results = []
    for cell, path, outcome in zip(cells, paths, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            message = f"{type(outcome).__name__}: {outcome}"
            trace = "".join(traceback.format_exception(outcome))
            _write(path / "error.json", {"id": cell.id, "error": message, "traceback": trace})
            logger.warning("cell %s failed: %s", cell.id, message)
            results.append(CellResult(cell.id, "failed", seconds, error=message))
        else:
            results.append(CellResult(cell.id, "done", seconds, outcome["final_best"]))
    return results


def auto_batch(population: int, backend: str | None = None) -> int:
    """Runs per batch when the user does not say: ``MAX_MEMBERS`` of the backend / population."""
    backend = backend or jax.default_backend()
    return max(1, MAX_MEMBERS.get(backend, MAX_MEMBERS["gpu"]) // population)


def plan_batches(study: Study, cells: Sequence[Cell], batch: int | None = None) -> list[list[Cell]]:
    """Cells grouped into batches that can train together, in grid order.

    A group shares :func:`~metapbt.engine.batch.batch_key` and the number of finished rounds
    (a killed batch's cells resume together); it is cut into the fewest batches of at most
    ``batch`` runs (:func:`auto_batch` when ``None``), of nearly equal size (one compiled size).
    """
    groups: dict[tuple[Any, ...], list[Cell]] = {}
    for cell in cells:
        config = cell.run_config()
        key = (*batch_key(config), Checkpoint.finished_rounds(cell_dir(study, cell) / CHECKPOINT))
        groups.setdefault(key, []).append(cell)
    batches = []
    for group in groups.values():
        limit = batch or auto_batch(group[0].protocol.population)
        count = math.ceil(len(group) / limit)
        size = math.ceil(len(group) / count)
        batches += [group[i : i + size] for i in range(0, len(group), size)]
    return batches


def run_study(
    study: Study,
    workers: int = 1,
    ray: str | None = None,
    on_cell: Callable[[CellResult], None] | None = None,
    skip: Callable[[Cell], bool] | None = None,
    batch: int | None = None,
    on_round: Callable[[str, RoundReport], None] | None = None,
    on_batches: Callable[[list[list[Cell]]], None] | None = None,
) -> list[CellResult]:
    """Run every cell that is not done (nor skipped); returns this invocation's results.

    Cells that can train together run as batches (:func:`plan_batches`); a worker process or
    a Ray task runs one batch.

    Args:
        study: The study.
        workers: Local worker processes (1: run in this process).
        ray: ``None`` for local execution; ``"auto"`` to use a running Ray cluster or start a
            local Ray instance; otherwise a Ray cluster address. The results directory must be
            reachable by every Ray worker (a shared filesystem on a real cluster).
        on_cell: Called with each finished cell's result.
        skip: Cells for which it is true are left alone whatever their state (e.g. runs a
            meta-data store holds already).
        batch: Most runs per batch (``None``: :func:`auto_batch`; 1: every cell alone).
        on_round: Called with a cell id and its round report after each round (cells run in
            this process only: ``workers == 1`` and no Ray).
        on_batches: Called once with the planned batches, before any runs.

    Raises:
        ConfigError: If some cells are ``stale`` (results of other settings are never
            overwritten), or ``workers`` < 1, or Ray is requested but not installed.
    """
    if workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    if batch is not None and batch < 1:
        raise ConfigError(f"batch must be at least 1, got {batch}")
    current = states(study)
    cells = [c for c in study.cells if skip is None or not skip(c)]
    stale = [c.id for c in cells if current[c.id] == "stale"]
    if stale:
        raise ConfigError(
            f"{len(stale)} cells in {study.results_dir} hold results of other settings "
            f"(e.g. {stale[0]}); restore the study file or choose another results directory"
        )
    todo = [c for c in cells if current[c.id] != "done"]
    logger.info("%d of %d cells to run", len(todo), len(study.cells))
    study.results_dir.mkdir(parents=True, exist_ok=True)
    directory = compile_cache.current() or compile_cache.default_dir()
    cache = None if directory is None else str(directory)
    batches = plan_batches(study, todo, batch)
    if on_batches is not None:
        on_batches(batches)
    jobs = [
        (
            [c.model_dump(mode="json") for c in cells],
            [str(cell_dir(study, c)) for c in cells],
            cache,
        )
        for cells in batches
    ]
    if ray is not None:
        return _run_ray(jobs, ray, on_cell)
    return _run_local(jobs, workers, on_cell, on_round)


Job = tuple[list[dict[str, Any]], list[str], str | None]
"""A batch as :func:`run_cells` takes it: cell specs, their directories, the JAX cache."""


def _run_local(
    jobs: Sequence[Job],
    workers: int,
    on_cell: Callable[[CellResult], None] | None,
    on_round: Callable[[str, RoundReport], None] | None,
) -> list[CellResult]:
    results: list[CellResult] = []
    if workers == 1:
        for job in jobs:
            results += _report(run_cells(*job, on_round=on_round), on_cell)
        return results
    # spawn, not fork: a forked JAX runtime deadlocks.
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(run_cells, *job) for job in jobs]
        try:
            for future in as_completed(futures):
                results += _report(future.result(), on_cell)
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise
    return results


def _run_ray(
    jobs: Sequence[Job],
    address: str,
    on_cell: Callable[[CellResult], None] | None,
) -> list[CellResult]:
    try:
        import ray
    except ImportError:
        raise ConfigError("--ray needs Ray: pip install 'metapbt[ray]'") from None
    if not ray.is_initialized():
        if address == "auto":
            try:
                ray.init(address="auto", logging_level=logging.WARNING)
            except ConnectionError:
                logger.info("no running Ray cluster: starting a local Ray instance")
                ray.init(logging_level=logging.WARNING, include_dashboard=False)
        else:
            ray.init(address=address, logging_level=logging.WARNING)
    remote = ray.remote(num_cpus=1)(run_cells)
    pending = [remote.remote(*job) for job in jobs]
    results: list[CellResult] = []
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        results += _report(ray.get(done[0]), on_cell)
    return results


def _report(
    results: list[CellResult], on_cell: Callable[[CellResult], None] | None
) -> list[CellResult]:
    for result in results:
        if on_cell is not None:
            on_cell(result)
    return results


def _write(path: Path, data: dict[str, Any]) -> None:
    write_text_atomic(path, json.dumps(data, indent=2))
