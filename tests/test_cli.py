from typer.testing import CliRunner

from metapbt.cli import app

runner = CliRunner()
TINY = ["--budget", "4000", "--interval", "2000", "--population", "2"]


def test_run_writes_outputs_and_bad_input_exits_2(tmp_path):
    result = runner.invoke(app, ["run", *TINY, "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert "round  2/2" in result.output and "final best reward" in result.output
    for name in ("history.parquet", "summary.json", "run.png", "checkpoint.msgpack"):
        assert (tmp_path / "r" / name).exists()
    bad = runner.invoke(app, ["run", "--context", "mars", "--out", str(tmp_path / "b")])
    assert bad.exit_code == 2 and "neither a planet" in bad.output


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
