"""``metapbt study list|run|report``: grids of methods x tasks x seeds, run and compared."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from metapbt.cli._common import (
    MixContexts,
    StudyFile,
    WatchdogOption,
    console,
    exit_on_failures,
    make_watchdog,
    show_cells_progress,
    user_errors,
)


def study_list(file: StudyFile) -> None:
    """Show the study's cells and which are done."""
    from metapbt.studies import claims
    from metapbt.studies.config import load_study
    from metapbt.studies.states import cell_dir, states

    with user_errors():
        study = load_study(file)
        current = states(study)
    colour = {"done": "green", "failed": "red", "stale": "red", "partial": "yellow"}
    for cell in study.cells:
        state, folder = current[cell.id], cell_dir(study, cell)
        holder = claims.holder(folder)
        held = "" if holder is None else f"  [cyan]claimed by {holder.describe()}[/]"
        if holder is not None and claims.is_stale(folder):
            held += " [red](stale: the next runner takes it over)[/]"
        console.print(f"[{colour.get(state, 'dim')}]{state:8}[/] {cell.id}{held}")
    counts = {s: list(current.values()).count(s) for s in dict.fromkeys(current.values())}
    console.print(
        f"{study.name}: {len(current)} cells ("
        + ", ".join(f"{n} {s}" for s, n in counts.items())
        + f") in {study.results_dir}"
    )


def study_run(
    file: StudyFile,
    workers: Annotated[int, typer.Option(min=1, help="Local worker processes.")] = 1,
    ray: Annotated[
        str | None,
        typer.Option(
            help="Run batches as Ray tasks: 'auto' (running cluster or a local one) or an address."
        ),
    ] = None,
    batch: Annotated[
        int | None,
        typer.Option(min=1, help="Most runs trained together (default: sized to the device)."),
    ] = None,
    watchdog: WatchdogOption = True,
    mix_contexts: MixContexts = True,
    first_seeds: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Run only the cells of the study's first N seeds (a smaller study first, on "
            "every task; run again without it for the rest).",
        ),
    ] = None,
) -> None:
    """Run every cell that is not done yet (failed cells are retried), in batches.

    Several runners may share one study: each claims the batches it runs.
    """
    from metapbt.studies.config import load_study
    from metapbt.studies.runner import run_study
    from metapbt.studies.states import states

    with user_errors():
        study = load_study(file)
        seeds = set(study.seed_list[:first_seeds])
        cell_states = states(study)
        results = show_cells_progress(
            study,
            [c for c in study.cells if cell_states[c.id] != "done" and c.seed in seeds],
            lambda on_cell, on_round, on_batches: run_study(
                study,
                workers=workers,
                ray=ray,
                on_cell=on_cell,
                skip=lambda cell: cell.seed not in seeds,
                batch=batch,
                on_round=on_round if ray is None else None,
                on_batches=on_batches,
                watchdog=make_watchdog(watchdog),
                mix_contexts=mix_contexts,
            ),
        )
    count = {s: sum(r.state == s for r in results) for s in ("done", "failed", "claimed")}
    console.print(
        f"{count['done']} cells done, {count['failed']} failed this run"
        + (f", {count['claimed']} left to other runners" if count["claimed"] else "")
        + f"; results in {study.results_dir}"
        + ("; rerun the same command to retry the failed ones" if count["failed"] else "")
    )
    exit_on_failures(results, "cells")


def study_report(
    file: StudyFile,
    out: Annotated[Path, typer.Option(help="Report directory.")] = Path("report"),
    schedule: Annotated[
        list[str] | None,
        typer.Option(help="Cell id whose schedules to plot (repeatable; default: per method)."),
    ] = None,
    first_seeds: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Report only the study's first N seeds (the smaller study that "
            "`study run --first-seeds N` completes first, while the rest runs).",
        ),
    ] = None,
) -> None:
    """Normalised scores, ranks, critical differences and curves, as PNGs and report.md."""
    from metapbt.analysis.report import build_report
    from metapbt.envs.contexts import task_features
    from metapbt.studies.config import load_study
    from metapbt.studies.results import default_schedules, load_histories, load_results

    with user_errors():
        study = load_study(file)
        seeds = study.seed_list[:first_seeds]
        results = load_results(study, seeds)
        ids = schedule or list(study.report.schedules) or default_schedules(study, seeds)
        path = build_report(
            results.drop(columns="seconds"),
            out,
            histories=load_histories(study, ids),
            title=f"Study {study.name}",
            features={t: task_features(t) for t in results["task"].unique()},
            above=study.report.above,
        )
    console.print(f"wrote {path}")
