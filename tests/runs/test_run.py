import json

import pandas as pd
import pytest

from metapbt import ConfigError, History
from metapbt.runs.run import RunConfig, run

CONFIG = RunConfig(method="pb2-star", budget=8000, interval=2000, population=3, seed=3)


class KilledError(Exception):
    pass


def test_outputs_and_formats(tmp_path):
    summary = run(CONFIG, tmp_path / "a")
    history = History.from_parquet(tmp_path / "a" / "history.parquet").to_frame()
    assert len(history) == 4 * 3 and set(history["step"]) == {2000, 4000, 6000, 8000}
    saved = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert saved["schema"] == "metapbt.summary/1" and saved["method"] == "pb2-star"
    assert [r["step"] for r in saved["best_per_round"]] == [2000, 4000, 6000, 8000]
    assert saved["context_values"]["gravity"] == pytest.approx(9.8)
    assert summary["final_best"] == pytest.approx(history[history.step == 8000].reward.max())
    assert (tmp_path / "a" / "run.png").stat().st_size > 10_000
    with pytest.raises(ConfigError, match="already holds a run"):
        run(CONFIG, tmp_path / "a")


def test_killed_run_resumes_to_the_same_history(tmp_path):
    run(CONFIG, tmp_path / "full")

    def kill_after_two(report):
        if report.round == 2:
            raise KilledError

    with pytest.raises(KilledError):
        run(CONFIG, tmp_path / "part", on_round=kill_after_two)
    assert len(pd.read_parquet(tmp_path / "part" / "history.parquet")) == 2 * 3
    with pytest.raises(ConfigError, match="same settings"):
        run(RunConfig(**{**CONFIG.__dict__, "seed": 4}), tmp_path / "part", resume=True)
    run(CONFIG, tmp_path / "part", resume=True)
    full = pd.read_parquet(tmp_path / "full" / "history.parquet")
    resumed = pd.read_parquet(tmp_path / "part" / "history.parquet")
    pd.testing.assert_frame_equal(full, resumed)


def test_a_disk_that_fills_mid_write_keeps_the_last_round_and_resumes_identically(
    tmp_path, monkeypatch
):
    """ENOSPC inside the atomic writer (the third round's history): a named error, the files of
    round two intact and no temporary left; with space back, the run resumes to the same history."""
    import errno

    import pyarrow.parquet as pq

    from metapbt import DiskFullError

    run(CONFIG, tmp_path / "full")
    real, calls = pq.write_table, []

    def fills_on_the_third(table, where, *args, **kwargs):
        calls.append(where)
        if len(calls) == 3:
            real(table.slice(0, 1), where, *args, **kwargs)  # a partial temporary file
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(table, where, *args, **kwargs)

    monkeypatch.setattr(pq, "write_table", fills_on_the_third)
    with pytest.raises(DiskFullError, match=r"no space left writing .*history\.parquet"):
        run(CONFIG, tmp_path / "part")
    monkeypatch.setattr(pq, "write_table", real)
    part = tmp_path / "part"
    assert len(pd.read_parquet(part / "history.parquet")) == 2 * 3  # round two's, intact
    assert sorted(p.name for p in part.iterdir()) == ["checkpoint.msgpack", "history.parquet"]
    run(CONFIG, part, resume=True)
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "full" / "history.parquet"),
        pd.read_parquet(part / "history.parquet"),
    )


def test_a_run_job_takes_its_own_config_resolved_only(tmp_path):
    from metapbt.runs.batch import RunJob
    from metapbt.runs.resolve import resolve

    assert RunJob(CONFIG, tmp_path, resolved=resolve(CONFIG)).resolved is not None
    other = resolve(CONFIG.model_copy(update={"seed": 4}))
    with pytest.raises(ValueError, match="resolved run must be its config's"):
        RunJob(CONFIG, tmp_path, resolved=other)
