"""The warm-start attribution tables count only tasks that every method has finished."""

from __future__ import annotations

import itertools

import pandas as pd
import pytest


@pytest.fixture
def attribution(study_script):
    return study_script("warm_attribution")


def _results(tasks, methods, seeds, steps):
    rows = [
        {"task": t, "method": m, "seed": s, "step": k, "best": float(k)}
        for t, m, s, k in itertools.product(tasks, methods, seeds, steps)
    ]
    return pd.DataFrame(rows)


def test_a_task_counts_once_every_method_has_every_seeds_every_round(attribution):
    results = _results(["a", "b", "c"], ["x", "y"], [0, 1], [1, 2, 3])
    # b: one run stopped before its last round; c: one seed of y not started
    results = results[
        ~(
            (results["task"] == "b")
            & (results["seed"] == 1)
            & (results["step"] == 3)
            & (results["method"] == "x")
        )
    ]
    results = results[
        ~((results["task"] == "c") & (results["seed"] == 1) & (results["method"] == "y"))
    ]
    assert attribution.complete_tasks(results, ("x", "y"), 2) == ["a"]
    assert attribution.complete_tasks(results, ("x",), 2) == ["a", "c"]
    assert attribution.complete_tasks(results, ("x", "y", "z"), 2) == []


def test_the_study_file_holds_every_method_the_tables_read(attribution):
    from metapbt.studies.config import load_study

    labels = {m.label for m in load_study(attribution.STUDY).method_specs}
    wanted = {*attribution.REPRODUCTION, *attribution.ABLATIONS}
    wanted |= {m + attribution.POOLED for m in attribution.META}
    assert wanted <= labels


def test_the_env_breakdown_scores_each_env_on_its_own_tasks(attribution):
    warm, against = attribution.WARM, ("high-lr", "random-warm")
    tasks = ["a earth", "a mars", "b earth", "b mars"]
    results = _results(tasks, [warm, *against], [0, 1, 2], [1, 2])
    offset = {warm: 0.0, "high-lr": -1.0, "random-warm": 0.0}
    results["best"] += results["method"].map(offset) * results["seed"].map({0: 1, 1: 2, 2: 3})
    # on env b high-lr beats the warm start in every run instead
    on_b = results["task"].str.startswith("b") & (results["method"] == "high-lr")
    results.loc[on_b, "best"] += 10.0
    rows = attribution.env_breakdown(results, against).splitlines()[2:]
    cells = {row.split("|")[1].strip(): [c.strip() for c in row.split("|")[2:-1]] for row in rows}
    assert set(cells) == {"a", "b"}
    # columns: 3 anytime IQMs, then P(warm > high-lr) final / anytime, P(warm > random-warm) ...
    assert cells["a"][3:5] == ["1.00 [1.00, 1.00]"] * 2
    assert cells["b"][3:5] == ["0.00 [0.00, 0.00]"] * 2
    assert cells["a"][5:] == cells["b"][5:] == ["0.50 [0.50, 0.50]"] * 2


def test_the_paper_correlation_reads_each_methods_own_rank(attribution):
    from metapbt.analysis import compare

    paper = {m: attribution.PAPER[m][0] for m in attribution.REPRODUCTION}
    # one task, one step: ranks equal to the paper's order, then reversed
    avg = pd.DataFrame(
        {"task": "a", "step": 1, "method": list(paper), "score": [-r for r in paper.values()]}
    )
    same = compare.average_ranks(compare.ranks(avg))
    assert attribution.paper_correlation(same) == pytest.approx(1.0)
    reverse = compare.average_ranks(compare.ranks(avg.assign(score=-avg["score"])))
    assert attribution.paper_correlation(reverse) == pytest.approx(-1.0)
