"""Every file format's shape is pinned to its version: a change fails here until it is recorded.

Each format is written by the library's own writer and its shape (keys and value types; columns
and their types) compared with the shape pinned for its schema version below. A key or column
that is removed, renamed or changes type needs a new version (and a reader for the old one, in
docs/reference/formats.md); an added key is compatible only if readers accept files without it,
and is then added to the pin under the same version.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from metapbt import Population, default_space
from metapbt.metadata import store
from metapbt.population import history, methods, portfolio
from metapbt.population.meta_io import save_run
from metapbt.runs import outputs
from metapbt.runs.config import RunConfig

from .outputs import finished_summary

ANY = "any"
"""A pinned key whose value may be of any type (``None`` until set, say)."""

PINNED = {
    outputs.SUMMARY_SCHEMA: {
        "schema": "str",
        "agent": "str",
        "preset": "str",
        "population": "int",
        "budget": "int",
        "interval": "int",
        "quantile": "float",
        "strict": "bool",
        "seeding": "str",
        "space": ANY,
        "env": "str",
        "context": "str",
        "method": "str",
        "seed": "int",
        "metadata": ANY,
        "save_meta": ANY,
        "portfolio": ANY,
        "init_ranges": ANY,
        "context_values": "dict",
        "preset_values": "dict",
        "best_per_round": "list",
        "final_best": "float",
        "wall_seconds": "float",
        "explorer": "dict",
        "versions": "dict",
    },
    history.SCHEMA_VERSION: {
        "step": "int64",
        "member": "int64",
        "reward": "double",
        "clone_source": "int64",
    },
    store.SCHEMA: {
        "time": "double",
        "reward_before": "double",
        "target": "double",
        "member": "int64",
    },
    portfolio.PORTFOLIO_SCHEMA: {
        "schema": "str",
        "space": "dict",
        "target": ANY,
        "provenance": "dict",
        "configs": "list",
        "tasks": "list",
        "matrix": "dict",
    },
    "population/1": {
        "version": "int",
        "method": "str",
        "space": "dict",
        "configs": "list",
        "last_step": "int",
        "rng": "dict",
        "history": "dict",
        "explorer": "dict",
        "latest": ANY,
        "member_steps": "list",
    },
}
"""Schema version -> the keys (or columns) every file of that version has, with their types.

A history's and a meta-data store's hyperparameter columns (one per tuned name) are not pinned."""


def _json_types(record: dict) -> dict[str, str]:
    return {key: type(value).__name__ for key, value in record.items()}


def _columns(path) -> dict[str, str]:
    return {field.name: str(field.type) for field in pq.read_schema(path)}


def _check(version: str, shape: dict[str, str]) -> None:
    assert version in PINNED, f"{version} is a new format version: pin its shape in PINNED"
    pinned = PINNED[version]
    missing = {k: v for k, v in pinned.items() if k not in shape}
    retyped = {
        k: (v, shape[k]) for k, v in pinned.items() if k in shape and v not in (ANY, shape[k])
    }
    assert not missing and not retyped, (
        f"{version} changed without a new version: missing {missing}, retyped {retyped}; "
        "bump the schema version and keep a reader for the old one"
    )


def _config():
    return RunConfig(env="cart_pole", context="earth", budget=4000, interval=2000, population=2)


def test_the_summary_keeps_its_keys():
    record = json.loads(json.dumps(finished_summary(_config(), [1.0, 2.0])))
    _check(record["schema"], _json_types(record))


def _history():
    space = default_space()
    h = history.History(space)
    rng = np.random.default_rng(0)
    for step in (100, 200):
        h.add_round(step, [space.sample(rng) for _ in range(2)], [1.0, 2.0], [-1, 0])
    return h


def test_the_history_keeps_its_columns(tmp_path):
    _history().to_parquet(tmp_path / "h.parquet", {"agent": "ppo"})
    meta = pq.read_schema(tmp_path / "h.parquet").metadata
    _check(meta[b"metapbt.schema"].decode(), _columns(tmp_path / "h.parquet"))
    assert history.read_labels(tmp_path / "h.parquet") == {"agent": "ppo"}


def test_the_metadata_store_keeps_its_columns(tmp_path):
    path = save_run(
        tmp_path,
        _history(),
        task="cart_pole earth",
        seed=0,
        method="pb2",
        env="cart_pole",
        context={"gravity": 9.81},
    )
    meta = json.loads(pq.read_schema(path).metadata[b"metapbt"])
    _check(meta["schema"], _columns(path))


def test_the_portfolio_keeps_its_keys(tmp_path):
    space = default_space()
    candidates = (portfolio.Candidate({"lr": 1e-4, "lambda": 0.95, "clip": 0.2}, "a"),)
    matrix = portfolio.ScoreMatrix(candidates, ("a",), np.eye(1))
    provenance = {"env": "cart_pole", "preset": "fast", "steps": 4000, "seeds": 1, "configs": 1}
    path = portfolio.Portfolio(space, candidates, matrix, None, provenance).save(
        tmp_path / "p.json"
    )
    record = json.loads(path.read_text())
    _check(record["schema"], _json_types(record))


def test_the_population_state_keeps_its_keys():
    pop = Population(default_space(), 2, methods.make("pbt"), seed=0)
    pop.tell(100, [1.0, 2.0])
    state = json.loads(json.dumps(pop.state_dict()))
    _check(f"population/{state['version']}", _json_types(state))


@pytest.mark.parametrize("version", sorted(PINNED))
def test_a_pin_names_a_version_the_library_writes(version):
    written = {
        outputs.SUMMARY_SCHEMA,
        history.SCHEMA_VERSION,
        store.SCHEMA,
        portfolio.PORTFOLIO_SCHEMA,
        "population/1",
    }
    assert version in written, f"{version} is pinned but no longer written: drop its pin"
