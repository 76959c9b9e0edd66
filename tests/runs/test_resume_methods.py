"""A killed run of a meta method, ``dkl``, a schedule or a patient method resumes exactly."""

import pandas as pd
import pytest

from metapbt.runs.run import RunConfig, run

TINY = {"budget": 8000, "interval": 2000, "population": 4, "seed": 1}


class KilledError(Exception):
    pass


def kill_after(rounds):
    def on_round(report):
        if report.round == rounds:
            raise KilledError

    return on_round


@pytest.fixture(scope="module")
def meta_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("meta")
    for context in ("neptune", "uranus"):
        config = RunConfig(method="pb2", context=context, save_meta=str(root), **TINY)
        run(config, root.parent / f"source-{context}")
    return root


SLOW = pytest.mark.slow  # the same resume path as meta-prior (GP bandit) or meta-dkl (network)


@pytest.mark.parametrize(
    "method",
    [
        "meta-prior",
        pytest.param("multitask", marks=SLOW),
        pytest.param("taf", marks=SLOW),
        pytest.param("dkl", marks=SLOW),
        pytest.param("meta-dkl", marks=SLOW),
        "schedule-pbt",  # its state: the chosen schedules and who follows which
        pytest.param("pb2-star-patient", marks=SLOW),  # the wrapped explorer's state inside
    ],
)
def test_killed_run_resumes_to_the_same_history(tmp_path, meta_store, method):
    meta = str(meta_store) if method not in ("dkl", "pb2-star-patient") else None
    config = RunConfig(method=method, metadata=meta, **TINY)
    run(config, tmp_path / "full")
    with pytest.raises(KilledError):
        run(config, tmp_path / "part", on_round=kill_after(2))
    run(config, tmp_path / "part", resume=True)
    full = pd.read_parquet(tmp_path / "full" / "history.parquet")
    resumed = pd.read_parquet(tmp_path / "part" / "history.parquet")
    pd.testing.assert_frame_equal(full, resumed)
