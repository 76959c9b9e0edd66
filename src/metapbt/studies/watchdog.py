"""Run long work in a child process and restart it when it stops making progress.

XLA's CPU runtime once hung this project's programs now and then (``docs/stall-report.md``):
every thread parked, 0 % CPU, no error. Nothing inside the process can notice that, so long
commands run each unit of work (a study batch, a portfolio task) in a child process and watch
it from outside:

* the child reports progress (``progress("start")`` when it begins a program, which may
  compile; ``progress("round", number, payload)`` after each finished round);
* the parent allows ``first_seconds`` after a start, then ``factor`` times the slowest round
  seen so far (never less than ``floor_seconds``; before a second round, the first round's
  time, compilation included, stands in for it);
* past that, the child has *stalled*: the parent has its Python stacks written by
  ``faulthandler`` (and, where ``gdb`` exists, its native stacks), kills it, and starts the
  same work again, which resumes from the checkpoints of the finished rounds;
* after ``restarts`` restarts (or child deaths) it gives up with `StallError`, which the
  study runner records as the cells' failure before it goes on with the next batch.

A slow round is never taken for a stall unless it takes ``factor`` times the slowest round so
far. The child exits when its parent dies, so a killed command leaves no orphan behind.
"""

from __future__ import annotations

import faulthandler
import logging
import math
import os
import shutil
import signal
import subprocess
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from metapbt.errors import MetaPBTError

logger = logging.getLogger(__name__)

Progress = Callable[..., None]
"""What the child's work calls: ``progress("start")`` or ``progress("round", n, payload)``."""


_STOP = threading.Event()


@contextmanager
def watched_pool(workers: int) -> Iterator[ThreadPoolExecutor]:
    """Threads that each supervise a child; an error or interrupt in the caller stops them all.

    On the way out by an exception, queued work is cancelled and every supervising thread kills
    its child and raises ``KeyboardInterrupt``; the flag is cleared once they have finished, so
    later work in this process is watched as usual.
    """
    pool = ThreadPoolExecutor(workers)
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        _STOP.set()
        raise
    finally:
        pool.shutdown(wait=True)
        _STOP.clear()


class StallError(MetaPBTError, RuntimeError):
    """Work stopped making progress (or its process died) more often than allowed."""


@dataclass(frozen=True)
class Watchdog:
    """When a child process counts as stalled, and how often it is restarted.

    Attributes:
        factor: A round may take this many times the slowest round so far.
        floor_seconds: The allowance for a round is never shorter than this.
        first_seconds: Allowance for start-up and the first round of a program (compilation:
            Brax programs take minutes on a CPU).
        restarts: Restarts of one unit of work before it is recorded as failed.
        poll_seconds: How often the parent looks at the child.
        native_stacks: Also write the stalled child's native stacks (``gdb``, where it is
            installed and may attach; several seconds).
    """

    factor: float = 10.0
    floor_seconds: float = 120.0
    first_seconds: float = 1800.0
    restarts: int = 2
    poll_seconds: float = 1.0
    native_stacks: bool = True

    def __post_init__(self) -> None:
        if self.factor < 1 or self.floor_seconds <= 0 or self.first_seconds <= 0:
            raise ValueError(f"a watchdog needs factor >= 1 and positive allowances: {self}")
        if self.restarts < 0:
            raise ValueError(f"restarts must be >= 0, got {self.restarts}")


UNWATCHED = Watchdog(floor_seconds=math.inf, first_seconds=math.inf, restarts=0)
"""Child processes that are never taken for stalled (several workers without a watchdog)."""


@dataclass
class StallClock:
    """The deadline of the next progress report (pure bookkeeping; times in seconds).

    Args:
        watchdog: The allowances.
        now: The time the work started.
    """

    watchdog: Watchdog
    now: float
    first: bool = True
    last_round: int | None = None
    round_start: float = 0.0
    first_round: float | None = None
    slowest: float = 0.0
    last: float = field(init=False)

    def __post_init__(self) -> None:
        self.last = self.now

    def start(self, now: float) -> None:
        """A program begins (it may compile): the first-round allowance applies again."""
        self.first, self.last, self.last_round = True, now, None

    def round(self, number: int, now: float) -> None:
        """Round ``number`` finished (reports of one round from several runs count once)."""
        if self.first:
            self.first_round = now - self.last if self.first_round is None else self.first_round
        elif number != self.last_round:
            self.slowest = max(self.slowest, now - self.round_start)
        if number != self.last_round:
            self.round_start = now
        self.first, self.last, self.last_round = False, now, number

    @property
    def allowance(self) -> float:
        """Seconds allowed from the last report to the next."""
        w = self.watchdog
        if self.first:
            return w.first_seconds
        typical = self.slowest or self.first_round or w.floor_seconds
        return max(w.floor_seconds, w.factor * typical)

    @property
    def deadline(self) -> float:
        """When the child counts as stalled without another report."""
        return self.last + self.allowance


def supervise(
    target: Callable[..., Any],
    args: Sequence[Any],
    watchdog: Watchdog,
    dumps: Sequence[Path],
    on_progress: Callable[[int, Any], None] | None = None,
    label: str = "work",
) -> Any:
    """``target(*args, progress=...)`` in a child process, restarted when it stalls.

    Args:
        target: A module-level function (it is pickled by name); it must resume from what an
            earlier attempt left on disk.
        args: Its picklable arguments.
        watchdog: The allowances.
        dumps: Directories that receive a stalled child's stacks (``stall-<attempt>.txt``).
        on_progress: Called with each round's number and payload.
        label: How the work is named in messages.

    Returns:
        What ``target`` returned.

    Raises:
        StallError: After ``watchdog.restarts`` restarts.
        MetaPBTError: The error ``target`` raised (its type and message; the child's traceback
            is logged).
    """
    reasons: list[str] = []
    for attempt in range(watchdog.restarts + 1):
        outcome, value = _attempt(target, args, watchdog, dumps, on_progress, attempt)
        if outcome == "result":
            return value
        if outcome == "error":
            raise MetaPBTError(f"{label} failed: {value}")
        reasons.append(value)
        logger.warning(
            "%s: %s (attempt %d of %d)", label, value, attempt + 1, watchdog.restarts + 1
        )
    raise StallError(f"{label} gave up after {len(reasons)} attempts: " + "; ".join(reasons))


def _attempt(
    target: Callable[..., Any],
    args: Sequence[Any],
    watchdog: Watchdog,
    dumps: Sequence[Path],
    on_progress: Callable[[int, Any], None] | None,
    attempt: int,
) -> tuple[str, Any]:
    """One child: ``("result", value)``, ``("error", message)`` or ``("stall", reason)``."""
    context = get_context("spawn")  # a forked JAX runtime deadlocks
    receive, send = context.Pipe(duplex=False)
    stacks = _stacks_file(dumps, attempt)
    child = context.Process(
        target=_child, args=(target, tuple(args), send, str(stacks), os.getpid()), daemon=True
    )
    child.start()
    send.close()
    clock = StallClock(watchdog, time.monotonic())
    try:
        while True:
            if _STOP.is_set():
                raise KeyboardInterrupt
            wait = min(watchdog.poll_seconds, clock.deadline - time.monotonic())
            if wait <= 0:
                reason = f"no progress for {clock.allowance:.0f} s"
                _dump_and_kill(child, stacks, dumps, watchdog.native_stacks)
                return "stall", f"{reason} (stacks: {stacks.name})"
            if not receive.poll(wait):
                continue
            try:
                message = receive.recv()
            except EOFError:
                child.join(5)
                return "stall", f"the worker process died (exit code {child.exitcode})"
            kind = message[0]
            if kind == "start":
                clock.start(time.monotonic())
            elif kind == "round":
                clock.round(message[1], time.monotonic())
                if on_progress is not None:
                    on_progress(message[1], message[2])
            elif kind == "error":
                logger.warning("%s", message[2])
                return "error", message[1]
            else:
                return "result", message[1]
    finally:
        receive.close()
        if child.is_alive():
            child.kill()
        child.join()
        _drop_empty(stacks)


def _child(
    target: Callable[..., Any], args: tuple[Any, ...], send: Any, stacks: str, parent: int
) -> None:
    """The child's side: stacks on SIGUSR1, progress through the pipe, exit with the parent."""
    with open(stacks, "w") as handle:
        if hasattr(signal, "SIGUSR1"):
            faulthandler.register(signal.SIGUSR1, file=handle, all_threads=True)
        threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()

        def progress(kind: str, number: int = 0, payload: Any = None) -> None:
            send.send((kind, number, payload))

        try:
            result = target(*args, progress=progress)
        except BaseException as err:
            trace = "".join(traceback.format_exception(err))
            send.send(("error", f"{type(err).__name__}: {err}", trace))
            return
        send.send(("result", result))


def _exit_with(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(2.0)
    os._exit(1)


def _stacks_file(dumps: Sequence[Path], attempt: int) -> Path:
    folder = Path(dumps[0]) if dumps else Path.cwd()
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"stall-{attempt + 1}.txt"


def _dump_and_kill(child: Any, stacks: Path, dumps: Sequence[Path], native: bool) -> None:
    """Write the child's Python (and native) stacks, kill it, copy the stacks to ``dumps``."""
    if hasattr(signal, "SIGUSR1") and child.pid is not None:
        os.kill(child.pid, signal.SIGUSR1)
        time.sleep(1.0)
        text = native_stacks(child.pid) if native else ""
        if text:
            with stacks.open("a") as f:
                f.write("\n--- native stacks (gdb) ---\n" + text)
    child.kill()
    child.join()
    for folder in dumps[1:]:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(stacks, Path(folder) / stacks.name)


def native_stacks(pid: int) -> str:
    """Every native thread's stack of ``pid`` from gdb, or ``""`` without gdb."""
    if shutil.which("gdb") is None:
        return ""
    try:
        result = subprocess.run(
            ["gdb", "-batch", "-p", str(pid), "-ex", "thread apply all bt"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"gdb failed: {err}\n"
    return result.stdout


def _drop_empty(stacks: Path) -> None:
    if stacks.exists() and stacks.stat().st_size == 0:
        stacks.unlink()
