"""Files passed between people (study files, meta-data, portfolios) cannot make the program
write outside its directories or import code."""

from __future__ import annotations

import json
import sys
import textwrap

import pandas as pd
import pytest

from metapbt import envs
from metapbt._paths import confined, plain_name
from metapbt.errors import ConfigError, MetaDataError
from metapbt.metadata.store import MetaStore
from metapbt.studies.config import load_study
from tests.outputs import tree

STUDY = """
name = "{name}"
methods = ["random"]
{top}
[protocol]
preset = "fast"
population = 2
budget = 4000
interval = 2000

[[tasks]]
env = "{env}"
contexts = {contexts}
{rest}
"""


def write_study(tmp_path, name="s", env="cart_pole", contexts='["earth"]', top="", rest=""):
    folder = tmp_path / "here"
    folder.mkdir(exist_ok=True)
    path = folder / "study.toml"
    path.write_text(STUDY.format(name=name, env=env, contexts=contexts, top=top, rest=rest))
    return path


@pytest.mark.parametrize("name", ["a/b", "..", ".", "a\\\\b", "", "../../escaped_study"])
def test_plain_names_refuse_separators_and_dots(name):
    with pytest.raises(ConfigError, match="plain name"):
        plain_name(name.replace("\\\\", "\\"), "x")
    assert plain_name("gravity=9.8 earth", "x") == "gravity=9.8 earth"


@pytest.mark.parametrize(
    ("path", "ok"),
    [
        ("results/x", True),
        ("a/../b", True),
        ("/tmp/x", False),
        ("C:\\x", False),
        ("../x", False),
        ("a/../../x", False),
        ("..", False),
        ("a\\..\\..\\x", False),
    ],
)
def test_confined_paths_stay_below_their_directory(path, ok):
    if ok:
        assert confined(path, "p") == path
    else:
        with pytest.raises(ConfigError, match=r"absolute|leads outside"):
            confined(path, "p")


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"name": "../../escaped_study"}, "study name '../../escaped_study' must be a plain"),
        ({"name": "a/b"}, "plain name"),
        ({"top": 'results = "../../out"'}, "results '../../out' leads outside"),
        ({"top": 'results = "/tmp/anywhere"'}, "results '/tmp/anywhere' is absolute"),
        ({"top": 'save_meta = "meta/../../{env}"'}, "save_meta 'meta/../../cart_pole' leads"),
        ({"rest": '[logging]\ntensorboard = "../tb"'}, "logging.tensorboard '../tb' leads"),
        ({"contexts": '["../earth"]'}, "context '../earth' must be a plain name"),
        ({"top": "[[methods]]\nlabel = '../x'\nmethod = 'pbt'"}, "label"),
    ],
)
def test_a_study_file_cannot_write_outside_its_directory(tmp_path, fields, match):
    if "[[methods]]" in fields.get("top", ""):  # a method table instead of the list
        path = write_study(tmp_path)
        path.write_text(path.read_text().replace('methods = ["random"]\n', fields["top"] + "\n"))
    else:
        path = write_study(tmp_path, **fields)
    before = tree(tmp_path)
    with pytest.raises(ConfigError, match=match):
        load_study(path)
    assert tree(tmp_path) == before  # nothing written anywhere


def test_the_escaping_study_of_the_issue_is_refused_by_study_run(tmp_path):
    from typer.testing import CliRunner

    from metapbt.cli import app

    path = write_study(tmp_path, name="../../escaped_study")
    result = CliRunner().invoke(app, ["study", "run", str(path), "--no-watchdog"])
    assert result.exit_code != 0 and "must be a plain name" in result.output
    assert tree(tmp_path) == ["here", "here/study.toml"]


def test_safe_paths_are_kept(tmp_path):
    top = 'results = "out/deep"\nsave_meta = "meta/{env}"'
    study = load_study(write_study(tmp_path, top=top, rest='[logging]\ntensorboard = "tb"'))
    assert study.results_dir == tmp_path / "here" / "out" / "deep"
    assert study.cells[0].run_config().save_meta == str(tmp_path / "here" / "meta" / "cart_pole")


@pytest.fixture
def marker_module(tmp_path, monkeypatch):
    """A user's env module that leaves a file behind when imported; returns its marker path."""
    marker = tmp_path / "imported"
    (tmp_path / "marking_env_mod.py").write_text(
        textwrap.dedent(
            f"""
            import pathlib
            pathlib.Path({str(marker)!r}).write_text("imported")
            from tests.envs.custom_envs import Line
            ENV = Line()
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(envs.sources.ALLOW_IMPORT_VAR, raising=False)
    yield marker
    sys.modules.pop("marking_env_mod", None)
    envs.ENVS._built.pop("marking_env_mod:ENV", None)


def test_a_study_file_imports_a_module_only_when_the_user_allows_it(
    tmp_path, marker_module, monkeypatch
):
    path = write_study(tmp_path, env="marking_env_mod:ENV", contexts='["target=0.5"]')
    with pytest.raises(ConfigError, match="METAPBT_ALLOW_IMPORT=marking_env_mod"):
        load_study(path)
    assert not marker_module.exists()  # the module never ran
    monkeypatch.setenv(envs.sources.ALLOW_IMPORT_VAR, "other, marking_env_mod")
    assert load_study(path).cells[0].env == "marking_env_mod:ENV"
    assert marker_module.exists()
    monkeypatch.setenv(envs.sources.ALLOW_IMPORT_VAR, "other")  # already imported: still refused
    with pytest.raises(ConfigError, match="would import the Python module"):
        load_study(path)
    # Typed by the user (Python, --env), the same id is the user's own.
    assert envs.spec("marking_env_mod:ENV").features["target"].default == 0.5


def test_gymnasium_module_ids_count_as_imports():
    assert envs.sources.imported_module("gymnasium:my_pkg.envs:Thing-v0") == "my_pkg.envs"
    assert envs.sources.imported_module("gymnasium:CartPole-v1") is None
    assert envs.sources.imported_module("brax:ant") is None
    assert envs.sources.imported_module("a.b:ENV") == "a.b"


def test_a_portfolio_setup_naming_a_module_env_is_refused(tmp_path, marker_module):
    from metapbt.studies.portfolio_build import SETUP_SCHEMA, read_setup

    (tmp_path / "pf").mkdir()
    setup = {"env": "marking_env_mod:ENV", "contexts": ["target=0.5"]}
    space = {"lr": {"type": "float", "low": 1e-4, "high": 1e-3, "log": True}}
    (tmp_path / "pf" / "setup.json").write_text(
        json.dumps({"schema": SETUP_SCHEMA, "setup": setup, "space": space})
    )
    with pytest.raises(ConfigError, match=r"setup\.json names env 'marking_env_mod:ENV'"):
        read_setup(tmp_path / "pf")
    assert not marker_module.exists()


def _meta_file(tmp_path, **provenance):
    store = MetaStore(tmp_path / "meta")
    rows = pd.DataFrame(
        {"time": [1.0], "reward_before": [0.0], "lr": [1e-3], "target": [0.1], "member": [0]}
    )
    path = store.write(
        "cart_pole earth",
        rows,
        space={},
        hp_names=["lr"],
        seed=0,
        method="pb2",
        env="cart_pole",
        context={"g": 9.8},
    )
    if provenance:
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        meta = {**json.loads(table.schema.metadata[b"metapbt"]), **provenance}
        meta = {k: v for k, v in meta.items() if v is not None}
        pq.write_table(table.replace_schema_metadata({b"metapbt": json.dumps(meta)}), path)
    return store, path


@pytest.mark.parametrize(
    ("provenance", "match"),
    [
        ({"task": "../../x"}, "task id '../../x' must be a plain name"),
        ({"method": "a/b"}, "method 'a/b' must be a plain name"),
        ({"task": None}, "malformed provenance"),
        ({"seed": "many"}, "malformed provenance"),
        ({"context": 3}, "malformed provenance"),
    ],
)
def test_meta_data_with_unsafe_or_malformed_provenance_is_a_named_error(
    tmp_path, provenance, match
):
    store, path = _meta_file(tmp_path, **provenance)
    with pytest.raises(MetaDataError, match=match):
        store.read(path)


def test_a_store_refuses_to_write_a_method_that_is_not_a_plain_name(tmp_path):
    with pytest.raises(ConfigError, match="plain name"):
        MetaStore(tmp_path).path_for("cart_pole earth", "../pb2", 0)
