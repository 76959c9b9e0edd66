"""Protocol calibration: summaries on hand-made returns, files, and a tiny real run via the CLI."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from metapbt.cli import app
from metapbt.engine import presets
from metapbt.errors import ConfigError
from metapbt.studies import calibrate as cal


def _row(returns, solved=-110.0):
    configs = tuple({"lr": 1e-4 * (i + 1)} for i in range(len(returns)))
    return cal.Calibration("mountain_car", "earth", "classic", 4000, configs, returns, solved, 1.0)


def test_summary_counts_solved_configs_and_the_spread():
    s = _row((-200.0, -120.0, -100.0, -200.0, float("nan"))).summary()
    assert s["best"] == -100.0 and s["best_config"] == pytest.approx({"lr": 3e-4})
    assert s["learned"] and s["reached"] == 1 and s["diverged"] == 1
    assert s["median"] == -160.0  # of the four finite returns
    assert s["q25"] == pytest.approx(-200.0) and s["q75"] == pytest.approx(-115.0)
    assert s["std"] == pytest.approx(np.std([-200.0, -120.0, -100.0, -200.0]))
    assert not _row((-200.0, -150.0)).summary()["learned"]
    assert _row((-200.0, -150.0), solved=None).summary()["reached"] is None
    assert _row((float("nan"), float("nan"))).summary()["best"] is None


def test_save_load_round_trip_and_refusals(tmp_path):
    row = _row((-200.0, float("nan"), -90.0))
    path = cal.save(row, tmp_path / "c.json")
    back = cal.load(path, expected_configs=3)
    assert back.configs == row.configs and np.isnan(back.returns[1])
    assert back.summary() == row.summary()
    assert json.loads(path.read_text())["returns"][1] is None
    with pytest.raises(ConfigError, match="not 5"):
        cal.load(path, expected_configs=5)
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ConfigError, match="delete it"):
        cal.load(tmp_path / "bad.json")
    assert "| mountain_car | classic | 4,000 | -90.0 (-110) | 1/3 |" in cal.table([row])


def test_calibrate_refuses_bad_settings():
    with pytest.raises(ConfigError, match="at least 2"):
        cal.calibrate("cart_pole", "fast", 2000, configs=1)
    with pytest.raises(ConfigError, match="multiple"):
        cal.calibrate("cart_pole", "fast", 2500, configs=2)
    with pytest.raises(ConfigError, match="gravity"):
        cal.calibrate("cart_pole", "fast", 2000, configs=2, context="gravity=-1")


def test_cli_calibrates_and_resumes(tmp_path, monkeypatch):
    args = ["calibrate", "--env", "cart_pole", "--preset", "fast", "--budget", "2000"]
    args += ["--configs", "3", "--out", str(tmp_path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    [path] = tmp_path.glob("cart_pole__fast__*.json")
    row = cal.load(path)
    assert len(row.returns) == 3 and all(np.isfinite(row.returns)) and row.solved == 475.0
    # The same configurations for every preset and env calibrated with one seed.
    rng = np.random.default_rng(0)
    from metapbt.population.space import default_space

    assert row.configs[0] == default_space().sample(rng)
    monkeypatch.setattr(cal, "calibrate", lambda *a, **k: pytest.fail("recomputed"))
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and "| cart_pole | fast | 2,000 |" in again.output
    assert (tmp_path / "calibration.md").read_text().startswith("| env |")


def test_cli_calibrates_each_preset_for_a_runs_budget_and_warns_of_unsuited_pairs(
    tmp_path, monkeypatch, caplog
):
    budgets = {}

    def fake(out, env, preset, budget, *args, **kwargs):
        budgets[preset] = budget
        return _row((1.0, 2.0))

    monkeypatch.setattr(cal, "calibrate_or_load", fake)
    args = ["calibrate", "--env", "lunar_lander", "--preset", "box2d", "--preset", "classic"]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert budgets == {"box2d": 520_000, "classic": 600_000}
    budgets.clear()
    mixed = ["calibrate", "--env", "cart_pole", "--env", "hopper", "--out", str(tmp_path)]
    presets.warn_unsuited.cache_clear()
    warned = CliRunner().invoke(app, mixed)  # a pair that does not suit still calibrates
    assert warned.exit_code == 0 and "not meant for hopper" in caplog.text
    assert budgets == {"classic": 600_000}


def test_cli_tables_every_calibration_in_out_across_calls_and_budgets(tmp_path, monkeypatch):
    made = []

    def fake(out, env, preset, budget, configs, context, seed, agent="ppo"):
        row = cal.Calibration(
            env, context, preset, budget, ({"lr": 1e-4},) * 2, (1.0, 2.0), None, 1.0
        )
        cal.save(row, cal.result_path(out, env, preset, context, budget, seed))
        made.append((env, budget))
        return row

    monkeypatch.setattr(cal, "calibrate_or_load", fake)
    first = ["calibrate", "--env", "cart_pole", "--preset", "fast", "--out", str(tmp_path)]
    assert CliRunner().invoke(app, [*first, "--budget", "4000", "--budget", "2000"]).exit_code == 0
    second = ["calibrate", "--env", "acrobot", "--preset", "fast", "--budget", "2000"]
    result = CliRunner().invoke(app, [*second, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert made == [("cart_pole", 4000), ("cart_pole", 2000), ("acrobot", 2000)]
    lines = (tmp_path / "calibration.md").read_text().splitlines()[2:]
    assert [line.split(" | ")[0:3] for line in lines] == [
        ["| acrobot", "fast", "2,000"],
        ["| cart_pole", "fast", "2,000"],
        ["| cart_pole", "fast", "4,000"],
    ]
    (tmp_path / "cart_pole__fast__earth__2000__seed0.json").write_text("{not json")
    broken = CliRunner().invoke(app, [*second, "--out", str(tmp_path)])
    assert broken.exit_code != 0 and "not a readable calibration" in broken.output


def test_calibrate_takes_the_dqn_agent_with_its_space_presets_and_file_names(tmp_path):
    args = ["calibrate", "--env", "cart_pole", "--agent", "dqn", "--budget", "100"]
    result = CliRunner().invoke(app, [*args, "--configs", "2", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    [path] = tmp_path.glob("cart_pole__dqn-classic__*.json")
    row = cal.load(path)
    assert row.agent == "dqn" and set(row.configs[0]) == {"lr", "tau", "gamma", "eps_final"}
    assert "| cart_pole | dqn classic | 100 |" in (tmp_path / "calibration.md").read_text()
    bad = CliRunner().invoke(app, [*args, "--preset", "box2d", "--out", str(tmp_path)])
    assert bad.exit_code != 0 and "unknown preset 'box2d' for the dqn agent" in bad.output
