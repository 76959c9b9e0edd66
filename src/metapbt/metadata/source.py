"""Where a run's meta-data comes from: the one loader every meta method uses.

[`MetaSource`][metapbt.metadata.source.MetaSource] names a store, the target task and the run's
protocol. [`MetaSource.load`][metapbt.metadata.source.MetaSource.load] reads the store, leaves the
target out (by environment and *physical context values*, not by id string:
``cart_pole gravity=9.8`` is ``cart_pole earth``), checks the recorded protocol, and returns the
other tasks with the normalisation each is modelled under.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from metapbt.errors import MetaDataError
from metapbt.metadata.scaling import MetaNormaliser
from metapbt.metadata.store import MetaRun, MetaStore, MetaTask, pool_tasks

logger = logging.getLogger(__name__)

PROTOCOL_KEYS = ("preset", "population", "budget", "interval")
"""The settings a stored run's rows depend on (the meta-data's provenance)."""

LEGACY_AGENT = "ppo"
"""The agent of a stored run that recorded none (every run before DQN was PPO's)."""


def same_context(
    a: Mapping[str, float], b: Mapping[str, float], rel_tol: float = 1e-6, abs_tol: float = 1e-9
) -> bool:
    """Whether two resolved contexts hold the same features with (nearly) equal values."""
    return set(a) == set(b) and all(
        math.isclose(float(a[k]), float(b[k]), rel_tol=rel_tol, abs_tol=abs_tol) for k in a
    )


@dataclass(frozen=True)
class TaskRef:
    """A task: an environment and its resolved context values.

    Args:
        env: Environment id.
        context: Every context feature's value (resolved, not the text the user typed).
        name: The task id (``"<env> <context>"``), used in messages and weight tables.
    """

    env: str
    context: Mapping[str, float]
    name: str

    def same_as(self, env: str, context: Mapping[str, float], name: str | None = None) -> bool:
        """Whether ``(env, context)`` is this physical task (or carries this exact id)."""
        return name == self.name or (env == self.env and same_context(context, self.context))


class ModelColumns(Protocol):
    """What normalising a task's rows needs of a search space.

    [`NormalisedTask.rows`][metapbt.metadata.source.NormalisedTask.rows] takes one.
    [`SearchSpace`][metapbt.population.space.SearchSpace] satisfies it; the metadata layer sits
    below the population layer, so it names the one method rather than importing the class.
    """

    def model_columns(
        self, columns: np.ndarray, log_space: bool = True, clip: bool = False
    ) -> np.ndarray:
        """Encoded ``[n, d]`` columns as a surrogate's inputs."""
        ...


@dataclass(frozen=True)
class NormalisedTask:
    """A meta task's pooled rows with the normaliser they are modelled under."""

    task: MetaTask
    norm: MetaNormaliser

    def rows(
        self, space: ModelColumns, log_space: bool, rows: slice | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(x [n, 2 + d], y [n])`` normalised over the task's whole run (optionally a slice).

        A categorical's column is its choice's index, before the numeric unit-cube columns
        ([`model_columns`][metapbt.population.space.SearchSpace.model_columns]: the target's
        layout).
        """
        t = self.task
        sel = slice(None) if rows is None else rows
        unit = space.model_columns(t.hparams[sel], log_space, clip=True)
        return self.norm.inputs(t.time[sel], t.reward_before[sel], unit), self.norm.targets(
            t.target[sel]
        )


@dataclass(frozen=True)
class MetaSource:
    """A meta-data store, the target task (left out of it) and the run's protocol.

    Args:
        store: A meta-data directory ([`MetaStore`][metapbt.metadata.store.MetaStore]), or several
            whose tasks are pooled (e.g. every environment's planets: 19 tasks around one
            target, as the Meta-PB2 paper pooled them; the RGPE weights decide what transfers).
        target: The task being tuned; its own runs are never used.
        protocol: The run's protocol (``preset``, ``population``, ``budget``, ``interval``);
            stored runs recorded under another protocol (or none) are reported.
        strict: Refuse (instead of warn about) meta-data of another or an unknown protocol.
    """

    store: Path | tuple[Path, ...]
    target: TaskRef
    protocol: Mapping[str, Any] | None = None
    strict: bool = False
    _cache: dict[str, list[NormalisedTask]] = field(default_factory=dict, compare=False, repr=False)
    _read: dict[str, tuple[list[MetaRun], ...]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        if isinstance(self.store, str | os.PathLike):
            store: Path | tuple[Path, ...] = Path(os.fspath(self.store))
        else:
            store = tuple(Path(os.fspath(s)) for s in self.store)
            if not store:
                raise MetaDataError("a pooled meta-data source needs at least one store")
        object.__setattr__(self, "store", store)

    @property
    def stores(self) -> tuple[Path, ...]:
        """The directories read (one, or the pooled ones)."""
        return self.store if isinstance(self.store, tuple) else (self.store,)

    @property
    def where(self) -> str:
        """The store(s), for messages."""
        return " + ".join(str(s) for s in self.stores)

    def load(self, space: Mapping[str, Any]) -> list[NormalisedTask]:
        """The other tasks' pooled rows and normalisers (read once, then cached).

        Args:
            space: The run's search space as a dict; every stored run's must equal it.

        Raises:
            MetaDataError: On a broken store, a search-space mismatch, a protocol mismatch under
                ``strict``, or a store that holds nothing but the target.
        """
        key = repr(sorted(dict(space).items()))
        if key not in self._cache:
            names = list(space)
            tasks = [task for runs in self._stored_runs(space) for task in pool_tasks(runs, names)]
            self._check_protocols({p: pr for t in tasks for p, pr in t.protocols.items()})
            if not tasks:
                raise MetaDataError(
                    f"{self.where} holds no task other than the target {self.target.name!r}; "
                    "add runs of related tasks (`metapbt metadata build`)"
                )
            normalised = [
                NormalisedTask(t, MetaNormaliser.fit(t.time, t.reward_before, t.target))
                for t in tasks
            ]
            self._cache[key] = normalised
        return self._cache[key]

    def runs(self, space: Mapping[str, Any]) -> list[MetaRun]:
        """Every stored run of the other tasks, one by one (the rows `load` pools per task).

        The same checks as `load` (search space, protocol, agent, something besides the
        target); runs in store and file order.

        Raises:
            MetaDataError: As `load`.
        """
        self.load(space)
        return [run for runs in self._stored_runs(space) for run in runs]

    def _stored_runs(self, space: Mapping[str, Any]) -> tuple[list[MetaRun], ...]:
        """Each store's runs of the other tasks (read once per space, then cached)."""
        key = repr(sorted(dict(space).items()))
        if key not in self._read:
            self._read[key] = tuple(
                MetaStore(root).read_runs(space, exclude=self.target.same_as)
                for root in self.stores
            )
        return self._read[key]

    def _check_protocols(self, protocols: Mapping[Path, Mapping[str, Any] | None]) -> None:
        if self.protocol is None:
            return
        self._check_agent(protocols)
        wanted = {k: self.protocol[k] for k in PROTOCOL_KEYS}
        odd = {p: pr for p, pr in protocols.items() if pr is None or _differs(pr, wanted)}
        if not odd:
            return
        path, found = next(iter(odd.items()))
        message = (
            f"{len(odd)} of {len(protocols)} meta-data runs in {self.where} were recorded under "
            f"another protocol than this run's {wanted}: e.g. {path.name} has "
            f"{found if found is not None else 'no recorded protocol'}"
        )
        if self.strict:
            raise MetaDataError(
                f"{message}; rebuild the meta-data under this protocol "
                "(`metapbt metadata build`) or drop --strict"
            )
        logger.warning("%s; its rows may not transfer (pass --strict to refuse)", message)

    def _check_agent(self, protocols: Mapping[Path, Mapping[str, Any] | None]) -> None:
        """Refuse meta-data another agent trained (always: its rows are another learner's)."""
        agent = self.protocol.get("agent", LEGACY_AGENT) if self.protocol else LEGACY_AGENT
        other = {
            p: (pr or {}).get("agent", LEGACY_AGENT)
            for p, pr in protocols.items()
            if (pr or {}).get("agent", LEGACY_AGENT) != agent
        }
        if other:
            path, found = next(iter(other.items()))
            raise MetaDataError(
                f"{len(other)} of {len(protocols)} meta-data runs in {self.where} were trained by "
                f"another agent than this run's {agent!r}: e.g. {path.name} by {found!r}; "
                f"give meta-data of {agent} runs (`metapbt run --agent {agent} --save-meta DIR`)"
            )


def _differs(recorded: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    return any(recorded.get(k) != v for k, v in wanted.items())
