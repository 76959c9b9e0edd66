"""Claims on study cells, so that several runners share one study directory.

Before a runner trains a batch it claims every cell of it: it creates ``claim.json`` in the
cell's directory with ``O_CREAT | O_EXCL`` (atomic, also on NFS v3 and later), naming the
host, the process, the runner and the time. While the batch runs, the runner refreshes the
claim (its modification time) every few seconds, and it deletes the claim when the batch ends.
A cell whose claim another runner holds is left to that runner.

A claim is *stale*, and may be taken over, when its holder stopped refreshing it for
``stale_seconds`` (a runner on another machine was killed), or at once when its holder is a
dead process on this host. Taking over renames the stale file to a name of the taker's own
(only one taker's rename can succeed) and checks that the file it moved is the stale one; a
taker that moved a claim just renewed by someone else puts it back.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path

from metapbt._atomic import process_alive

logger = logging.getLogger(__name__)

CLAIM = "claim.json"
STALE_SECONDS = 600.0
"""A claim not refreshed for this long is taken over (runners refresh every few seconds)."""
REFRESH_SECONDS = 10.0


@dataclass(frozen=True)
class Claim:
    """Who holds a cell."""

    host: str
    pid: int
    runner: str
    since: float

    @classmethod
    def mine(cls, runner: str) -> Claim:
        """A claim by this process for ``runner``."""
        return cls(socket.gethostname(), os.getpid(), runner, time.time())

    def describe(self) -> str:
        """``host:pid since HH:MM:SS``."""
        since = time.strftime("%H:%M:%S", time.localtime(self.since))
        return f"{self.host}:{self.pid} since {since}"


def new_runner() -> str:
    """A fresh runner id."""
    return uuid.uuid4().hex[:12]


def holder(folder: Path) -> Claim | None:
    """The claim on the cell in ``folder``, if any (an unreadable claim file counts as none)."""
    return _read(Path(folder) / CLAIM)


def is_stale(folder: Path, stale_seconds: float = STALE_SECONDS) -> bool:
    """Whether the claim in ``folder`` may be taken over (see the module docstring)."""
    return _stale(Path(folder) / CLAIM, stale_seconds)


def _stale(path: Path, stale_seconds: float) -> bool:
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return True
    claim = _read(path)
    if claim is not None and claim.host == socket.gethostname() and not process_alive(claim.pid):
        return True
    return age > stale_seconds


def acquire(folder: Path, runner: str, stale_seconds: float = STALE_SECONDS) -> bool:
    """Claim the cell in ``folder`` for ``runner``; ``False`` if someone else holds it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if _create(folder / CLAIM, Claim.mine(runner)):
        return True
    current = holder(folder)
    if current is not None and current.runner == runner:
        return True
    if not is_stale(folder, stale_seconds):
        return False
    return _take_over(folder, runner, stale_seconds)


def refresh(folders: Iterable[Path]) -> None:
    """Mark the claims in ``folders`` as alive (their modification time)."""
    for folder in folders:
        with suppress(FileNotFoundError):
            os.utime(Path(folder) / CLAIM)


def release(folder: Path, runner: str) -> None:
    """Delete ``runner``'s claim in ``folder`` (someone else's is left alone)."""
    current = holder(folder)
    if current is not None and current.runner == runner:
        (Path(folder) / CLAIM).unlink(missing_ok=True)


@contextmanager
def held(folders: list[Path], runner: str) -> Iterator[None]:
    """Keep the claims in ``folders`` fresh from a thread while the block runs; then release."""
    import threading

    stop = threading.Event()

    def keep() -> None:
        while not stop.wait(REFRESH_SECONDS):
            refresh(folders)

    thread = threading.Thread(target=keep, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        for folder in folders:
            release(folder, runner)


def _create(path: Path, claim: Claim) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        json.dump(asdict(claim), f)
    return True


def _take_over(folder: Path, runner: str, stale_seconds: float) -> bool:
    path = folder / CLAIM
    moved = folder / f".{CLAIM}.{runner}.{os.getpid()}"
    try:
        os.rename(path, moved)
    except FileNotFoundError:  # released meanwhile, or another taker was first
        return _create(path, Claim.mine(runner))
    old = _read(moved)
    if not _stale(moved, stale_seconds):
        with suppress(FileExistsError):  # renewed just before our rename: give it back
            os.link(moved, path)
        moved.unlink(missing_ok=True)
        return False
    moved.unlink(missing_ok=True)
    logger.warning(
        "took over the stale claim of %s (%s)",
        folder.name,
        "unknown" if old is None else old.describe(),
    )
    return _create(path, Claim.mine(runner))


def _read(path: Path) -> Claim | None:
    try:
        return Claim(**json.loads(Path(path).read_text()))
    except (OSError, ValueError, TypeError):
        return None
