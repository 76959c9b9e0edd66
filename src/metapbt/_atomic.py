"""Atomic file writes, and a check that a directory can take them before any work starts.

A reader, or a run killed midway, never sees a partial file.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from metapbt.errors import ConfigError, DiskFullError

_FULL = (errno.ENOSPC, errno.EDQUOT)


def write_atomic(path: str | os.PathLike[str], write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a temporary sibling of ``path``, then rename it over ``path``.

    What ``write`` returns (a byte count, say) is ignored.

    The temporary name keeps the suffix (for writers that infer a format from it) and holds the
    process id, so parallel workers never share one. Parent directories are created.

    Raises:
        DiskFullError: If the disk (or quota) fills during the write: ``path`` keeps its
            previous content and the temporary file is removed.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        os.replace(tmp, path)
    except OSError as err:
        if err.errno not in _FULL:
            raise
        raise DiskFullError(
            f"no space left writing {path} ({err.strerror}); its previous version is intact: "
            "free some space, then resume (rerun the command, or `metapbt run --resume`)"
        ) from err
    finally:
        tmp.unlink(missing_ok=True)
    return path


def remove_dead_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporaries that killed writers left in `folder`; return them.

    `write_atomic` removes its temporary file unless its process is killed mid-write.

    A temporary file names its writer's process id: only those of processes that no longer run
    (on this machine) are removed, so a live writer's file is never touched. The files they were
    written for are intact: a killed write never reached its rename.
    """
    removed = []
    for tmp in Path(folder).glob(".*.tmp*"):
        match = _TEMPORARY.fullmatch(tmp.name)
        if match is None or process_alive(int(match.group(1))):
            continue
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed


_TEMPORARY = re.compile(r"\..+\.(\d+)\.tmp[^/]*")
"""`write_atomic`'s temporary names: `.<stem>.<pid>.tmp<suffix>`."""


def process_alive(pid: int) -> bool:
    """Whether process `pid` runs on this machine (another user's counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    return write_atomic(path, lambda tmp: tmp.write_text(text))


MIN_FREE_BYTES = 200 * 2**20
"""Free space a results directory needs before training starts (a run's checkpoint is a few
MB; a Brax batch's tens of MB)."""


def ensure_writable(folder: str | os.PathLike[str], min_free: int = MIN_FREE_BYTES) -> Path:
    """Create ``folder`` if needed and check that a file can be written there and space is left.

    Raises:
        ConfigError: Naming the folder, if it cannot be created or written, or has less than
            ``min_free`` bytes free.
    """
    folder = Path(folder)
    probe = folder / f".write-test.{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"ok")
        probe.unlink()
        free = shutil.disk_usage(folder).free
    except OSError as err:
        raise ConfigError(
            f"cannot write to {folder} ({err.strerror or err}); choose another directory or "
            "fix its permissions"
        ) from None
    if free < min_free:
        raise ConfigError(
            f"{folder} has {free / 2**20:.0f} MiB free, less than the {min_free / 2**20:.0f} MiB "
            "a run needs for its checkpoints; free some space or choose another directory"
        )
    return folder
