import json
import shutil

import typer
from typer.testing import CliRunner

from metapbt.cli import app
from metapbt.runs.config import RunConfig

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


def test_every_run_config_field_is_a_run_option():
    command = typer.main.get_command(app).commands["run"]
    options = {param.name for param in command.params}
    assert set(RunConfig.model_fields) <= options


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
    assert again.exit_code == 0 and "2 runs" in again.output
    assert [f.stat().st_mtime_ns for f in files] == stamps
    # A run the store holds is finished even without the runs' own files.
    shutil.rmtree(tmp_path / "meta" / ".runs")
    third = runner.invoke(app, args)
    assert third.exit_code == 0 and "2 runs" in third.output
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
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "many")], terminal_width=200)
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (tmp_path / "many").iterdir())
    assert names == ["earth__seed0", "earth__seed1", "gravity=12__seed0", "gravity=12__seed1"]
    for name in names:
        summary = json.loads((tmp_path / "many" / name / "summary.json").read_text())
        assert summary["seed"] == int(name[-1])
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
