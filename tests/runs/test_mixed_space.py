"""A mixed search space end to end: a run tunes an integer and categoricals in the engine,
writes them to its history and meta-data, and starts from a portfolio holding choices."""

import numpy as np
import pytest

from metapbt import Categorical, ConfigError, Float, History, Int, SearchSpace
from metapbt.metadata.store import MetaStore
from metapbt.population.portfolio import Candidate, Portfolio, ScoreMatrix
from metapbt.runs.run import RunConfig, run

SPACE = SearchSpace(
    {
        "lr": Float(1e-4, 1e-2, log=True),
        "epochs": Int(1, 4),
        "minibatches": Categorical((1, 2, 4)),
        "adv_norm": Categorical((True, False)),
    }
)
CONFIG = RunConfig(
    method="pb2-mix",
    preset="fast",
    budget=6000,
    interval=2000,
    population=3,
    space=SPACE.to_dict(),
)


def test_a_mixed_run_records_choices_and_its_meta_data(tmp_path):
    run(CONFIG.model_copy(update={"save_meta": str(tmp_path / "meta")}), tmp_path / "run")
    frame = History.from_parquet(tmp_path / "run" / "history.parquet").to_frame()
    assert set(frame["adv_norm"]) <= {True, False} and set(frame["minibatches"]) <= {1, 2, 4}
    assert frame["epochs"].between(1, 4).all()
    (task,) = MetaStore(tmp_path / "meta").tasks(SPACE.to_dict())
    column = task.hparams[:, SPACE.names.index("minibatches")]
    assert set(column) <= {0.0, 1.0, 2.0}  # a categorical's rows hold its choice's index


def test_a_portfolio_of_choices_warm_starts_a_mixed_run(tmp_path):
    entries = [
        {"lr": 1e-3, "epochs": 2, "minibatches": 4, "adv_norm": False},
        {"lr": 3e-3, "epochs": 1, "minibatches": 1, "adv_norm": True},
    ]
    candidates = tuple(
        Candidate(c, f"cart_pole {p}") for c, p in zip(entries, ("mars", "moon"), strict=True)
    )
    matrix = ScoreMatrix(candidates, ("cart_pole mars", "cart_pole moon"), np.eye(2))
    provenance = {"env": "cart_pole", "preset": "fast", "steps": 2000, "seeds": 1, "configs": 2}
    path = Portfolio(SPACE, candidates, matrix, None, provenance).save(tmp_path / "p.json")
    config = CONFIG.model_copy(update={"portfolio": str(path), "method": "pbt", "budget": 2000})
    run(config, tmp_path / "warm")
    frame = History.from_parquet(tmp_path / "warm" / "history.parquet").to_frame()
    first = frame[frame.step == 2000].sort_values("member")
    got = first[["lr", "epochs", "minibatches", "adv_norm"]].to_dict("records")[:2]
    assert got == [pytest.approx(e) for e in entries]


def test_a_space_the_engine_cannot_tune_is_refused_naming_it():
    bad = {**SPACE.to_dict(), "minibatches": {"type": "categorical", "choices": [3, 7]}}
    with pytest.raises(ConfigError, match="least common multiple 21"):
        RunConfig(space=bad, preset="fast")
    with pytest.raises(ConfigError, match="models numeric parameters only"):
        run(CONFIG.model_copy(update={"method": "pb2-star"}), "unused")
