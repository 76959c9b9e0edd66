import numpy as np
import pytest

from metapbt import ConfigError, Float, History, MetaPBTError, SearchSpace


def space():
    return SearchSpace({"lr": Float(1e-5, 1e-3, log=True), "clip": Float(0.1, 0.5)})


def a(lr, clip=0.2):
    return {"lr": lr, "clip": clip}


def test_two_reports_with_unchanged_hyperparameters_give_one_row():
    h = History(space())
    h.add_round(100, [a(1e-4)], [1.0], [-1])
    h.add_round(300, [a(1e-4)], [5.0], [-1])
    data = h.surrogate_data()
    assert len(data) == 1
    assert data.time[0] == 300 and data.reward_before[0] == 1.0
    assert data.target[0] == pytest.approx((5.0 - 1.0) / 200)
    np.testing.assert_allclose(data.hparams[0], [1e-4, 0.2])


def test_first_round_has_no_training_rows():
    h = History(space())
    h.add_round(100, [a(1e-4), a(1e-3)], [1.0, 2.0], [-1, 0])
    assert len(h.surrogate_data()) == 0


def test_clone_bridges_from_the_donors_reward_with_the_new_hyperparameters():
    h = History(space())
    # Member 0 clones member 1 at step 100 and continues with lr=5e-4.
    h.add_round(100, [a(1e-4), a(2e-4)], [1.0, 3.0], [1, -1])
    h.add_round(200, [a(5e-4), a(2e-4)], [4.5, 4.0], [-1, -1])
    data = h.surrogate_data()
    assert len(data) == 2
    row = int(np.flatnonzero(data.member == 0)[0])
    assert data.reward_before[row] == 3.0  # the donor's reward, not its own 1.0
    assert data.target[row] == pytest.approx((4.5 - 3.0) / 100)
    assert data.hparams[row, 0] == pytest.approx(5e-4)


def test_nan_rewards_drop_rows_and_cap_keeps_latest():
    h = History(space())
    for i, step in enumerate(range(10, 110, 10)):
        h.add_round(step, [a(1e-4)], [float("nan") if i == 4 else float(i)], [-1])
    data = h.surrogate_data()
    assert len(data) == 7  # 9 pairs, two touch the NaN
    assert np.all(np.isfinite(data.target))
    capped = h.surrogate_data(max_rows=3)
    np.testing.assert_array_equal(capped.time, [80, 90, 100])


def test_frame_schema_and_parquet_round_trip(tmp_path):
    h = History(space())
    h.add_round(100, [a(1e-4), a(2e-4)], [1.0, float("nan")], [-1, 0])
    frame = h.to_frame()
    assert list(frame.columns) == ["step", "member", "lr", "clip", "reward", "clone_source"]
    assert str(frame["step"].dtype) == "int64" and str(frame["reward"].dtype) == "float64"
    path = tmp_path / "history.parquet"
    h.to_parquet(path)
    back = History.from_parquet(path)
    assert back.space == h.space
    assert back.to_frame().equals(frame)
    assert [p.name for p in tmp_path.iterdir()] == ["history.parquet"]  # no temporary left


def test_labels_round_trip_and_files_without_them_read_as_empty(tmp_path):
    from metapbt.population.history import LABELS_KEY, read_labels

    h = History(space())
    h.add_round(100, [a(1e-4)], [1.0], [-1])
    h.to_parquet(tmp_path / "labelled.parquet", {"agent": "dqn"})
    h.to_parquet(tmp_path / "plain.parquet")
    assert read_labels(tmp_path / "labelled.parquet") == {"agent": "dqn"}
    assert read_labels(tmp_path / "plain.parquet") == {}
    assert History.from_parquet(tmp_path / "labelled.parquet").to_frame().equals(h.to_frame())

    import pyarrow.parquet as pq

    table = pq.read_table(tmp_path / "plain.parquet")
    broken = table.replace_schema_metadata({**table.schema.metadata, LABELS_KEY: b"[1, 2"})
    pq.write_table(broken, tmp_path / "broken.parquet")
    with pytest.raises(MetaPBTError, match="malformed labels"):
        read_labels(tmp_path / "broken.parquet")


def test_corrupted_or_foreign_file_is_reported_by_name(tmp_path):
    bad = tmp_path / "broken.parquet"
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(MetaPBTError, match=r"broken\.parquet"):
        History.from_parquet(bad)


def test_reserved_names_are_rejected():
    with pytest.raises(ConfigError, match="clash"):
        History(SearchSpace({"reward": Float(0, 1)}))
