"""Bad input at every door: each command, given wrong types, out-of-range values, unknown names,
missing files and unwritable paths, stops with a one-line named error (no traceback), before
any training, and leaves no output behind."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from metapbt.cli import app
from tests.outputs import tree

MINIMAL_STUDY = """
name = "s"
methods = ["random"]
[protocol]
preset = "fast"
population = 2
budget = 4000
interval = 2000
[[tasks]]
env = "cart_pole"
"""
RUN = ["run", "--no-watchdog", "--budget", "4000", "--interval", "2000", "--preset", "fast"]

CASES = [
    # metapbt run
    ([*RUN, "--population", "0"], "population"),
    ([*RUN, "--population", "many"], "--population': Input should be a valid integer"),
    (["run", "--budget", "-5"], "budget"),
    (["run", "--budget", "5000", "--interval", "2000"], "multiple"),
    ([*RUN, "--quantile", "0.9"], "quantile"),
    ([*RUN, "--method", "nosuch"], "unknown method 'nosuch'"),
    ([*RUN, "--env", "nosuch"], "unknown env 'nosuch'"),
    ([*RUN, "--context", "pluto"], "pluto"),
    ([*RUN, "--context", "gravity=abc"], "gravity"),
    ([*RUN, "--preset", "nosuch"], "nosuch"),
    ([*RUN, "--agent", "nosuch"], "nosuch"),
    (["run", "--agent", "dqn", "--env", "pendulum"], "discrete actions only"),
    ([*RUN, "--seeds", "a,b"], "seeds"),
    ([*RUN, "--seeds", "0,0"], "once"),
    ([*RUN, "--space", "lr=log:1e-3:1e-5"], "low < high"),
    ([*RUN, "--space", "nosuch=0:1"], "nosuch"),
    ([*RUN, "--init-range", "lr=1:2"], "lr"),
    ([*RUN, "--method", "meta-prior", "--metadata", "{tmp}/missing"], "missing"),
    ([*RUN, "--portfolio", "{tmp}/missing.json"], "does not exist"),
    ([*RUN, "--out", "{tmp}/a_file/run"], "cannot write to"),
    # metapbt toy / envs
    (["toy", "--method", "nosuch"], "unknown method 'nosuch'"),
    (["toy", "--size", "0"], "size"),
    (["envs", "--env", "nosuch"], "unknown env 'nosuch'"),
    # metapbt calibrate
    (["calibrate", "--env", "nosuch", "--out", "{tmp}/cal"], "unknown env 'nosuch'"),
    (["calibrate", "--configs", "1", "--out", "{tmp}/cal"], "configs"),
    (["calibrate", "--budget", "0", "--out", "{tmp}/cal"], "budget"),
    (["calibrate", "--agent", "dqn", "--preset", "box2d", "--out", "{tmp}/cal"], "box2d"),
    (["calibrate", "--out", "{tmp}/a_file/cal", "--configs", "2"], "cannot write to"),
    # metapbt metadata build
    (["metadata", "build", "--env", "nosuch", "--out", "{tmp}/m"], "unknown env 'nosuch'"),
    (["metadata", "build", "--seeds", "0", "--out", "{tmp}/m"], "seeds"),
    (["metadata", "build", "--contexts", "pluto", "--out", "{tmp}/m"], "pluto"),
    (["metadata", "build", "--out", "{tmp}/a_file/m"], "cannot write to"),
    # metapbt portfolio
    (["portfolio", "candidates", "--env", "nosuch", "--out", "{tmp}/pf"], "nosuch"),
    (["portfolio", "candidates", "--configs", "0", "--out", "{tmp}/pf"], "configs"),
    (["portfolio", "candidates", "--best", "5", "--configs", "2", "--out", "{tmp}/pf"], "best"),
    (["portfolio", "evaluate", "{tmp}/missing"], "not a portfolio directory"),
    (["portfolio", "select", "{tmp}/missing"], "not a portfolio directory"),
    # metapbt study
    (["study", "list", "{tmp}/missing.toml"], "does not exist"),
    (["study", "run", "{tmp}/broken.toml", "--no-watchdog"], "not valid TOML"),
    (["study", "run", "{tmp}/study.toml", "--workers", "0"], "workers"),
    (["study", "run", "{tmp}/study.toml", "--first-seeds", "0"], "first-seeds"),
    (["study", "report", "{tmp}/study.toml", "--out", "{tmp}/report"], "no finished cells"),
]


@pytest.mark.parametrize(
    ("args", "match"),
    CASES,
    ids=[f"{i}:{' '.join(a[:1] + a[-2:])}" for i, (a, _) in enumerate(CASES)],
)
def test_bad_input_is_one_named_line_and_leaves_nothing(tmp_path, monkeypatch, args, match):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file").write_text("a file where a directory is expected")
    (tmp_path / "study.toml").write_text(MINIMAL_STUDY)
    (tmp_path / "broken.toml").write_text("name = [unclosed")
    before = tree(tmp_path)
    result = CliRunner().invoke(app, [a.replace("{tmp}", str(tmp_path)) for a in args])
    output = " ".join(result.output.replace("│", " ").split())  # rich wraps and boxes lines
    assert result.exit_code != 0, output
    assert "Traceback" not in result.output and not isinstance(
        result.exception, AssertionError | TypeError | KeyError | AttributeError
    ), output
    assert match.lower() in output.lower(), output
    assert tree(tmp_path) == before, f"partial output left behind: {tree(tmp_path)}"
