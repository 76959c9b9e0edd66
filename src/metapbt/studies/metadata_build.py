"""``metapbt metadata build`` as a study: one method on every context x seed of an environment.

Every finished run is appended to the meta-data store (the study's ``save_meta``); the runs' own
files (history, summary, checkpoint) go to ``<store>/.runs`` unless told otherwise, so the
study runner's states make the build resumable: finished cells are skipped, a killed one resumes
from its checkpoint, a failed one is retried. A run the store holds already is never redone.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from metapbt import envs
from metapbt.engine import agents, presets
from metapbt.envs.grids import expand_contexts
from metapbt.errors import ConfigError
from metapbt.metadata.store import MetaStore
from metapbt.runs.config import describe
from metapbt.studies.config import Cell, Study, StudyMethod, TaskSpec
from metapbt.studies.runner import CellResult, run_study
from metapbt.studies.states import cell_state

RUNS = ".runs"
"""Default directory of the runs' own files, inside the store."""


def metadata_study(
    env: str,
    contexts: str,
    method: str,
    seeds: int,
    store: Path,
    runs: Path | None = None,
    **protocol: Any,
) -> Study:
    """The study that builds the meta-data store ``store``.

    Args:
        env: Environment id.
        contexts: ``"planets"``, ``"grid:FEATURE"`` or contexts separated by ``;``.
        method: The method of the stored runs.
        seeds: Seeds ``0..seeds-1`` per context.
        store: The meta-data directory.
        runs: Where the runs' own files go (default ``<store>/.runs``).
        **protocol: [`TrainingProtocol`][metapbt.runs.config.TrainingProtocol] fields (others: its
            defaults; the preset: the env's for PPO, the agent's first otherwise, as for
            ``metapbt run``).

    Raises:
        ConfigError: On an unknown environment, context or method, no seeds, or an invalid
            protocol (naming the field).
    """
    if protocol.get("preset") is None and env in envs.ENVS:
        agent = protocol.get("agent", "ppo")
        names = presets.for_env(env) if agent == "ppo" else agents.kind(agent).preset_names()
        protocol = {**protocol, "preset": names[0]}
    try:
        return Study(
            name=f"metadata-{env}-{method}",
            results=str(runs if runs is not None else store / RUNS),
            methods=(StudyMethod(label=method, method=method),),
            tasks=(TaskSpec(env=env, contexts=tuple(expand_contexts(env, contexts))),),
            seeds=seeds,
            protocol=protocol,
            save_meta=str(store),
        )
    except ValidationError as err:
        raise ConfigError(f"invalid meta-data build: {describe(err)}") from None


def in_store(cell: Cell) -> bool:
    """Whether the meta-data store of ``cell`` holds its run already."""
    if cell.save_meta is None:
        return False
    return MetaStore(cell.save_meta).path_for(cell.task, cell.method.method, cell.seed).exists()


def build_metadata(
    study: Study,
    workers: int = 1,
    on_cell: Callable[[CellResult], None] | None = None,
    **options: Any,
) -> list[CellResult]:
    """Run every cell whose run the store lacks, in batches.

    ``options`` go to [`run_study`][metapbt.studies.runner.run_study] (``batch``, ``on_round``,
    ``on_batches``).
    """
    return run_study(study, workers=workers, on_cell=on_cell, skip=in_store, **options)


def pending(study: Study) -> list[Cell]:
    """The cells `build_metadata` would run (for progress displays)."""
    return [c for c in study.cells if not in_store(c) and cell_state(study, c) != "done"]
