"""TensorBoard logging of a run: the event files read back against the run's own files."""

import json
import subprocess
import sys

import pytest
from tensorboardX.proto.event_pb2 import SessionLog
from tensorboardX.proto.layout_pb2 import Layout

from metapbt import ConfigError, History
from metapbt.runs.loggers import TensorBoardLogger
from metapbt.runs.run import RunConfig, run

from ..tensorboard_events import read_dir, scalars, texts

CONFIG = RunConfig(method="pbt", budget=4000, interval=2000, population=2, seed=1)


class KilledError(Exception):
    pass


def exploit_rows(text_by_step):
    """``{(step, member, donor)}`` from the exploit tables."""
    rows = set()
    for step, text in text_by_step.items():
        for line in text.splitlines()[2:]:  # after the header and the alignment row
            member, donor = (int(cell) for cell in line.strip("|").split("|")[:2])
            rows.add((step, member, donor))
    return rows


def test_a_killed_and_resumed_run_logs_every_round_as_its_history_records_it(tmp_path):
    out, tb = tmp_path / "run", tmp_path / "tb"

    def kill_after_one(report):
        if report.round == 1:
            raise KilledError

    with pytest.raises(KilledError):  # the batch closes the logger on the way out
        run(CONFIG, out, on_round=kill_after_one, loggers=[TensorBoardLogger(tb / "run")])
    summary = run(CONFIG, out, resume=True, loggers=[TensorBoardLogger(tb / "run")])

    first, second = read_dir(tb / "run")  # the resumed run adds a file
    starts = [e for e in second if e.session_log.status == SessionLog.START]
    assert [e.step for e in starts] == [4000]  # TensorBoard hides older events from there on
    assert {step for steps in scalars(first).values() for step in steps} == {2000}
    events = first + second
    got = scalars(events)

    history = History.from_parquet(out / "history.parquet")
    frame, names = history.to_frame(), history.space.names
    expected = {"population/best_reward", "population/exploits"}
    expected |= {f"reward/member_{m}" for m in (0, 1)}
    expected |= {f"hparam/{n}/member_{m}" for n in names for m in (0, 1)}
    assert set(got) == expected
    for row in frame.to_dict("records"):  # ("lambda" is a column: not an attribute)
        step, member = row["step"], row["member"]
        assert got[f"reward/member_{member}"][step] == pytest.approx(row["reward"], rel=1e-6)
        for name in names:
            logged = got[f"hparam/{name}/member_{member}"][step]
            assert logged == pytest.approx(row[name], rel=1e-6)
    best = {r["step"]: r["best"] for r in summary["best_per_round"]}
    assert got["population/best_reward"] == pytest.approx(best, rel=1e-6)

    clones = frame[frame.clone_source >= 0]
    assert len(clones) == 2  # one per round: the worse of two members clones the better
    assert set(zip(clones.step, clones.member, clones.clone_source, strict=True)) == exploit_rows(
        texts(events)["population/exploits/text_summary"]
    )
    counts = frame.groupby("step").clone_source.apply(lambda s: float((s >= 0).sum()))
    assert got["population/exploits"] == counts.to_dict()

    # every file draws the members on shared charts (TensorBoard's Custom Scalars tab)
    for file in (first, second):
        [layout] = [
            Layout.FromString(v.tensor.string_val[0])
            for e in file
            for v in e.summary.value
            if v.metadata.plugin_data.plugin_name == "custom_scalars"
        ]
        [category] = layout.category
        assert {chart.title for chart in category.chart} == {"reward", *names}


def test_logging_is_not_a_setting_of_the_run(tmp_path):
    run(CONFIG, tmp_path / "run", loggers=[TensorBoardLogger(tmp_path / "tb")])
    recorded = json.loads((tmp_path / "run" / "summary.json").read_text())
    settings = {k: v for k, v in recorded.items() if k in RunConfig.model_fields}
    assert settings == CONFIG.model_dump(mode="json")
    assert not {"tensorboard", "logging", "loggers"} & set(recorded)
    assert not any("tfevents" in p.name for p in (tmp_path / "run").iterdir())
    assert len(read_dir(tmp_path / "tb")) == 1


def test_a_missing_tensorboardx_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # import fails
    with pytest.raises(ConfigError, match=r"pip install 'metapbt\[tensorboard\]'"):
        TensorBoardLogger(tmp_path)


def test_importing_metapbt_imports_neither_tensorboardx_nor_distrax():
    code = (
        "import sys, metapbt, metapbt.runs.run, metapbt.runs.loggers, metapbt.studies.runner, "
        "metapbt.cli\nassert 'tensorboardX' not in sys.modules, 'imported'\n"
        # nor distrax (TensorFlow Probability's substrate: 0.6-0.9 s), until a policy runs
        "assert 'distrax' not in sys.modules, 'distrax imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
