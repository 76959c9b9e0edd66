"""A run's checkpoint: everything needed to continue after the last finished round.

File (``checkpoint.msgpack``, flax msgpack): ``{"leaves": {i: array}, "meta": json}`` where the
leaves are the trainer state's, in ``jax.tree.leaves`` order, and ``meta`` holds the run's
config, the population's state, the per-round records, the training seconds so far and the key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from metapbt._atomic import write_atomic
from metapbt.engine.ppo import MemberState
from metapbt.errors import ConfigError, MetaPBTError
from metapbt.runs.config import with_legacy


@dataclass(frozen=True)
class Checkpoint:
    """A run after ``len(records)`` finished rounds.

    Attributes:
        config: The run's config (``RunConfig.model_dump(mode="json")``): a resume must match
            it (a setting an older checkpoint lacks counts as its
            [`LEGACY`][metapbt.runs.config.LEGACY] value).
        state: The trainer state ``[P]``.
        key: The run's PRNG key (evaluation keys are split from it).
        population: ``Population.state_dict()``.
        records: One ``{"step", "best"}`` per finished round.
        elapsed: Training seconds so far (train, evaluate, tell, apply; not file writing).
    """

    config: dict[str, Any]
    state: MemberState
    key: jax.Array
    population: dict[str, Any]
    records: tuple[dict[str, float], ...] = ()
    elapsed: float = 0.0

    def save(self, path: Path) -> None:
        """Write the checkpoint to ``path`` atomically."""
        leaves = [np.asarray(leaf) for leaf in jax.tree.leaves(self.state)]
        meta = {
            "config": self.config,
            "population": self.population,
            "records": list(self.records),
            "elapsed": self.elapsed,
            "key": np.asarray(self.key).tolist(),
        }
        payload = {"leaves": dict(enumerate(leaves)), "meta": json.dumps(meta)}
        data = serialization.msgpack_serialize(payload)
        write_atomic(path, lambda tmp: tmp.write_bytes(data))

    @classmethod
    def load(cls, path: Path, template: MemberState) -> Checkpoint:
        """Read ``path``; the state takes the structure of ``template`` (a fresh state).

        Raises:
            MetaPBTError: If the file is unreadable.
        """
        try:
            payload = serialization.msgpack_restore(Path(path).read_bytes())
            meta = json.loads(payload["meta"])
        except Exception as err:  # msgpack raises several unrelated types on corrupt input
            raise MetaPBTError(
                f"checkpoint {path} is unreadable ({err}); delete it to restart"
            ) from err
        stored = payload["leaves"]
        template_leaves, treedef = jax.tree.flatten(template)
        leaves = [
            stored[str(i)] if str(i) in stored else stored[i] for i in range(len(template_leaves))
        ]
        return cls(
            config=meta["config"],
            state=jax.tree.unflatten(treedef, [jnp.asarray(x) for x in leaves]),
            key=jnp.asarray(np.asarray(meta["key"], np.uint32)),
            population=meta["population"],
            records=tuple(meta["records"]),
            elapsed=meta["elapsed"],
        )

    @staticmethod
    def finished_rounds(path: Path) -> int:
        """Rounds the checkpoint at ``path`` records: 0 without one, -1 if it is unreadable."""
        if not Path(path).exists():
            return 0
        try:
            payload = serialization.msgpack_restore(Path(path).read_bytes())
            return len(json.loads(payload["meta"])["records"])
        except Exception:  # msgpack raises several unrelated types on corrupt input
            return -1

    def check_config(self, config: dict[str, Any], where: Path) -> None:
        """Refuse to resume the run in ``where`` with settings other than it started with.

        Raises:
            ConfigError: If ``config`` differs from the checkpoint's.
        """
        if with_legacy(self.config) != config:
            raise ConfigError(
                f"{where} was started with {self.config}, not {config}; resume with the same "
                "settings"
            )
