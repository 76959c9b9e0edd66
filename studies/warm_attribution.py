"""What the warm start's lead is made of: the tables of docs/results/warm-start.md.

    bash studies/warm_attribution.sh        # runs the study, its report and the picks
    python studies/warm_attribution.py      # writes .../warm_attribution_report/attribution.md
    python studies/warm_attribution.py --seeds 5   # the study's first 5 seeds only

Read from the committed cells of ``studies/warm_attribution.toml``; only tasks where every method
has every seed done are counted (the header says how many), so the script can be run while the
study is still going and every table then covers the same finished tasks.

1. The reproduction's 8 methods under seeding per (seed, task), as
   ``studies/classic_control_repro.py`` computes them (per (task, round) the seed-averaged return
   of the best member, min-max normalised and ranked across the 8), beside the first run's
   values (5 seeds, every task of a seed from the same initial population) on the same tasks.
2. The ablations: ``pb2-star-warm`` against what the portfolio alone buys (``random-warm``),
   the portfolio with PBT's explore (``pbt-warm``), a high-``lr`` start without meta-data
   (``high-lr``), the cold start and the trust region cold and warm. Final and anytime IQM of
   each run's normalised return (min-max per task over every run of these methods), and
   ``P(pb2-star-warm > method)``, with stratified-bootstrap 95 % intervals; per env, the warm
   start against ``high-lr`` and ``random-warm`` (which env carries a difference?); then the
   group's mean rank per round (does a lead last to round 15?).
3. Per-env against pooled meta-data for the three meta methods: IQMs side by side and
   ``P(pooled > per-env)``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from classic_control_repro import PAPER, env_table, publish, round_table
from scipy.stats import spearmanr

from metapbt.analysis import compare, intervals
from metapbt.analysis.render import md_table
from metapbt.envs.contexts import split_task_id
from metapbt.studies.config import load_study
from metapbt.studies.results import load_results

HERE = Path(__file__).resolve().parent
STUDY = HERE / "warm_attribution.toml"
FIRST_RUN = HERE / "classic_control_repro.toml"
OUT = HERE / "results" / "warm_attribution_report" / "attribution.md"

REPRODUCTION = (
    "random",
    "pbt",
    "pb2",
    "pb2-star",
    "meta-prior",
    "multitask",
    "taf",
    "pb2-star-warm",
)
WARM = "pb2-star-warm"
ABLATIONS = ("random-warm", "pbt-warm", "high-lr", "pb2-star", "pb2-star-tr", "pb2-star-tr-warm")
META = ("meta-prior", "multitask", "taf")
POOLED = "-pooled"
PER_ENV = ("high-lr", "random-warm")
REPS = 2000


def complete_tasks(results: pd.DataFrame, methods: tuple[str, ...], seeds: int) -> list[str]:
    """Tasks where each of ``methods`` has ``seeds`` seeds with every round of the task."""
    rows = results[results["method"].isin(methods)]
    rounds = rows.groupby("task")["step"].nunique()
    per_run = rows.groupby(["task", "method", "seed"])["step"].nunique()
    whole = per_run[per_run == rounds.reindex(per_run.index.get_level_values("task")).to_numpy()]
    runs = whole.groupby(level=["task", "method"]).size()
    full = runs[runs == seeds].groupby(level="task").size()
    return sorted(full[full == len(methods)].index)


def restrict(results: pd.DataFrame, methods: tuple[str, ...], tasks: list[str]) -> pd.DataFrame:
    """The rows of ``methods`` on ``tasks``."""
    return results[results["method"].isin(methods) & results["task"].isin(tasks)]


def rank_table(
    avg: pd.DataFrame,
    ar: compare.AverageRanks,
    before: compare.AverageRanks | None,
    anytime: dict[str, np.ndarray],
) -> str:
    """Anytime and final-round ranks and the final normalised score, beside the first run's.

    ``avg`` is the seed-averaged results (:func:`compare.seed_average`), ``ar`` their average
    ranks; ``before`` the first run's average ranks on the same tasks, or None; ``anytime``
    each method's anytime scores per run (:func:`intervals.anytime_scores` over the same
    methods), whose IQM closes each row. The paper's anytime rank (its 20 tasks) is beside them.
    """
    norm = compare.normalised_scores(avg)
    final = norm[norm["step"] == norm["step"].max()].groupby("method")["normalised"].mean()
    rows = []
    for method in ar.order:
        row = [method, f"{ar.overall[method]:.2f}"]
        row += [f"{before.overall[method]:.2f}"] if before is not None else []
        row += [f"{PAPER[method][0]:.2f}", f"{ar.final[method]:.2f}", f"{final[method]:.2f}"]
        rows.append([*row, _iqm(anytime[method])])
    header = ["method", "anytime avg rank"]
    header += ["(first run, same tasks)"] if before is not None else []
    header += [
        "(paper, 20 tasks)",
        "final-round rank",
        "normalised at the final round",
        "anytime IQM per run",
    ]
    return md_table(header, rows)


KINDS = ("final", "anytime")


def paper_correlation(ar: compare.AverageRanks) -> float:
    """Spearman correlation of the 8 methods' anytime average ranks and the paper's."""
    methods = list(REPRODUCTION)
    ours = [ar.overall[m] for m in methods]
    return float(spearmanr(ours, [PAPER[m][0] for m in methods])[0])


def _scores(results: pd.DataFrame) -> dict[str, dict[str, np.ndarray]]:
    """Normalised final and anytime scores per method (:mod:`metapbt.analysis.intervals`)."""
    return {"final": intervals.final_scores(results), "anytime": intervals.anytime_scores(results)}


def _interval(value: intervals.Interval) -> str:
    return f"{value.value:.2f} [{value.low:.2f}, {value.high:.2f}]"


def _iqm(scores: np.ndarray) -> str:
    return _interval(intervals.bootstrap_interval(scores, reps=REPS))


def _better(x: np.ndarray, y: np.ndarray) -> str:
    """``P(X > Y)`` with its interval."""
    return _interval(intervals.improvement_interval(x, y, reps=REPS))


def ablation_table(results: pd.DataFrame) -> str:
    """IQMs of the warm start and each ablation, and P(warm > ablation), final and anytime."""
    scores = _scores(results)
    rows = []
    for method in (WARM, *ABLATIONS):
        row = [method, *(_iqm(scores[kind][method]) for kind in KINDS)]
        if method == WARM:
            row += ["", ""]
        else:
            row += [_better(scores[kind][WARM], scores[kind][method]) for kind in KINDS]
        rows.append(row)
    header = ["method", "final IQM", "anytime IQM"]
    header += [f"P({WARM} > method), {kind}" for kind in KINDS]
    return md_table(header, rows)


def env_breakdown(results: pd.DataFrame, against: tuple[str, ...] = PER_ENV) -> str:
    """Per env: anytime IQMs of the warm start and ``against``, and P(warm > each), both kinds.

    Each env's tasks are scored on their own (normalisation is per task, so a task's scores are
    the ones the ablation table uses); the intervals resample that env's 5 tasks only.
    """
    env = results["task"].map(lambda task: split_task_id(task)[0])
    rows = []
    for name in sorted(env.unique()):
        scores = _scores(results[env == name])
        row = [name, *(_iqm(scores["anytime"][m]) for m in (WARM, *against))]
        for method in against:
            row += [_better(scores[kind][WARM], scores[kind][method]) for kind in KINDS]
        rows.append(row)
    header = ["env", *(f"anytime IQM, {m}" for m in (WARM, *against))]
    header += [f"P({WARM} > {m}), {kind}" for m in against for kind in KINDS]
    return md_table(header, rows)


def pooling_table(results: pd.DataFrame) -> str:
    """Per meta method: IQMs on per-env and pooled meta-data, and P(pooled > per-env)."""
    scores = _scores(results)
    rows = []
    for method in META:
        pooled = method + POOLED
        row = [method]
        for kind in KINDS:
            by_kind = scores[kind]
            row += [_iqm(by_kind[method]), _iqm(by_kind[pooled])]
            row.append(_better(by_kind[pooled], by_kind[method]))
        rows.append(row)
    header = ["method"]
    for kind in KINDS:
        header += [f"{kind} IQM, per env", "pooled", f"P(pooled > per env), {kind}"]
    return md_table(header, rows)


def main() -> None:
    """Print the tables and write them to ``attribution.md`` beside the study's report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seeds", type=int, help="read the study's first N seeds (default: all)")
    study = load_study(STUDY)
    seeds = study.seed_list[: parser.parse_args().seeds]
    results = load_results(study, seeds).drop(columns="seconds")
    labels = tuple(m.label for m in study.method_specs)
    tasks = complete_tasks(results, labels, len(seeds))
    n_all = len({cell.task for cell in study.cells})
    if not tasks:
        raise SystemExit(f"no task has every method's {len(seeds)} seeds done yet")
    first = load_results(load_study(FIRST_RUN)).drop(columns="seconds")
    first = restrict(first, REPRODUCTION, tasks)
    before = None
    if first["task"].nunique() == len(tasks):
        before = compare.average_ranks(compare.ranks(compare.seed_average(first)))
    repro = restrict(results, REPRODUCTION, tasks)
    group = (WARM, *ABLATIONS)
    pooling = (*META, *(m + POOLED for m in META))
    repro_avg = compare.seed_average(repro)
    repro_ranks = compare.ranks(repro_avg)
    repro_average = compare.average_ranks(repro_ranks)
    ablation_ranks = compare.average_ranks(
        compare.ranks(compare.seed_average(restrict(results, group, tasks)))
    )
    text = "\n".join(
        [
            "# What the warm start's lead is made of",
            "",
            f"{len(tasks)} of {n_all} tasks complete ({', '.join(tasks)}), "
            f"{len(seeds)} seeds (0-{seeds[-1]}) under seeding per (seed, task), "
            f"{repro['step'].nunique()} rounds; generated by "
            "`python studies/warm_attribution.py`.",
            "",
            "## The reproduction's 8 methods",
            "",
            "Ranks across the 8 per (task, round) of seed-averaged returns, as the paper ranks; "
            "the first run (5 seeds, shared initial populations) on the same tasks beside them. "
            "The last column scores each run (min-max per task over the 8 methods' runs; IQM "
            "with its stratified-bootstrap 95 % interval).",
            "",
            rank_table(
                repro_avg,
                repro_average,
                before,
                intervals.anytime_scores(repro),
            ),
            "",
            f"Spearman correlation of these anytime ranks and the paper's: "
            f"{paper_correlation(repro_average):.2f}"
            + (
                f" (the first run's on the same tasks: {paper_correlation(before):.2f})."
                if before is not None
                else "."
            ),
            "",
            "### Mean rank over tasks per round",
            "",
            round_table(repro_average),
            "",
            "### Anytime average rank per environment",
            "",
            env_table(repro_ranks),
            "",
            "## Ablations: the portfolio, the explore step, a high-lr start",
            "",
            f"Each run's return min-max normalised per task over every run of these "
            f"{len(group)} methods; IQM and P(X > Y) with stratified-bootstrap 95 % intervals "
            f"({REPS} replicates). Final: at the last round; anytime: averaged over every round.",
            "",
            ablation_table(restrict(results, group, tasks)),
            "",
            "### Per environment: the warm start against a high-lr start and the portfolio held",
            "",
            env_breakdown(restrict(results, group, tasks)),
            "",
            "### Mean rank per round within this group",
            "",
            round_table(ablation_ranks),
            "",
            "## Meta-data per env against pooled over every env",
            "",
            "Per env: the target env's 4 other planets; pooled: the 19 other tasks of every env "
            "(as the paper pooled them), the RGPE weights deciding what transfers. Normalised "
            f"over every run of these {len(pooling)} methods.",
            "",
            pooling_table(restrict(results, pooling, tasks)),
            "",
        ]
    )
    publish(text, OUT)


if __name__ == "__main__":
    main()
