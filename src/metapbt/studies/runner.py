"""Execute a study's cells: in this process, in watched child processes, or as Ray tasks.

Every cell writes into ``<results>/<cell id>/`` the files of ``metapbt run`` plus ``cell.json``
(its spec); its state is read from those files ([`metapbt.studies.states`][metapbt.studies.states]).
With a ``[logging]`` table, each cell also writes TensorBoard events to ``<tensorboard>/<name>/``,
``<name>`` its results directory's (`metapbt.runs.loggers`), from the process training it.

``run_study`` runs every cell that is not done (failed ones are retried); a crashing cell is
recorded and the others go on. Before a batch runs, the runner claims its cells
(`metapbt.studies.claims`), so several runners on one study directory split the cells.
With a `Watchdog`, each batch runs in a child process that is
restarted from its checkpoints when it stops making progress, and recorded as failed when it
keeps stalling. Cells share JAX's persistent compilation cache (`metapbt.compile_cache`:
the user's cache directory unless turned off): the cells of one task compile the same
programs, which then load in well under a second instead of several seconds.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import as_completed
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import jax

from metapbt import compile_cache
from metapbt._atomic import ensure_writable, write_text_atomic
from metapbt.errors import ConfigError, MetaPBTError
from metapbt.runs.batch import RoundReport, RunJob
from metapbt.runs.checkpoint import Checkpoint
from metapbt.runs.loggers import require_tensorboard, tensorboard_loggers
from metapbt.runs.outputs import CHECKPOINT
from metapbt.runs.resolve import batch_key
from metapbt.runs.resume import run_groups
from metapbt.studies import claims
from metapbt.studies.config import Cell, Study
from metapbt.studies.states import cell_dir, states
from metapbt.studies.watchdog import UNWATCHED, Progress, Watchdog, supervise, watched_pool

logger = logging.getLogger(__name__)
MAX_MEMBERS = {"cpu": 64, "gpu": 1024}
"""Members per batch by backend (`auto_batch`). On 2 CPU cores the training rate hardly
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


def run_cells(
    cells_data: Sequence[dict[str, Any]],
    outs: Sequence[str],
    jax_cache: str | None = None,
    on_round: Callable[[str, RoundReport], None] | None = None,
    on_start: Callable[[], None] | None = None,
    tensorboard: str | None = None,
) -> list[CellResult]:
    """Run (or resume) cells of one batch key; never raises: failures go to ``error.json``.

    Module-level and JSON-in so that child processes and Ray can ship it. The cells must share
    a [`batch_key`][metapbt.runs.resolve.batch_key] (`plan_batches` makes them so); how they
    resume, and what happens to an unreadable checkpoint: `metapbt.runs.resume.run_groups`.
    ``jax_cache`` turns on JAX's persistent compilation cache there
    (`metapbt.compile_cache.enable`: every program kept; a fresh ``metapbt run`` process with a
    warm cache took 20.1 s keeping only JAX's default >1 s programs, 15.9 s keeping all;
    ``benchmarks/meta_explore.py``). ``tensorboard``: each cell's events go to
    ``<tensorboard>/<name of its directory>`` (a resumed cell adds an event file).
    """
    if jax_cache is not None:
        compile_cache.enable(jax_cache)
    cells = [Cell.model_validate(data) for data in cells_data]
    paths = [Path(out) for out in outs]
    for cell, path in zip(cells, paths, strict=True):
        path.mkdir(parents=True, exist_ok=True)
        (path / "error.json").unlink(missing_ok=True)
        _write(path / "cell.json", cell.model_dump(mode="json"))
    try:
        jobs = [
            RunJob(c.run_config(), p, loggers=tensorboard_loggers(tensorboard, p.name))
            for c, p in zip(cells, paths, strict=True)
        ]
    except MetaPBTError as err:  # e.g. a Ray worker without tensorboardX: the cells fail
        trace = "".join(traceback.format_exception(err))
        return [record_failure(c.id, p, err, trace) for c, p in zip(cells, paths, strict=True)]
    report = None if on_round is None else (lambda i, r: on_round(cells[i].id, r))
    start = time.perf_counter()
    # A study must survive any crash of one cell (a diverging agent, a bad file, a bug):
    # the error is recorded with its traceback and the cell is retried on the next run.
    outcomes = run_groups(jobs, on_round=report, on_start=on_start)
    seconds = (time.perf_counter() - start) / len(jobs)
    results = []
    for cell, path, outcome in zip(cells, paths, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            trace = "".join(traceback.format_exception(outcome))
            results.append(record_failure(cell.id, path, outcome, trace, seconds))
        else:
            results.append(CellResult(cell.id, "done", seconds, outcome["final_best"]))
    return results


def record_failure(
    cell_id: str, path: Path, err: BaseException, trace: str = "", seconds: float = 0.0
) -> CellResult:
    """Write the cell's ``error.json`` (its state becomes ``failed``); its result."""
    message = f"{type(err).__name__}: {err}"
    _write(path / "error.json", {"id": cell_id, "error": message, "traceback": trace})
    logger.warning("cell %s failed: %s", cell_id, message)
    return CellResult(cell_id, "failed", seconds, error=message)


def auto_batch(population: int, backend: str | None = None) -> int:
    """Runs per batch when the user does not say: ``MAX_MEMBERS`` of the backend / population."""
    backend = backend or jax.default_backend()
    return max(1, MAX_MEMBERS.get(backend, MAX_MEMBERS["gpu"]) // population)


def plan_batches(
    study: Study, cells: Sequence[Cell], batch: int | None = None, mix_contexts: bool = False
) -> list[list[Cell]]:
    """Cells grouped into batches that can train together, in grid order.

    A group shares [`batch_key`][metapbt.runs.resolve.batch_key] and the number of finished rounds
    (a killed batch's cells resume together); it is cut into the fewest batches of at most
    ``batch`` runs (`auto_batch` when ``None``), of nearly equal size (one compiled size).
    """
    groups: dict[tuple[Any, ...], list[Cell]] = {}
    for cell in cells:
        config = cell.run_config()
        # an unreadable checkpoint (-1) is set aside and its cell starts again: 0 rounds
        rounds = max(0, Checkpoint.finished_rounds(cell_dir(study, cell) / CHECKPOINT))
        key = (*batch_key(config, mix_contexts), rounds)
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
    watchdog: Watchdog | None = None,
    mix_contexts: bool = False,
) -> list[CellResult]:
    """Run every cell that is not done (nor skipped, nor claimed); returns this run's results.

    Cells that can train together run as batches (`plan_batches`). A batch whose cells
    another runner holds is left to it (its cells report the state ``claimed``).

    Args:
        study: The study.
        workers: Batches run at once (each in its own child process when > 1).
        ray: ``None`` for local execution; ``"auto"`` to use a running Ray cluster or start a
            local Ray instance; otherwise a Ray cluster address. The results directory must be
            reachable by every Ray worker (a shared filesystem on a real cluster).
        on_cell: Called with each finished cell's result.
        skip: Cells for which it is true are left alone whatever their state (e.g. runs a
            meta-data store holds already).
        batch: Most runs per batch (``None``: `auto_batch`; 1: every cell alone).
        on_round: Called with a cell id and its round report after each round (not with Ray).
        on_batches: Called once with the planned batches, before any runs.
        watchdog: Run each batch in a watched child process (``None``: with ``workers == 1``,
            in this process, unwatched).
        mix_contexts: Let the contexts of one classic-control env share a batch (each member
            gets its context as a traced value; results identical to one-context batches).

    Raises:
        ConfigError: If some cells are ``stale`` (results of other settings are never
            overwritten), ``workers`` < 1, the results directory cannot be written, Ray
            is requested but not installed, or the study logs to TensorBoard (``[logging]``)
            and ``tensorboardX`` is not installed.
    """
    if workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    if batch is not None and batch < 1:
        raise ConfigError(f"batch must be at least 1, got {batch}")
    todo = _cells_to_run(study, skip)
    _check_outputs(study, todo)
    batches = plan_batches(study, todo, batch, mix_contexts)
    if on_batches is not None:
        on_batches(batches)
    jobs = _jobs(study, batches)
    if watchdog is None and (workers > 1 or ray is not None):
        watchdog = UNWATCHED  # separate processes, never killed
    execute = partial(execute_batch, watchdog=watchdog, runner=claims.new_runner())
    if ray is not None:
        return _run_ray(jobs, ray, execute, on_cell)
    return _run_local(jobs, workers, execute, on_cell, on_round)


def _cells_to_run(study: Study, skip: Callable[[Cell], bool] | None) -> list[Cell]:
    """The cells that are neither done nor skipped, in grid order.

    Raises:
        ConfigError: If some of them are ``stale`` (results of other settings are never
            overwritten).
    """
    current = states(study)
    cells = [c for c in study.cells if skip is None or not skip(c)]
    stale = [study.cell_name(c) for c in cells if current[c.id] == "stale"]
    if stale:
        raise ConfigError(
            f"{len(stale)} cells in {study.results_dir} hold results of other settings "
            f"(e.g. {stale[0]}); ask for the settings they hold or choose another results "
            "directory"
        )
    todo = [c for c in cells if current[c.id] != "done"]
    logger.info("%d of %d cells to run", len(todo), len(study.cells))
    return todo


def _check_outputs(study: Study, todo: Sequence[Cell]) -> None:
    """Refuse here, not in every batch's process, outputs the cells ``todo`` cannot write.

    Raises:
        ConfigError: If the results directory cannot be written, or the study logs to
            TensorBoard and its directory cannot be written or ``tensorboardX`` is missing.
    """
    tensorboard = study.tensorboard_dir
    if tensorboard is not None and todo:
        require_tensorboard()
        ensure_writable(tensorboard)
    ensure_writable(study.results_dir)


def _jobs(study: Study, batches: Sequence[Sequence[Cell]]) -> list[Job]:
    """The batches as `Job`s: their cells, directories, JAX cache and TensorBoard root."""
    directory = compile_cache.current() or compile_cache.default_dir()
    cache = None if directory is None else str(directory)
    tensorboard = study.tensorboard_dir
    return [
        Job(
            [c.model_dump(mode="json") for c in cells],
            [str(cell_dir(study, c)) for c in cells],
            cache,
            None if tensorboard is None else str(tensorboard),
        )
        for cells in batches
    ]


class Job(NamedTuple):
    """A batch as `run_cells` takes it: cells, directories, JAX cache, TensorBoard root."""

    cells: list[dict[str, Any]]
    outs: list[str]
    cache: str | None
    tensorboard: str | None = None


def execute_batch(
    job: Job,
    watchdog: Watchdog | None,
    runner: str,
    on_round: Callable[[str, RoundReport], None] | None = None,
) -> list[CellResult]:
    """Claim the batch's cells, run those that are still to do, release them.

    Cells another runner holds report ``claimed``; cells another runner finished meanwhile
    are left out. With a ``watchdog`` the cells run in a watched child process
    (`supervise`); when it gives up, every unfinished cell of
    the batch is recorded as failed with the reason.
    """
    mine, results = [], []
    for data, out in zip(job.cells, job.outs, strict=True):
        path = Path(out)
        if not claims.acquire(path, runner):
            holder = claims.holder(path)
            who = "another runner" if holder is None else holder.describe()
            cell_id = Cell.model_validate(data).id
            results.append(CellResult(cell_id, "claimed", 0.0, error=f"held by {who}"))
        elif (path / "summary.json").exists():  # finished by another runner meanwhile
            claims.release(path, runner)
        else:
            mine.append((data, out))
    if not mine:
        return results
    cells, outs = [d for d, _ in mine], [o for _, o in mine]
    folders = [Path(o) for o in outs]
    with claims.held(folders, runner):
        if watchdog is None:
            return results + run_cells(
                cells, outs, job.cache, on_round=on_round, tensorboard=job.tensorboard
            )
        try:
            return results + supervise(
                cells_work,
                (cells, outs, job.cache, job.tensorboard),
                watchdog,
                dumps=folders,
                on_progress=None if on_round is None else (lambda _, p: on_round(*p)),
                label=_label(folders),
            )
        except MetaPBTError as err:  # the watchdog gave up (or the child could not start)
            return results + [_given_up(data, Path(out), err) for data, out in mine]


def _label(folders: Sequence[Path]) -> str:
    """How a batch is named in messages."""
    more = f" and {len(folders) - 1} more cells" if len(folders) > 1 else ""
    return f"cell {folders[0].name}{more}"


def cells_work(
    cells: list[dict[str, Any]],
    outs: list[str],
    cache: str | None,
    tensorboard: str | None,
    progress: Progress,
) -> list[CellResult]:
    """`run_cells` reporting to a watchdog (the child's side of `execute_batch`)."""
    return run_cells(
        cells,
        outs,
        cache,
        on_round=lambda cell_id, report: progress("round", report.round, (cell_id, report)),
        on_start=lambda: progress("start"),
        tensorboard=tensorboard,
    )


def _given_up(data: dict[str, Any], path: Path, err: BaseException) -> CellResult:
    """A cell of a batch the watchdog gave up on: done if it finished, else failed."""
    cell = Cell.model_validate(data)
    summary = path / "summary.json"
    if summary.exists():
        return CellResult(cell.id, "done", 0.0, json.loads(summary.read_text())["final_best"])
    return record_failure(cell.id, path, err, "".join(traceback.format_exception(err)))


def _run_local(
    jobs: Sequence[Job],
    workers: int,
    execute: Callable[..., list[CellResult]],
    on_cell: Callable[[CellResult], None] | None,
    on_round: Callable[[str, RoundReport], None] | None,
) -> list[CellResult]:
    results: list[CellResult] = []
    if workers == 1:
        for job in jobs:
            results += _report(execute(job, on_round=on_round), on_cell)
        return results
    # Threads that each watch a child process; callbacks one at a time.
    lock = threading.Lock()

    def locked(cell_id: str, report: RoundReport) -> None:
        with lock:
            on_round(cell_id, report)  # type: ignore[misc]  # passed on only if not None

    with watched_pool(workers) as pool:
        futures = [
            pool.submit(execute, job, on_round=None if on_round is None else locked) for job in jobs
        ]
        for future in as_completed(futures):
            with lock:
                results += _report(future.result(), on_cell)
    return results


RAY_RETRIES = 3
"""Times Ray runs a batch again after its worker died (Ray's default, made explicit)."""


def _run_ray(
    jobs: Sequence[Job],
    address: str,
    execute: partial[list[CellResult]],
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
    # A worker that dies mid-batch (killed, out of memory, its node lost) is a system failure:
    # Ray runs the batch again on another worker, which takes over the dead one's claims and
    # resumes the cells from their checkpoints (tests/studies/test_ray_worker_death.py).
    remote = ray.remote(num_cpus=1, max_retries=RAY_RETRIES)(execute.func)
    pending = [remote.remote(job, **execute.keywords) for job in jobs]
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
