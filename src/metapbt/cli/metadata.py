"""``metapbt metadata build``: previous runs on related tasks, stored for the meta methods."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from metapbt._atomic import ensure_writable
from metapbt.cli._common import (
    Budget,
    Interval,
    MixContexts,
    PopulationSize,
    Preset,
    Quantile,
    WatchdogOption,
    console,
    exit_on_failures,
    given_options,
    make_watchdog,
    show_cells_progress,
    user_errors,
)


def metadata_build(
    env: Annotated[
        str, typer.Option(help="Environment id or source (metapbt envs).")
    ] = "cart_pole",
    contexts: Annotated[
        str, typer.Option(help="'planets', 'grid:FEATURE', or contexts separated by ';'.")
    ] = "planets",
    method: Annotated[str, typer.Option(help="Method of the stored runs.")] = "pb2",
    seeds: Annotated[int, typer.Option(min=1, help="Seeds per context.")] = 5,
    out: Annotated[Path, typer.Option(help="Meta-data directory.")] = Path("meta"),
    agent: Annotated[str | None, typer.Option(help="The learner: ppo or dqn.")] = None,
    preset: Preset = None,
    population: PopulationSize = None,
    budget: Budget = None,
    interval: Interval = None,
    quantile: Quantile = None,
    runs: Annotated[
        Path | None, typer.Option(help="The runs' own files (default: OUT/.runs).")
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="Local worker processes.")] = 1,
    watchdog: WatchdogOption = True,
    mix_contexts: MixContexts = True,
) -> None:
    """Run METHOD on every context x seed and store the runs (finished ones are skipped)."""
    from metapbt.metadata.store import MetaStore
    from metapbt.studies import metadata_build as mb

    protocol = given_options(
        agent=agent,
        preset=preset,
        population=population,
        budget=budget,
        interval=interval,
        quantile=quantile,
    )
    with user_errors():
        study = mb.metadata_study(env, contexts, method, seeds, out, runs, **protocol)
        ensure_writable(out)
        results = show_cells_progress(
            study,
            mb.pending(study),
            lambda on_cell, on_round, on_batches: mb.build_metadata(
                study,
                workers,
                on_cell,
                on_round=on_round,
                on_batches=on_batches,
                watchdog=make_watchdog(watchdog),
                mix_contexts=mix_contexts,
            ),
        )
    console.print(f"meta-data in {out}: {len(MetaStore(out).runs())} runs")
    exit_on_failures(results, "meta-data runs")
