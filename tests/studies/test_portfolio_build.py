"""The three portfolio steps and a warm-started run, end to end on a tiny budget."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from metapbt.cli import app
from metapbt.engine import presets
from metapbt.errors import ConfigError
from metapbt.population.portfolio import Portfolio
from metapbt.runs.run import RunConfig, run
from metapbt.studies import portfolio_build as pf

SETUP = pf.PortfolioSetup(
    env="cart_pole", contexts=("earth", "neptune"), configs=4, seeds=2, steps=2000, best=2
)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("pf")
    found = pf.candidates(SETUP, root)
    matrix = pf.evaluate(root)
    return root, found, matrix


def test_candidates_keep_the_best_per_task(built):
    root, found, _ = built
    assert [c.source for c in found] == ["cart_pole earth"] * 2 + ["cart_pole neptune"] * 2
    data = json.loads((root / "candidates" / "cart_pole__earth.json").read_text())
    assert len(data["configs"]) == 4 and np.shape(data["scores"]) == (4, 2)
    means = [m if m is not None else -np.inf for m in data["mean"]]
    assert means[data["best"][0]] == max(means)
    assert found[0].config == data["configs"][data["best"][0]]


def test_evaluation_matrix_is_candidates_by_tasks(built):
    _, found, matrix = built
    assert matrix.scores.shape == (4, 2)
    assert matrix.tasks == ("cart_pole earth", "cart_pole neptune")
    assert list(matrix.candidates) == found
    assert np.isfinite(matrix.scores).all() and (matrix.scores > 0).all()


def test_steps_resume_without_recomputing(built, monkeypatch):
    root, _, matrix = built

    def fail(*args, **kwargs):
        raise AssertionError("a finished task was recomputed")

    monkeypatch.setattr(pf, "score_configs", fail)
    assert pf.candidates(SETUP, root) == list(matrix.candidates)
    np.testing.assert_array_equal(pf.evaluate(root).scores, matrix.scores)


def test_a_killed_evaluation_recomputes_only_the_missing_task(built, tmp_path, monkeypatch):
    root, _, matrix = built
    copy = tmp_path / "copy"
    for path in root.rglob("*.json"):
        target = copy / path.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text())
    (copy / "evaluation" / "cart_pole__neptune.json").unlink()
    calls = []

    def fake(env, context, configs, seeds, *args, **kwargs):
        calls.append(context)
        return np.full((len(configs), seeds), 7.0)

    monkeypatch.setattr(pf, "score_configs", fake)
    with pytest.raises(ConfigError, match="evaluation missing"):
        pf.load_matrix(copy)
    got = pf.evaluate(copy)
    assert calls == ["neptune"]
    np.testing.assert_array_equal(got.scores[:, 0], matrix.scores[:, 0])
    np.testing.assert_array_equal(got.scores[:, 1], 7.0)


def test_other_settings_in_the_same_directory_are_refused(built):
    root, _, _ = built
    with pytest.raises(ConfigError, match="holds a portfolio built with"):
        pf.candidates(pf.PortfolioSetup(env="cart_pole", contexts=("earth",)), root)


def test_setup_validation(caplog):
    with pytest.raises(ConfigError, match="multiple of"):
        pf.PortfolioSetup(contexts=("earth",), steps=1500)
    with pytest.raises(ConfigError, match="best"):
        pf.PortfolioSetup(contexts=("earth",), configs=2, best=3)
    with pytest.raises(ConfigError, match="duplicate"):
        pf.PortfolioSetup(contexts=("earth", "earth"))
    assert pf.PortfolioSetup().steps == 160_000  # four of classic's 40k intervals
    robots = pf.PortfolioSetup(env=("hopper", "walker2d"), preset="brax-paper")
    assert robots.steps == 800_000 and robots == pf.PortfolioSetup(
        env=("hopper", "walker2d"), preset="brax-paper", steps=800_000
    )
    presets.warn_unsuited.cache_clear()
    pf.PortfolioSetup(env="hopper")  # classic on a robot: trains, with a warning
    assert "not meant for hopper" in caplog.text
    assert pf.parse_contexts("cart_pole", "planets")[0] == "uranus"
    assert pf.parse_contexts("cart_pole", "earth; gravity=12") == ("earth", "gravity=12")
    assert len(pf.parse_contexts("cart_pole", "grid:length")) == 22


def test_select_and_warm_started_run_through_the_cli(built, tmp_path):
    root, _, _ = built
    out = tmp_path / "portfolio.json"
    result = CliRunner().invoke(
        app,
        [
            "portfolio",
            "select",
            str(root),
            "--size",
            "2",
            "--exclude",
            "cart_pole earth",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert out.with_suffix(".png").stat().st_size > 0
    portfolio = Portfolio.load(out)
    assert all(c.source == "cart_pole neptune" for c in portfolio.entries)
    assert portfolio.matrix.tasks == ("cart_pole neptune",)

    config = RunConfig(
        context="earth", population=3, budget=4000, interval=2000, portfolio=str(out)
    )
    run(config, tmp_path / "warm")
    history = pd.read_parquet(tmp_path / "warm" / "history.parquet")
    first = history[history["step"] == 2000].sort_values("member")
    for member, entry in enumerate(portfolio.configs):
        row = first.iloc[member]
        assert {k: row[k] for k in entry} == pytest.approx(entry)
    summary = json.loads((tmp_path / "warm" / "summary.json").read_text())
    assert summary["portfolio"] == str(out)


def test_cli_reports_missing_steps(tmp_path):
    result = CliRunner().invoke(app, ["portfolio", "select", str(tmp_path)])
    assert result.exit_code == 2
    assert "no setup.json" in result.output


def test_general_portfolio_across_envs_and_per_env_selection(tmp_path, monkeypatch):
    setup = pf.PortfolioSetup(
        env=("cart_pole", "pendulum"),
        contexts=("earth", "neptune"),
        configs=3,
        seeds=1,
        steps=2000,
        best=1,
    )
    assert setup.tasks == [
        "cart_pole earth",
        "cart_pole neptune",
        "pendulum earth",
        "pendulum neptune",
    ]
    scored = []

    def fake(env, context, configs, seeds, *args, **kwargs):
        scored.append((env, context))
        lrs = np.array([c["lr"] for c in configs])
        # cart_pole likes large lr, pendulum small: the two envs' candidates differ.
        score = 1e3 * lrs if env == "cart_pole" else -1e3 * lrs
        return np.repeat(score[:, None], seeds, axis=1)

    monkeypatch.setattr(pf, "score_configs", fake)
    pf.candidates(setup, tmp_path)
    matrix = pf.evaluate(tmp_path)
    assert scored[:4] == [
        ("cart_pole", "earth"),
        ("cart_pole", "neptune"),
        ("pendulum", "earth"),
        ("pendulum", "neptune"),
    ]
    assert matrix.scores.shape == (4, 4)
    assert pf.read_setup(tmp_path)[0] == setup  # the env tuple survives JSON

    chosen, path = pf.select_portfolio(
        tmp_path, 2, exclude="pendulum earth", out=tmp_path / "p.json", env="pendulum"
    )
    assert chosen.matrix.tasks == ("pendulum neptune",)
    sources = [c.source for c in chosen.matrix.candidates]
    assert "pendulum earth" not in sources and "cart_pole earth" in sources
    assert chosen.entries[0].source == "pendulum neptune"  # the best on the covered task
    assert Portfolio.load(path).provenance["covers"] == "pendulum"
    general, _ = pf.select_portfolio(tmp_path, 2, exclude="pendulum earth", out=tmp_path / "g.json")
    assert len(general.matrix.tasks) == 3
    with pytest.raises(ConfigError, match="no tasks of 'acrobot'"):
        pf.select_portfolio(tmp_path, 2, env="acrobot")
    with pytest.raises(ConfigError, match="distinct"):
        pf.PortfolioSetup(env=("cart_pole", "cart_pole"), contexts=("earth",))


def test_a_dqn_portfolio_is_scored_by_dqn_and_refused_by_a_ppo_run(tmp_path):
    setup = pf.PortfolioSetup(
        env="cart_pole",
        contexts=("earth", "neptune"),
        configs=2,
        seeds=1,
        steps=200,
        best=1,
        agent="dqn",
    )
    assert setup.preset == "classic" and pf.PortfolioSetup(agent="dqn").steps == 40_000
    found = pf.candidates(setup, tmp_path / "pf")
    assert set(found[0].config) == {"lr", "tau", "gamma", "eps_final"}  # DQN's space
    pf.evaluate(tmp_path / "pf")
    portfolio, path = pf.select_portfolio(
        tmp_path / "pf", size=1, exclude="cart_pole earth", out=tmp_path / "dqn.json"
    )
    assert portfolio.provenance["agent"] == "dqn"
    common = {"context": "earth", "population": 2, "budget": 200, "interval": 100}
    run(RunConfig(agent="dqn", portfolio=str(path), **common), tmp_path / "dqn_run")
    with pytest.raises(ConfigError, match="scored with the dqn agent, this run trains ppo"):
        run(
            RunConfig(portfolio=str(path), **{**common, "budget": 4000, "interval": 2000}),
            tmp_path / "ppo_run",
        )
