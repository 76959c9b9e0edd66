"""Study execution: states, failures and retries, resume after a kill, Ray, the report."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from metapbt.errors import ConfigError
from metapbt.population.history import History
from metapbt.runs import batch as engine_batch
from metapbt.runs.checkpoint import Checkpoint
from metapbt.studies import runner
from metapbt.studies.config import load_study
from metapbt.studies.results import load_results

from ..outputs import write_finished
from ..tensorboard_events import read_dir, scalars

STUDIES = Path(__file__).resolve().parents[2] / "studies"

TINY = """
name = "tiny"
methods = {methods}
seeds = {seeds}
[protocol]
population = 2
budget = 4000
interval = 2000
[[tasks]]
env = "cart_pole"
contexts = ["earth"]
"""


def _study(tmp_path, methods='["random"]', seeds=2):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY.format(methods=methods, seeds=seeds))
    return path


def _fake_run(calls, fail=()):
    """A stand-in for engine.batch.run_batch: writes summaries like the real one, or fails."""

    def fake(jobs, on_round=None, raise_errors=False):
        results = []
        for job in jobs:
            config = job.config
            calls.append((config.method, config.seed, job.resume))
            if (config.method, config.seed) in fail:
                try:  # as run_batch returns them: raised, with a traceback
                    raise FloatingPointError("the agent diverged")
                except FloatingPointError as err:
                    results.append(err)
                continue
            results.append(write_finished(job.out, config, [10.0 + config.seed]))
        return results

    return fake


def test_a_failing_cell_is_recorded_does_not_stop_the_study_and_is_retried(tmp_path, monkeypatch):
    study = load_study(_study(tmp_path, methods='["random", "pbt"]'))
    calls = []
    monkeypatch.setattr(engine_batch, "run_batch", _fake_run(calls, fail={("pbt", 0)}))
    results = runner.run_study(study)
    assert [r.state for r in results] == ["done", "done", "failed", "done"]
    error = json.loads(
        (study.results_dir / "pbt__cart_pole__earth__seed0" / "error.json").read_text()
    )
    assert "diverged" in error["error"] and "Traceback" in error["traceback"]
    assert runner.states(study)["pbt__cart_pole__earth__seed0"] == "failed"

    calls.clear()
    monkeypatch.setattr(engine_batch, "run_batch", _fake_run(calls))
    again = runner.run_study(study)
    assert calls == [("pbt", 0, False)]  # only the failed cell
    assert [r.state for r in again] == ["done"]
    assert not (study.results_dir / "pbt__cart_pole__earth__seed0" / "error.json").exists()
    assert set(runner.states(study).values()) == {"done"}
    assert len(load_results(study)) == 4
    second = load_results(study, seeds=[1])
    assert len(second) == 2 and set(second["seed"]) == {1}


def test_results_of_other_settings_are_never_overwritten(tmp_path, monkeypatch):
    path = _study(tmp_path)
    monkeypatch.setattr(engine_batch, "run_batch", _fake_run([]))
    runner.run_study(load_study(path))
    path.write_text(path.read_text().replace("population = 2", "population = 3"))
    changed = load_study(path)
    assert set(runner.states(changed).values()) == {"stale"}
    with pytest.raises(ConfigError, match="other settings"):
        runner.run_study(changed)


def test_done_cells_are_found_from_any_working_directory(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    methods = '[{ label = "warm", method = "pb2-star", portfolio = "pf/{env}__{context}.json" }]'
    _study(tmp_path / "sub", methods=methods)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(engine_batch, "run_batch", _fake_run([]))
    runner.run_study(load_study("sub/tiny.toml"))  # records "sub/pf/cart_pole__earth.json"
    recorded = json.loads(
        (tmp_path / "sub/results/tiny/warm__cart_pole__earth__seed0/summary.json").read_text()
    )
    assert recorded["portfolio"] == "sub/pf/cart_pole__earth.json"
    for cwd, path in (
        (tmp_path, "sub/tiny.toml"),
        (tmp_path, tmp_path / "sub/tiny.toml"),
        (tmp_path / "sub/results", "../tiny.toml"),
    ):
        monkeypatch.chdir(cwd)
        assert set(runner.states(load_study(path)).values()) == {"done"}, path
    toml = tmp_path / "sub/tiny.toml"
    toml.write_text(toml.read_text().replace("pf/", "other/"))
    assert set(runner.states(load_study(toml)).values()) == {"stale"}


# 26 s cold. The default job covers its path without the real kill: only the cells not done
# run again (the failing-cell test above) and a killed child's batch resumes from its
# checkpoints to identical histories (tests/studies/test_watchdog.py); the slow job also
# kills `study run` at 20+ random instants (tests/studies/test_chaos.py).
@pytest.mark.slow
def test_killed_study_resumes_without_rerunning_finished_cells(tmp_path, monkeypatch):
    path = _study(tmp_path, seeds=3)
    study = load_study(path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "metapbt", "study", "run", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    first = runner.cell_dir(study, study.cells[0]) / "summary.json"
    deadline = time.time() + 240
    while not first.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert first.exists(), "the first cell never finished"
    before = runner.states(study)
    assert before[study.cells[0].id] == "done"
    kept = first.read_text()

    calls = []
    real_run = engine_batch.run_batch

    def counting(jobs, on_round=None, raise_errors=False):
        calls.extend(job.config.seed for job in jobs)
        return real_run(jobs, on_round=on_round, raise_errors=raise_errors)

    monkeypatch.setattr(engine_batch, "run_batch", counting)
    runner.run_study(study)
    assert 0 not in calls and sorted(calls) == [
        s for s in (1, 2) if before[f"random__cart_pole__earth__seed{s}"] != "done"
    ]
    assert first.read_text() == kept  # the finished cell's result is untouched
    assert set(runner.states(study).values()) == {"done"}


def test_the_beyond_the_portfolio_candidates_run_as_study_cells(tmp_path):
    # Patience and schedule transfer through the study layer, on the bundled CartPole meta-data
    # (recorded under another protocol: a warning, not an error).
    methods = '["pbt-patient", "schedule-replay", "schedule-pbt"]'
    study = load_study(_study(tmp_path, methods=methods, seeds=1))
    results = runner.run_study(study)
    assert sorted(r.state for r in results) == ["done"] * 3
    for cell in study.cells:
        folder = runner.cell_dir(study, cell)
        explorer = json.loads((folder / "summary.json").read_text())["explorer"]
        first = History.from_parquet(folder / "history.parquet").to_frame()
        first = first[first["step"] == first["step"].min()].sort_values("member")
        if cell.method.method == "pbt-patient":
            assert "kept" in explorer and "inner" in explorer
            continue
        # Every member started on its schedule's first configuration.
        starts = [s["configs"][0] for s in explorer["schedules"]]
        assert explorer["follows"] == [0, 1] or cell.method.method == "schedule-pbt"
        for (_, row), start in zip(first.iterrows(), starts, strict=True):
            assert {k: row[k] for k in start} == pytest.approx(start)


@pytest.mark.slow  # Ray runs cells: also test_ray_worker_death.py; the adapter: test_ray_tune.py
def test_two_cells_through_ray_on_a_local_instance(tmp_path):
    ray = pytest.importorskip("ray")
    study = load_study(_study(tmp_path))
    try:
        results = runner.run_study(study, ray="auto")
    finally:
        ray.shutdown()
    assert sorted(r.state for r in results) == ["done", "done"]
    assert set(runner.states(study).values()) == {"done"}
    frame = load_results(study)
    assert sorted(frame["seed"].unique()) == [0, 1]


def test_smoke_study_runs_and_reports(tmp_path):
    from typer.testing import CliRunner

    from metapbt.cli import app

    source = (STUDIES / "smoke.toml").read_text()
    path = tmp_path / "smoke.toml"
    path.write_text(source)
    cli = CliRunner()
    result = cli.invoke(app, ["study", "run", str(path), "--workers", "2", "--first-seeds", "1"])
    assert result.exit_code == 0, result.output
    done = {p.parent.name for p in (tmp_path / "results" / "smoke").glob("*/summary.json")}
    assert len(done) == 6 and all(name.endswith("__seed0") for name in done)
    result = cli.invoke(app, ["study", "run", str(path), "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert "6 cells done" in result.output  # only the second seed's
    listed = cli.invoke(app, ["study", "list", str(path)])
    assert "12 cells (12 done)" in listed.output
    report = tmp_path / "report"
    result = cli.invoke(app, ["study", "report", str(path), "--out", str(report)])
    assert result.exit_code == 0, result.output
    text = (report / "report.md").read_text()
    for name in ("normalised.png", "ranks.png", "critical_difference.png"):
        assert (report / name).stat().st_size > 0 and name in text
    assert len(list((report / "curves").glob("*.png"))) == 2
    assert len(list((report / "schedules").glob("*.png"))) == 3
    assert ", 2 seeds," in text
    first = tmp_path / "first"
    args = ["study", "report", str(path), "--out", str(first), "--first-seeds", "1"]
    result = cli.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert ", 1 seeds," in (first / "report.md").read_text()
    names = [p.name for p in (first / "schedules").glob("*.png")]
    assert len(names) == 3 and all("seed0" in name for name in names)


def test_cells_are_planned_in_batches_by_env_protocol_and_finished_rounds(tmp_path, monkeypatch):
    path = _study(tmp_path, methods='["random", "pbt"]', seeds=3)
    path.write_text(path.read_text() + '[[tasks]]\nenv = "acrobot"\ncontexts = ["earth"]\n')
    study = load_study(path)
    cells = study.cells
    by_env = {env: [c.id for c in cells if c.env == env] for env in ("cart_pole", "acrobot")}
    batches = [[c.id for c in b] for b in runner.plan_batches(study, cells)]
    assert sorted(batches) == sorted(by_env.values())  # one batch per env (auto: up to 32 runs)
    assert [len(b) for b in runner.plan_batches(study, cells, batch=4)] == [3, 3, 3, 3]
    assert all(len(b) == 1 for b in runner.plan_batches(study, cells, batch=1))
    # an unreadable checkpoint will be set aside: its cell plans as a fresh one
    odd = runner.cell_dir(study, cells[0])
    odd.mkdir(parents=True)
    (odd / "checkpoint.msgpack").write_bytes(b"not a checkpoint")
    assert sorted(len(b) for b in runner.plan_batches(study, cells)) == [6, 6]
    # a cell with another number of finished rounds waits apart
    rounds = Checkpoint.finished_rounds
    monkeypatch.setattr(
        Checkpoint, "finished_rounds", lambda path: 2 if path.parent == odd else rounds(path)
    )
    planned = [[c.id for c in b] for b in runner.plan_batches(study, cells)]
    assert [cells[0].id] in planned and len(planned) == 3
    assert runner.auto_batch(4, "cpu") == 16 and runner.auto_batch(4, "gpu") == 256


def test_committed_reproduction_results_regenerate_the_committed_report(tmp_path):
    """All 800 cells of the committed study are found (from any working directory: the study
    is loaded by absolute path here) and its report's rank table comes out as committed."""
    from typer.testing import CliRunner

    from metapbt.cli import app

    study_file = STUDIES / "classic_control_repro.toml"
    assert set(runner.states(load_study(study_file)).values()) == {"done"}
    result = CliRunner().invoke(app, ["study", "report", str(study_file), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output

    def ranks(text: str) -> str:
        return text.split("## Ranks", 1)[1].split("## Critical difference", 1)[0]

    committed = STUDIES / "results" / "classic_control_repro_report" / "report.md"
    regenerated = (tmp_path / "report.md").read_text()
    assert regenerated.startswith("# Study classic_control_repro\n\n20 tasks, 8 methods, 5 seeds")
    assert ranks(regenerated) == ranks(committed.read_text())


def test_with_mixed_contexts_an_envs_contexts_share_a_batch(tmp_path):
    path = _study(tmp_path, methods='["random", "pbt"]', seeds=2)
    text = path.read_text().replace('contexts = ["earth"]', 'contexts = ["earth", "neptune"]')
    path.write_text(text + '[[tasks]]\nenv = "acrobot"\ncontexts = ["earth", "venus"]\n')
    study = load_study(path)
    plain = runner.plan_batches(study, study.cells)
    mixed = runner.plan_batches(study, study.cells, mix_contexts=True)
    assert sorted(len(b) for b in plain) == [4, 4, 4, 4]  # one env and context each
    assert sorted(len(b) for b in mixed) == [8, 8]  # one env each
    assert all(len({c.env for c in b}) == 1 for b in mixed)


def test_a_logged_cell_writes_its_events_and_stays_done_whatever_is_logged(tmp_path, monkeypatch):
    path = _study(tmp_path, methods='["pbt"]', seeds=1)
    tiny = path.read_text()
    path.write_text(tiny + '[logging]\ntensorboard = "tb"\n')
    study = load_study(path)
    assert [r.state for r in runner.run_study(study)] == ["done"]  # in this process
    [cell] = study.cells
    [events] = read_dir(tmp_path / "tb" / study.cell_name(cell))
    history = History.from_parquet(runner.cell_dir(study, cell) / "history.parquet").to_frame()
    got = scalars(events)
    for row in history.to_dict("records"):
        logged = got[f"reward/member_{row['member']}"][row["step"]]
        assert logged == pytest.approx(row["reward"], rel=1e-6)
    # logging is no setting of the runs: elsewhere or not at all, the cell is done
    path.write_text(tiny + '[logging]\ntensorboard = "elsewhere"\n')
    assert runner.states(load_study(path)) == {cell.id: "done"}
    path.write_text(tiny)
    assert runner.states(load_study(path)) == {cell.id: "done"}
    # without tensorboardX, a logged study is refused before any cell runs
    (tmp_path / "new").mkdir()
    fresh = _study(tmp_path / "new")
    fresh.write_text(fresh.read_text() + '[logging]\ntensorboard = "tb"\n')
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    with pytest.raises(ConfigError, match="metapbt\\[tensorboard\\]"):
        runner.run_study(load_study(fresh))
    assert not (tmp_path / "new" / "results").exists()
    # a worker without it (a Ray node) records its cells as failed instead of raising
    cell = load_study(fresh).cells[0]
    out = tmp_path / "worker" / cell.id
    [result] = runner.run_cells([cell.model_dump(mode="json")], [str(out)], tensorboard="tb")
    assert result.state == "failed" and "metapbt[tensorboard]" in result.error
    assert "metapbt[tensorboard]" in (out / "error.json").read_text()
