"""Execute a study's cells: in this process, in a pool of local processes, or as Ray tasks.

Every cell writes into ``<results>/<cell id>/`` the files of ``metapbt run`` plus ``cell.json``
(its spec). A cell's state is read from those files, so the study itself keeps no state:

* ``done``: ``summary.json`` exists and records the cell's settings;
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
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from metapbt import compile_cache
from metapbt._atomic import write_text_atomic
from metapbt.engine.outputs import CHECKPOINT
from metapbt.engine.run import run
from metapbt.errors import ConfigError
from metapbt.studies.config import Cell, Study

logger = logging.getLogger(__name__)
STATES = ("done", "partial", "failed", "pending", "stale")


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
        return "done" if all(recorded.get(k) == v for k, v in expected.items()) else "stale"
    if (out / "error.json").exists():
        return "failed"
    return "partial" if (out / CHECKPOINT).exists() else "pending"


def states(study: Study) -> dict[str, str]:
    """Cell id -> state, in grid order."""
    return {cell.id: cell_state(study, cell) for cell in study.cells}


def run_cell(cell_data: dict[str, Any], out: str, jax_cache: str | None = None) -> CellResult:
    """Run (or resume) one cell; never raises: a failure is written to ``error.json``.

    Module-level and JSON-in so that process pools and Ray can ship it. ``jax_cache`` turns on
    JAX's persistent compilation cache there (:func:`metapbt.compile_cache.enable`: every
    program kept; a fresh ``metapbt run`` process with a warm cache took 20.1 s keeping only
    JAX's default >1 s programs, 15.9 s keeping all; ``benchmarks/meta_explore.py``).
    """
    if jax_cache is not None:
        compile_cache.enable(jax_cache)
    cell = Cell.model_validate(cell_data)
    path = Path(out)
    path.mkdir(parents=True, exist_ok=True)
    (path / "error.json").unlink(missing_ok=True)
    _write(path / "cell.json", cell.model_dump(mode="json"))
    start = time.perf_counter()
    try:
        summary = run(cell.run_config(), path, resume=(path / CHECKPOINT).exists())
    # A study must survive any crash of one cell (a diverging agent, a bad file, a bug):
    # the error is recorded with its traceback and the cell is retried on the next run.
    except Exception as err:
        message = f"{type(err).__name__}: {err}"
        _write(
            path / "error.json",
            {"id": cell.id, "error": message, "traceback": traceback.format_exc()},
        )
        logger.warning("cell %s failed: %s", cell.id, message)
        return CellResult(cell.id, "failed", time.perf_counter() - start, error=message)
    return CellResult(cell.id, "done", time.perf_counter() - start, summary["final_best"])


def run_study(
    study: Study,
    workers: int = 1,
    ray: str | None = None,
    on_cell: Callable[[CellResult], None] | None = None,
    skip: Callable[[Cell], bool] | None = None,
) -> list[CellResult]:
    """Run every cell that is not done (nor skipped); returns this invocation's results.

    Args:
        study: The study.
        workers: Local worker processes (1: run in this process).
        ray: ``None`` for local execution; ``"auto"`` to use a running Ray cluster or start a
            local Ray instance; otherwise a Ray cluster address. The results directory must be
            reachable by every Ray worker (a shared filesystem on a real cluster).
        on_cell: Called with each finished cell's result.
        skip: Cells for which it is true are left alone whatever their state (e.g. runs a
            meta-data store holds already).

    Raises:
        ConfigError: If some cells are ``stale`` (results of other settings are never
            overwritten), or ``workers`` < 1, or Ray is requested but not installed.
    """
    if workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
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
    jobs = [(c.model_dump(mode="json"), str(cell_dir(study, c)), cache) for c in todo]
    if ray is not None:
        return _run_ray(jobs, ray, on_cell)
    return _run_local(jobs, workers, on_cell)


def _run_local(
    jobs: Sequence[tuple[dict[str, Any], str, str | None]],
    workers: int,
    on_cell: Callable[[CellResult], None] | None,
) -> list[CellResult]:
    results = []
    if workers == 1:
        for job in jobs:
            results.append(_report(run_cell(*job), on_cell))
        return results
    # spawn, not fork: a forked JAX runtime deadlocks.
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(run_cell, *job) for job in jobs]
        try:
            for future in as_completed(futures):
                results.append(_report(future.result(), on_cell))
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise
    return results


def _run_ray(
    jobs: Sequence[tuple[dict[str, Any], str, str | None]],
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
    remote = ray.remote(num_cpus=1)(run_cell)
    pending = [remote.remote(*job) for job in jobs]
    results = []
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        results.append(_report(ray.get(done[0]), on_cell))
    return results


def _report(result: CellResult, on_cell: Callable[[CellResult], None] | None) -> CellResult:
    if on_cell is not None:
        on_cell(result)
    return result


def _write(path: Path, data: dict[str, Any]) -> None:
    write_text_atomic(path, json.dumps(data, indent=2))
