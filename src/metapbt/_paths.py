"""Names and paths taken from files that get passed between people, kept in their place.

A study file, a meta-data store or a portfolio may come from someone else. Nothing in them may
make the program write outside the directories the user chose: a name that becomes a file or
directory name is a *plain name* (`plain_name`), and a path a study file writes to stays
inside the study file's directory (`confined`). Both raise
[`ConfigError`][metapbt.errors.ConfigError] before anything is written.
"""

from __future__ import annotations

import os
from pathlib import PurePosixPath, PureWindowsPath

from metapbt.errors import ConfigError

_SEPARATORS = ("/", "\\", "\x00")


def plain_name(value: str, what: str) -> str:
    """``value`` if it can name one file or directory.

    A plain name is non-empty, holds no path separator (slash, backslash) and no NUL, and is
    not ``.`` or ``..``.

    Examples:
        ```pycon
        >>> plain_name("pb2-star-warm", "method label")
        'pb2-star-warm'

        ```

    Raises:
        ConfigError: Otherwise (the message names ``what`` and the value).
    """
    if (
        not isinstance(value, str)
        or not value.strip()
        or value in (".", "..")
        or any(s in value for s in _SEPARATORS)
    ):
        raise ConfigError(
            f"{what} {value!r} must be a plain name (no '/', '\\' or NUL, not '.' or '..'): "
            "it names a file or directory"
        )
    return value


def confined(path: str, what: str) -> str:
    """``path`` if it is relative and stays inside the directory it is relative to.

    ``results/x`` and ``a/../b`` pass; ``/tmp/x``, a Windows drive path, ``../x`` and
    ``a/../../x`` do not. Symbolic links inside the directory are the owner's own and are
    followed.

    Raises:
        ConfigError: Otherwise (the message names ``what`` and the path).
    """
    if (
        PurePosixPath(path).is_absolute()
        or PureWindowsPath(path).is_absolute()
        or (PureWindowsPath(path).drive)
    ):
        raise ConfigError(
            f"{what} {path!r} is absolute: a study file writes only below its own directory; "
            "use a relative path"
        )
    normal = os.path.normpath(path.replace("\\", "/"))
    if normal == ".." or normal.startswith("../") or "\x00" in path:
        raise ConfigError(
            f"{what} {path!r} leads outside the study file's directory: a study file writes "
            "only below its own directory"
        )
    return path
