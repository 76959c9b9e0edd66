import importlib.metadata
import json
import shutil
import tomllib
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import metapbt
from metapbt.cli import app
from metapbt.population.history import History
from metapbt.runs.config import RunConfig

from .tensorboard_events import read_dir, scalars

runner = CliRunner()
TINY = ["--budget", "4000", "--interval", "2000", "--population", "2"]


def test_run_writes_outputs_and_bad_input_exits_2(tmp_path):
    result = runner.invoke(app, ["run", *TINY, "--quantile", "0.5", "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert "round  2/2" in result.output and "final best reward" in result.output
    for name in ("history.parquet", "summary.json", "run.png", "checkpoint.msgpack"):
        assert (tmp_path / "r" / name).exists()
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["quantile"] == 0.5 and summary["budget"] == 4000
    bad = runner.invoke(app, ["run", "--context", "mars", "--out", str(tmp_path / "b")])
    assert bad.exit_code == 2 and "neither a planet" in bad.output
    odd = runner.invoke(app, ["run", "--interval", "3000", "--out", str(tmp_path / "c")])
    assert odd.exit_code == 2 and "'classic' preset's batch size 2000" in " ".join(
        odd.output.split()
    )


def test_version_is_written_once_and_printed_by_dash_dash_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output == f"metapbt {metapbt.__version__}\n"
    # The installed metadata comes from the same string (stale only if it changed since the
    # install: pip install -e . again).
    assert importlib.metadata.version("metapbt") == metapbt.__version__
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"]
    assert pyproject["project"]["dynamic"] == ["version"]
    dynamic = pyproject["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "metapbt._version.__version__"}


def test_every_run_config_field_is_a_run_option():
    command = typer.main.get_command(app).commands["run"]
    options = {param.name for param in command.params}
    assert set(RunConfig.model_fields) <= options


def _unwrapped(output: str) -> str:
    """The output with rich's line wrapping undone (a long path wraps the line it is on)."""
    return " ".join(output.split())


@pytest.mark.slow  # 16 s; the batch runner skips finished cells in the default job
def test_metadata_build_skips_finished_runs(tmp_path):
    args = [
        "metadata",
        "build",
        "--contexts",
        "earth;gravity=12",
        "--seeds",
        "1",
        *TINY,
        "--out",
        str(tmp_path / "meta"),
    ]
    assert runner.invoke(app, args).exit_code == 0
    files = sorted((tmp_path / "meta").glob("*/*.parquet"))
    assert [f.parent.name for f in files] == ["cart_pole__earth", "cart_pole__gravity=12.0"]
    stamps = [f.stat().st_mtime_ns for f in files]
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "2 runs" in _unwrapped(again.output)
    assert [f.stat().st_mtime_ns for f in files] == stamps
    # A run the store holds is finished even without the runs' own files.
    shutil.rmtree(tmp_path / "meta" / ".runs")
    third = runner.invoke(app, args)
    assert third.exit_code == 0 and "2 runs" in _unwrapped(third.output)
    assert [f.stat().st_mtime_ns for f in files] == stamps


def test_run_lines_fit_80_columns_and_a_second_run_gets_a_new_directory(tmp_path):
    out = tmp_path / "demo"
    first = runner.invoke(app, ["run", *TINY, "--out", str(out)], terminal_width=200)
    assert first.exit_code == 0, first.output
    rounds = [line for line in first.output.splitlines() if line.startswith("round")]
    assert len(rounds) == 2 and all(len(line) <= 79 for line in rounds)
    second = runner.invoke(app, ["run", *TINY, "--out", str(out)], terminal_width=200)
    assert second.exit_code == 0, second.output
    assert "demo-2" in second.output and (tmp_path / "demo-2" / "summary.json").exists()


def test_run_with_several_seeds_and_contexts_trains_them_as_one_batch(tmp_path):
    args = ["run", *TINY, "--seeds", "0,1", "--contexts", "earth", "--contexts", "gravity=12"]
    tb = ["--tensorboard", str(tmp_path / "tb")]
    result = runner.invoke(app, [*args, *tb, "--out", str(tmp_path / "many")], terminal_width=200)
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (tmp_path / "many").iterdir())
    assert names == ["earth__seed0", "earth__seed1", "gravity=12__seed0", "gravity=12__seed1"]
    for name in names:
        summary = json.loads((tmp_path / "many" / name / "summary.json").read_text())
        assert summary["seed"] == int(name[-1])
    # TensorBoard events of each run, written by the batch's child process, named as its folder
    assert sorted(p.name for p in (tmp_path / "tb").iterdir()) == names
    for name in names:
        assert_events_match_history(tmp_path / "tb" / name, tmp_path / "many" / name)
    # one batch: a classic-control env's contexts train together, by the study runner's rule
    assert result.output.count("4 runs trained together") == 1 and "mean" in result.output
    # --resume: finished runs are done cells of the study (nothing trains, all four reported)
    stamps = [(tmp_path / "many" / n / "summary.json").stat().st_mtime_ns for n in names]
    again = runner.invoke(app, [*args, "--out", str(tmp_path / "many"), "--resume"])
    assert again.exit_code == 0 and "trained together" not in again.output
    assert all(n in again.output for n in names) and "over 4 runs" in again.output
    assert [(tmp_path / "many" / n / "summary.json").stat().st_mtime_ns for n in names] == stamps
    # ... and results of other settings are never overwritten
    other = [*args, "--out", str(tmp_path / "many"), "--resume", "--quantile", "0.5"]
    changed = runner.invoke(app, other, terminal_width=200)
    assert changed.exit_code == 2 and "hold results of other settings (e.g. earth__seed0)" in (
        " ".join(changed.output.split())
    )
    bad = runner.invoke(app, ["run", *TINY, "--seeds", "0,x", "--out", str(tmp_path / "b")])
    assert bad.exit_code == 2 and "--seeds takes integers" in bad.output


def test_run_takes_budget_and_interval_from_the_preset(tmp_path, monkeypatch):
    import metapbt.runs.run

    seen = []

    def fake_run(config, out, **_):
        seen.append(config)
        return {"final_best": 1.0, "wall_seconds": 0.1}

    monkeypatch.setattr(metapbt.runs.run, "run", fake_run)
    args = ["run", "--env", "hopper", "--preset", "brax-fast", "--out", str(tmp_path / "h")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    [config] = seen
    assert (config.budget, config.interval, config.rounds) == (1_024_000, 102_400, 10)
    # no preset: the env's (a Brax robot's is brax-fast), with its budget and interval
    default = runner.invoke(app, ["run", "--env", "hopper", "--out", str(tmp_path / "m")])
    assert default.exit_code == 0, default.output
    assert (seen[1].preset, seen[1].budget, seen[1].interval) == ("brax-fast", 1_024_000, 102_400)
    command = typer.main.get_command(app).commands["run"]
    helps = {param.name: param.help for param in command.params}
    assert helps["budget"].endswith("\\[default: the preset's; classic: 600,000]")
    assert helps["interval"].endswith("\\[default: the preset's; classic: 40,000]")


def test_a_round_line_shows_every_tuned_value_in_79_columns():
    from types import SimpleNamespace

    from metapbt.cli._common import round_line

    config = {"lr": 1e-5, "lambda": 0.9734, "clip": 0.2134, "ent_coef": 1.234e-3}
    nan = float("nan")

    def line(rewards, seconds=12.3, step=600_000, round_=15):
        report = SimpleNamespace(
            round=round_,
            rounds=15,
            step=step,
            rewards=rewards,
            configs=[config] * len(rewards),
            seconds=seconds,
        )
        return round_line(report)

    extremes = [
        line([nan, -12345.67, -20000.0, nan], seconds=12345.6),
        line([14140.5, 1.0, nan, 3.0]),
        line([0.5, 21.25], step=40_000, round_=1),
    ]
    for text in extremes:
        assert len(text) <= 79 and text.startswith("round ") and "…" not in text, text
        assert all(f" {name}=" in text for name in ("lr", "lam", "clip", "ent")), text
        assert " lr=1e-5 lam=.973 clip=.213 ent=1.2e-3 " in text
    assert "round 15/15" in extremes[0] and "best -12346 " in extremes[0]
    assert "best 14140 " in extremes[1] and extremes[1].endswith("  12.3s")
    assert extremes[2].startswith("round  1/15  step  40k  best 21.2 ")  # step aligned
    diverged = line([nan, nan])
    assert "best nan" in diverged and "lr=" not in diverged and len(diverged) <= 79
    three = {"lr": 7.42e-4, "lambda": 0.973, "clip": 0.21}
    report = SimpleNamespace(round=2, rounds=15, step=80_000, rewards=[500.0], configs=[three])
    full = round_line(SimpleNamespace(**vars(report), seconds=1.5))
    assert full == "round  2/15  step  80,000  best 500.0  lr=7.4e-4 lam=.973 clip=.21  1.5s"


def assert_events_match_history(logdir, run_dir):
    """The run's TensorBoard rewards are its history's (one event file: a run in one go)."""
    [events] = read_dir(logdir)
    got = scalars(events)
    history = History.from_parquet(run_dir / "history.parquet").to_frame()
    for row in history.to_dict("records"):
        logged = got[f"reward/member_{row['member']}"][row["step"]]
        assert logged == pytest.approx(row["reward"], rel=1e-6)
    assert "tensorboard" not in json.loads((run_dir / "summary.json").read_text())


def test_run_writes_tensorboard_events_in_a_directory_named_as_the_run(tmp_path):
    tb = tmp_path / "tb"
    args = ["run", *TINY, "--out", str(tmp_path / "demo"), "--tensorboard", str(tb)]
    result = runner.invoke(app, args, terminal_width=200)
    assert result.exit_code == 0, result.output
    assert f"tensorboard --logdir {tb}" in " ".join(result.output.split())
    assert [p.name for p in tb.iterdir()] == ["demo"]
    assert_events_match_history(tb / "demo", tmp_path / "demo")


def test_run_resolves_its_configuration_once(tmp_path, monkeypatch):
    import metapbt.runs.batch
    import metapbt.runs.resolve

    real, calls = metapbt.runs.resolve.resolve, []

    def counting(config):
        calls.append(config)
        return real(config)

    monkeypatch.setattr(metapbt.runs.resolve, "resolve", counting)
    monkeypatch.setattr(metapbt.runs.batch, "resolve", counting)
    result = runner.invoke(app, ["run", *TINY, "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    # checked before anything is written, then trained as it was resolved
    assert len(calls) == 1
