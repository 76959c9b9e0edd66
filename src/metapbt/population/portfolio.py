"""Portfolios: a few configurations that did well on related tasks, to start a population from.

Selection is the reference's "Algorithm 1" (greedy coverage): given a performance matrix of
candidates x tasks, min-max normalised per task, add at each step the candidate that most
increases ``sum_e max_{p in portfolio} P[p, e]``.

Deliberate difference from the reference code: its selection indexed the matrix with a list
nested in a list, which under numpy >= 1.23 reduces the "best of the portfolio" over a size-1
axis, so every pick after the first was simply the next candidate by total normalised score
(top-k). We implement the intended coverage rule (``tests/population/test_portfolio.py`` has a
matrix on which the two disagree); published portfolios may come from the degenerate rule.

The portfolio file (``metapbt.portfolio/1``, JSON) holds the search space, the chosen
configurations in selection order, the tasks they were selected on, the target left out, the
matrix (raw and normalised) the selection saw, and its provenance (the settings the candidates
were trained and scored under: env, preset, steps, seeds; ``null`` in older files).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from metapbt._atomic import write_text_atomic
from metapbt.errors import ConfigError
from metapbt.population.initializers import GivenInitializer, Initializer, given
from metapbt.population.space import Config, SearchSpace

PORTFOLIO_SCHEMA = "metapbt.portfolio/1"
EPS = 1e-8


def normalise_columns(scores: np.ndarray) -> np.ndarray:
    """Min-max normalise each column (task) across rows (candidates): ``(x-min)/(max-min+1e-8)``.

    A missing score (NaN: the candidate diverged on that task) counts as the column's minimum,
    so it normalises to 0; a column with no finite score is all zeros.
    """
    scores = np.asarray(scores, dtype=float)
    finite = np.isfinite(scores)
    low = np.where(finite, scores, np.inf).min(axis=0)
    high = np.where(finite, scores, -np.inf).max(axis=0)
    low = np.where(np.isfinite(low), low, 0.0)
    high = np.where(np.isfinite(high), high, 0.0)
    filled = np.where(finite, scores, low)
    return (filled - low) / (high - low + EPS)


def greedy_select(normalised: np.ndarray, size: int) -> list[int]:
    """Greedy coverage selection ("Algorithm 1"); returns row indices in selection order.

    Each step adds ``argmax_s sum_e max_{p in P+{s}} normalised[p, e]``; ties go to the lowest
    row index (the reference's dict order).

    Raises:
        ConfigError: If ``size`` is not in ``[1, rows]``.
    """
    normalised = np.asarray(normalised, dtype=float)
    rows = normalised.shape[0]
    if not 1 <= size <= rows:
        raise ConfigError(f"portfolio size must be between 1 and {rows} candidates, got {size}")
    chosen: list[int] = []
    best = np.full(normalised.shape[1], -np.inf)
    for _ in range(size):
        gains = np.maximum(normalised, best).sum(axis=1)
        gains[chosen] = -np.inf
        pick = int(np.argmax(gains))
        chosen.append(pick)
        best = np.maximum(best, normalised[pick])
    return chosen


@dataclass(frozen=True)
class Candidate:
    """One candidate configuration and the task whose random search produced it."""

    config: Config
    source: str


@dataclass(frozen=True)
class ScoreMatrix:
    """Seed-averaged scores of every candidate (rows) on every task (columns)."""

    candidates: tuple[Candidate, ...]
    tasks: tuple[str, ...]
    scores: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        shape = (len(self.candidates), len(self.tasks))
        if np.shape(self.scores) != shape:
            raise ConfigError(f"score matrix has shape {np.shape(self.scores)}, expected {shape}")

    def only_columns(self, tasks: Sequence[str]) -> ScoreMatrix:
        """The same candidates scored on ``tasks`` only (a subset of the columns, in order).

        Raises:
            ConfigError: If a task is not a column, or ``tasks`` is empty.
        """
        unknown = [t for t in tasks if t not in self.tasks]
        if unknown or not tasks:
            raise ConfigError(f"tasks {list(tasks)} are not columns of {list(self.tasks)}")
        cols = [self.tasks.index(t) for t in tasks]
        return ScoreMatrix(self.candidates, tuple(tasks), self.scores[:, cols])

    def leave_out(self, target: str) -> ScoreMatrix:
        """Drop the target's column and every candidate that came from the target.

        Its column may be absent already (a selection restricted to other columns): then only
        its candidates go.

        Raises:
            ConfigError: If ``target`` is neither a task nor a candidate's source (an exact
                id, e.g. ``"cart_pole earth"``), or nothing is left.
        """
        rows = [i for i, c in enumerate(self.candidates) if c.source != target]
        if target not in self.tasks and len(rows) == len(self.candidates):
            raise ConfigError(f"unknown target task {target!r}; the matrix has {list(self.tasks)}")
        cols = [j for j, t in enumerate(self.tasks) if t != target]
        if not rows or not cols:
            raise ConfigError(f"leaving out {target!r} leaves no candidates or no tasks")
        return ScoreMatrix(
            tuple(self.candidates[i] for i in rows),
            tuple(self.tasks[j] for j in cols),
            self.scores[np.ix_(rows, cols)],
        )


@dataclass(frozen=True)
class Portfolio:
    """Configurations chosen for warm-starting a population, with how they were chosen."""

    space: SearchSpace
    entries: tuple[Candidate, ...]
    matrix: ScoreMatrix
    target: str | None = None
    provenance: Mapping[str, Any] | None = None

    @property
    def configs(self) -> list[Config]:
        """The chosen configurations, in selection order."""
        return [dict(c.config) for c in self.entries]

    def initializer(self, fill: Initializer | None = None) -> GivenInitializer:
        """Members take the entries in order; ``fill`` (random draws) starts the rest."""
        return given(self.configs, fill)

    def check_space(self, space: SearchSpace) -> None:
        """Raise [`ConfigError`][metapbt.errors.ConfigError] unless built over ``space``."""
        if space != self.space:
            raise ConfigError(
                f"the portfolio's search space {self.space.to_dict()} differs from the run's "
                f"{space.to_dict()}; rebuild the portfolio"
            )

    def to_json(self) -> dict[str, Any]:
        """The file's contents."""
        return {
            "schema": PORTFOLIO_SCHEMA,
            "space": self.space.to_dict(),
            "target": self.target,
            "provenance": None if self.provenance is None else dict(self.provenance),
            "configs": [{**c.config, "source": c.source} for c in self.entries],
            "tasks": list(self.matrix.tasks),
            "matrix": {
                "candidates": [{**c.config, "source": c.source} for c in self.matrix.candidates],
                "scores": _nan_to_none(self.matrix.scores),
                "normalised": normalise_columns(self.matrix.scores).round(6).tolist(),
            },
        }

    def save(self, path: Path | str) -> Path:
        """Write the JSON file atomically."""
        return write_text_atomic(path, json.dumps(self.to_json(), indent=2))

    @classmethod
    def load(cls, path: Path | str) -> Portfolio:
        """Read and validate a portfolio file.

        Raises:
            ConfigError: If the file is missing, not JSON, of another schema, or inconsistent.
        """
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"portfolio file {path} does not exist") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ConfigError(f"portfolio file {path} is not valid JSON: {err}") from None
        if not isinstance(data, dict) or data.get("schema") != PORTFOLIO_SCHEMA:
            found = data.get("schema") if isinstance(data, dict) else type(data).__name__
            raise ConfigError(f"{path} is not a {PORTFOLIO_SCHEMA} file (schema: {found!r})")
        try:
            space = SearchSpace.from_dict(data["space"])
            entries = tuple(_candidate(space, c) for c in data["configs"])
            matrix = ScoreMatrix(
                tuple(_candidate(space, c) for c in data["matrix"]["candidates"]),
                tuple(data["tasks"]),
                np.array(data["matrix"]["scores"], dtype=float).reshape(
                    len(data["matrix"]["candidates"]), len(data["tasks"])
                ),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ConfigError(f"portfolio file {path} is malformed: {err!r}") from None
        if not entries:
            raise ConfigError(f"portfolio file {path} holds no configurations")
        return cls(space, entries, matrix, data.get("target"), data.get("provenance"))


def select(
    space: SearchSpace,
    matrix: ScoreMatrix,
    size: int,
    exclude: str | None = None,
    columns: Sequence[str] | None = None,
) -> Portfolio:
    """Build a portfolio of ``size`` entries, leaving the task ``exclude`` out if given.

    ``columns`` restricts the tasks the selection covers (every candidate stays eligible,
    except the target's own): a per-environment portfolio from a general matrix.
    """
    if exclude is not None and exclude not in matrix.tasks:
        raise ConfigError(f"unknown target task {exclude!r}; the matrix has {list(matrix.tasks)}")
    seen = matrix.only_columns(columns) if columns is not None else matrix
    if exclude is not None:
        seen = seen.leave_out(exclude)
    rows = greedy_select(normalise_columns(seen.scores), size)
    return Portfolio(space, tuple(seen.candidates[i] for i in rows), seen, exclude)


def _candidate(space: SearchSpace, data: Mapping[str, Any]) -> Candidate:
    if not isinstance(data, Mapping):
        raise ConfigError(f"a candidate is a table of values and its 'source', got {data!r:.80}")
    config = {k: v for k, v in data.items() if k != "source"}
    return Candidate(space.validate(config), str(data["source"]))


def _nan_to_none(scores: np.ndarray) -> list[list[float | None]]:
    return [[float(x) if np.isfinite(x) else None for x in row] for row in scores]
