import json

import pytest

from metapbt import ConfigError
from metapbt.metadata.store import MetaStore
from metapbt.runs.run import RunConfig, bundled_metadata, run

TINY = {"budget": 8000, "interval": 2000, "population": 4}


def test_saved_runs_feed_a_meta_method_and_the_target_is_left_out(tmp_path):
    store = tmp_path / "meta"
    for context in ("earth", "neptune"):
        run(
            RunConfig(method="pb2", context=context, save_meta=str(store), **TINY),
            tmp_path / context,
        )
    assert [p.parent.name for p in MetaStore(store).runs()] == [
        "cart_pole__earth",
        "cart_pole__neptune",
    ]
    summary = run(
        RunConfig(method="meta-prior", context="earth", metadata=str(store), **TINY),
        tmp_path / "meta-run",
    )
    weights = summary["explorer"]["meta"]["weights"]
    assert weights and all(set(w) == {"step", "cart_pole neptune"} for w in weights)
    saved = json.loads((tmp_path / "meta-run" / "summary.json").read_text())
    assert saved["explorer"]["meta"]["weights"] == weights


def test_a_store_holding_only_the_target_is_refused(tmp_path):
    store = tmp_path / "meta"
    run(RunConfig(method="pb2", save_meta=str(store), **TINY), tmp_path / "a")
    with pytest.raises(ConfigError, match="no task other than the target"):
        run(RunConfig(method="taf", metadata=str(store), **TINY), tmp_path / "b")
    with pytest.raises(ConfigError, match="does not use meta-data"):
        run(RunConfig(method="pbt", metadata=str(store), **TINY), tmp_path / "c")


@pytest.mark.parametrize("env", ["cart_pole", "mountain_car", "pendulum", "acrobot"])
def test_bundled_meta_data_covers_the_planets_of_each_environment(env):
    tasks = {p.parent.name for p in MetaStore(bundled_metadata(env)).runs()}
    assert tasks == {f"{env}__{p}" for p in ("uranus", "venus", "saturn", "earth", "neptune")}


def test_bundled_meta_data_follows_the_feature_a_context_moves(tmp_path):
    for name in ("cart_pole", "cart_pole@length", "lunar_lander@leg_height"):
        (tmp_path / name).mkdir()
    assert bundled_metadata("cart_pole", "length=0.3", tmp_path) == tmp_path / "cart_pole@length"
    assert bundled_metadata("cart_pole", "earth", tmp_path) == tmp_path / "cart_pole"
    # naming the feature picks its store, at its default value too
    assert bundled_metadata("cart_pole", "length=0.5", tmp_path) == tmp_path / "cart_pole@length"
    assert bundled_metadata("cart_pole", "length=0.3,masspole=0.2", tmp_path) == (
        tmp_path / "cart_pole"
    )
    # the only store of an environment serves every context, its default one included
    leg = tmp_path / "lunar_lander@leg_height"
    assert bundled_metadata("lunar_lander", "leg_height=8", tmp_path) == leg
    assert bundled_metadata("lunar_lander", "leg_height=1.6", tmp_path) == leg
    with pytest.raises(ConfigError, match=r"no bundled meta-data for 'acrobot' \(shipped: "):
        bundled_metadata("acrobot", None, tmp_path)
