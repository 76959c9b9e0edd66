"""Any mutation of a valid study file, portfolio or meta-data provenance is a named
``ConfigError`` (or still a valid file), never a traceback, and writes nothing."""

from __future__ import annotations

import contextlib
import copy
import json
import math

from hypothesis import strategies as st

from metapbt.errors import ConfigError
from metapbt.studies.config import load_study
from tests.outputs import tree
from tests.properties import property_test

BASE_STUDY = {
    "name": "s",
    "seeds": 2,
    "methods": ["random", "pbt"],
    "protocol": {"preset": "fast", "population": 2, "budget": 4000, "interval": 2000},
    "tasks": [{"env": "cart_pole", "contexts": ["earth"]}],
}
OPTIONAL = [
    ("results",),
    ("save_meta",),
    ("layout",),
    ("logging", "tensorboard"),
    ("report", "above"),
    ("protocol", "agent"),
    ("protocol", "seeding"),
    ("protocol", "space"),
    ("protocol", "quantile"),
    ("tasks", 0, "protocol"),
    ("methods", 1),
    ("report", "schedules"),
    ("unknown_key",),
]
WORDS = [
    "planets",
    "grid:length",
    "../x",
    "/tmp/x",
    "a:b",
    "pb2-star",
    "earth",
    "classic",
    "dqn",
    "ppo",
    "cart_pole",
    "acrobot",
    "gymnax:CartPole-v1",
    "task",
    "shared",
    "run",
    "float",
    "meta-prior",
    "pooled",
    "{env}",
    "{nope}",
    "",
    ".",
    "..",
]
scalars = st.one_of(
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(),
    st.text(max_size=10),
    st.sampled_from(WORDS),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(WORDS), st.text(max_size=6)), inner, max_size=4),
    ),
    max_leaves=8,
)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, (*prefix, i))


STUDY_PATHS = [p for p in _paths(BASE_STUDY) if p] + OPTIONAL


def _set(data, path, value, delete=False):
    node = data
    for key in path[:-1]:
        if isinstance(node, dict):
            node = node.setdefault(key, {})
        elif isinstance(node, list) and isinstance(key, int) and key < len(node):
            node = node[key]
        else:
            return
        if not isinstance(node, dict | list):
            return
    last = path[-1]
    if isinstance(node, dict):
        if delete:
            node.pop(last, None)
        else:
            node[last] = value
    elif isinstance(node, list) and isinstance(last, int):
        if last < len(node):
            if delete:
                node.pop(last)
            else:
                node[last] = value
        elif not delete:
            node.append(value)


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return (
            "nan"
            if math.isnan(value)
            else ("inf" if value > 0 else "-inf")
            if math.isinf(value)
            else repr(value)
        )
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return (
        "{" + ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items()) + "}"
    )


def _toml(data) -> str:
    return "\n".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in data.items()) + "\n"


mutations = st.lists(
    st.tuples(st.sampled_from(STUDY_PATHS), values, st.booleans()), min_size=1, max_size=3
)


@property_test(mutations, examples=60)
def test_a_mutated_study_file_is_valid_or_a_named_error(tmp_path_factory, changes):
    data = copy.deepcopy(BASE_STUDY)
    for path, value, delete in changes:
        _set(data, path, value, delete)
    folder = tmp_path_factory.mktemp("study")
    path = folder / "study.toml"
    path.write_text(_toml(data), encoding="utf-8", errors="surrogatepass")
    with contextlib.suppress(ConfigError):
        load_study(path)
    assert tree(folder) == ["study.toml"]


test_a_mutated_study_file_is_valid_or_a_named_error, test_study_mutations_many = (
    test_a_mutated_study_file_is_valid_or_a_named_error
)


edits = st.lists(
    st.tuples(
        st.integers(0, 10_000),
        st.sampled_from(["delete", "insert", "replace"]),
        st.sampled_from([*"\"[]{}=,.\n#:0a-\\'", "\x00", "é"]),
    ),
    min_size=1,
    max_size=4,
)


@property_test(edits, examples=60)
def test_a_study_file_with_broken_text_is_valid_or_a_named_error(tmp_path_factory, changes):
    text = list(_toml(BASE_STUDY))
    for at, op, char in changes:
        i = at % (len(text) + 1)
        if op == "insert" or not text:
            text.insert(i, char)
        elif op == "delete":
            text.pop(min(i, len(text) - 1))
        else:
            text[min(i, len(text) - 1)] = char
    folder = tmp_path_factory.mktemp("study")
    (folder / "study.toml").write_text("".join(text))
    with contextlib.suppress(ConfigError):
        load_study(folder / "study.toml")
    assert tree(folder) == ["study.toml"]


test_a_study_file_with_broken_text_is_valid_or_a_named_error, test_study_text_edits_many = (
    test_a_study_file_with_broken_text_is_valid_or_a_named_error
)


def _portfolio():
    from metapbt.population.portfolio import Candidate, ScoreMatrix, select
    from metapbt.population.space import Float, SearchSpace

    space = SearchSpace({"lr": Float(1e-4, 1e-3, log=True), "clip": Float(0.1, 0.3)})
    configs = ({"lr": 1e-4, "clip": 0.1}, {"lr": 5e-4, "clip": 0.2}, {"lr": 1e-3, "clip": 0.3})
    candidates = tuple(Candidate(c, "a x") for c in configs)
    import numpy as np

    matrix = ScoreMatrix(candidates, ("a x", "b y"), np.array([[0.1, 0.9], [0.5, 0.5], [0.9, 0.2]]))
    return select(space, matrix, 2)


PORTFOLIO = _portfolio().to_json()
PORTFOLIO_PATHS = [p for p in _paths(PORTFOLIO) if p]


@property_test(
    st.lists(
        st.tuples(st.sampled_from(PORTFOLIO_PATHS), values, st.booleans()), min_size=1, max_size=3
    ),
    examples=60,
)
def test_a_mutated_portfolio_file_is_valid_or_a_named_error(tmp_path_factory, changes):
    from metapbt.population.portfolio import Portfolio

    data = copy.deepcopy(PORTFOLIO)
    for path, value, delete in changes:
        _set(data, path, value, delete)
    path = tmp_path_factory.mktemp("pf") / "p.json"
    path.write_text(json.dumps(data))
    try:
        portfolio = Portfolio.load(path)
    except ConfigError:
        return
    for entry in portfolio.configs:
        assert portfolio.space.validate(entry) == entry


test_a_mutated_portfolio_file_is_valid_or_a_named_error, test_portfolio_mutations_many = (
    test_a_mutated_portfolio_file_is_valid_or_a_named_error
)


def _meta_store(root):
    import pandas as pd

    from metapbt.metadata.store import MetaStore

    store = MetaStore(root)
    rows = pd.DataFrame(
        {"time": [1.0], "reward_before": [0.0], "lr": [1e-3], "target": [0.1], "member": [0]}
    )
    space = {"lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}}
    path = store.write(
        "cart_pole earth",
        rows,
        space=space,
        hp_names=["lr"],
        seed=0,
        method="pb2",
        env="cart_pole",
        context={"gravity": 9.8},
        protocol={"preset": "classic"},
    )
    return store, path


def _provenance():
    import tempfile

    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory() as root:
        _, path = _meta_store(root)
        return json.loads(pq.read_schema(path).metadata[b"metapbt"])


PROVENANCE = _provenance()


@property_test(
    st.lists(
        st.tuples(st.sampled_from([p for p in _paths(PROVENANCE) if p]), values, st.booleans()),
        min_size=1,
        max_size=3,
    ),
    examples=40,
)
def test_mutated_meta_data_provenance_is_read_or_a_named_error(tmp_path_factory, changes):
    import pyarrow.parquet as pq

    from metapbt.errors import MetaDataError

    store, path = _meta_store(tmp_path_factory.mktemp("meta"))
    data = copy.deepcopy(PROVENANCE)
    for key_path, value, delete in changes:
        _set(data, key_path, value, delete)
    table = pq.read_table(path)
    pq.write_table(table.replace_schema_metadata({b"metapbt": json.dumps(data)}), path)
    try:
        store.read(path)
        store.tasks(PROVENANCE["space"])
    except MetaDataError:
        pass


test_mutated_meta_data_provenance_is_read_or_a_named_error, test_meta_mutations_many = (
    test_mutated_meta_data_provenance_is_read_or_a_named_error
)
