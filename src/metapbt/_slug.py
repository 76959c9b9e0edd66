"""File names from task ids and contexts: one encoding for every file the package writes.

A task id is ``"<env> <context>"``; the space becomes ``__`` and every run of characters outside
``[A-Za-z0-9_.=-]`` becomes ``+`` (``"cart_pole gravity=12.0,length=0.4"`` ->
``cart_pole__gravity=12.0+length=0.4``). Used by study cells, ``metapbt run --seeds/--contexts``,
portfolio steps, meta-data stores and calibration results.
"""

from __future__ import annotations

import re
from pathlib import Path

_UNSAFE = re.compile(r"[^A-Za-z0-9_.=-]+")


def slug(text: str) -> str:
    """``text`` with every run of unsafe characters replaced by ``+``.

    Examples:
        ```pycon
        >>> slug("gravity=12.0,length=0.4")
        'gravity=12.0+length=0.4'

        ```
    """
    return _UNSAFE.sub("+", text)


def found_or_new(new: Path, old: Path) -> Path:
    """``old`` (a name written before the slug) if only it exists, else ``new``."""
    return old if old != new and old.exists() and not new.exists() else new


def task_slug(task: str) -> str:
    """A task id as a file or directory name.

    Examples:
        ```pycon
        >>> task_slug("cart_pole gravity=12.0,length=0.4")
        'cart_pole__gravity=12.0+length=0.4'
        >>> task_slug("lunar_lander leg_height=1.6")
        'lunar_lander__leg_height=1.6'

        ```
    """
    env, _, context = task.partition(" ")
    return f"{slug(env)}__{slug(context)}" if context else slug(env)
