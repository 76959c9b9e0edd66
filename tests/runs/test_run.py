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
