"""One file-name encoding of tasks and contexts, and the names written before it still read."""

import doctest

import numpy as np

import metapbt._slug
from metapbt._slug import slug, task_slug
from metapbt.metadata.store import MetaStore
from metapbt.runs.config import TrainingProtocol
from metapbt.studies import calibrate as cal
from metapbt.studies.config import Cell, StudyMethod


def test_examples_and_the_names_every_writer_uses():
    assert doctest.testmod(metapbt._slug).failed == 0
    assert task_slug("cart_pole earth") == "cart_pole__earth"
    assert task_slug("acrobot gravity=1e+20,length=2.0") == "acrobot__gravity=1e+20+length=2.0"
    assert slug("a b/c") == "a+b+c"
    cell = Cell(
        method=StudyMethod(label="pb2", method="pb2"),
        env="cart_pole",
        context="gravity=12.0,length=0.4",
        seed=1,
        protocol=TrainingProtocol(),
    )
    assert cell.id == "pb2__cart_pole__gravity=12.0+length=0.4__seed1"  # unchanged ids


def test_a_store_finds_a_run_under_its_old_name(tmp_path):
    store = MetaStore(tmp_path)
    task = "cart_pole gravity=12.0,length=0.4"
    assert store.path_for(task, "pb2", 0) == tmp_path / "cart_pole__gravity=12.0+length=0.4" / (
        "pb2-seed0.parquet"
    )
    old = tmp_path / "cart_pole__gravity=12.0,length=0.4" / "pb2-seed0.parquet"
    old.parent.mkdir()
    old.write_bytes(b"")
    assert store.path_for(task, "pb2", 0) == old
    assert store.path_for("cart_pole earth", "pb2", 0).parent.name == "cart_pole__earth"


def test_calibration_resumes_from_a_saved_result_new_or_old_name(tmp_path, monkeypatch):
    calls = []

    def fake(env, preset, budget, configs, context, seed, agent="ppo"):
        calls.append(env)
        drawn = tuple({"lr": 1e-4, "lambda": 0.95, "clip": 0.2} for _ in range(configs))
        scores = tuple(float(x) for x in np.arange(configs))
        return cal.Calibration(env, context, preset, budget, drawn, scores, 475.0, 1.0)

    monkeypatch.setattr(cal, "calibrate", fake)
    context = "gravity=12.0,length=0.4"
    first = cal.calibrate_or_load(tmp_path, "cart_pole", "classic", 8000, 3, context)
    again = cal.calibrate_or_load(tmp_path, "cart_pole", "classic", 8000, 3, context)
    assert calls == ["cart_pole"] and again.returns == first.returns
    assert (tmp_path / "cart_pole__classic__gravity=12.0+length=0.4__8000__seed0.json").exists()
    legacy = tmp_path / "old" / "acrobot__classic__gravity=12.0,length=0.4__8000__seed0.json"
    legacy.parent.mkdir()
    cal.save(fake("acrobot", "classic", 8000, 3, context, 0), legacy)
    cal.calibrate_or_load(tmp_path / "old", "acrobot", "classic", 8000, 3, context)
    assert calls == ["cart_pole", "acrobot"]  # the old file was read, not recomputed
