"""``metapbt portfolio candidates|evaluate|select``: a warm-start portfolio in three steps."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress
from rich.table import Table

from metapbt.cli._common import WatchdogOption, Workers, console, make_watchdog, user_errors
from metapbt.engine import presets


def _task_progress(progress: Progress, total: int, label: str) -> Any:
    task = progress.add_task(label, total=total)
    return lambda name: progress.update(task, advance=1, description=f"{label}: {name}")


def portfolio_candidates(
    out: Annotated[Path, typer.Option(help="Portfolio directory.")] = Path("pf"),
    env: Annotated[
        list[str] | None,
        typer.Option(help="Environment id; repeat it for a general portfolio across envs."),
    ] = None,
    contexts: Annotated[
        str, typer.Option(help="'planets', 'grid:FEATURE', or contexts separated by ';'.")
    ] = "planets",
    configs: Annotated[int, typer.Option(min=1, help="Random configurations per task.")] = 30,
    seeds: Annotated[int, typer.Option(min=1, help="Seeds per configuration.")] = 4,
    steps: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Steps per configuration and seed (default: 4 of the preset's sync intervals; "
            f"classic: {4 * presets.use('classic').interval:,}).",
        ),
    ] = None,
    best: Annotated[int, typer.Option(min=1, help="Candidates kept per task.")] = 2,
    preset: Annotated[str, typer.Option(help="The agent's preset.")] = "classic",
    seed: Annotated[int, typer.Option(help="Root seed.")] = 0,
    agent: Annotated[
        str, typer.Option(help="The learner the candidates are scored with: ppo or dqn.")
    ] = "ppo",
    workers: Workers = 1,
    watchdog: WatchdogOption = True,
) -> None:
    """Step 1: random search on every task; keep each task's best configurations."""
    from metapbt.studies import portfolio_build as pf

    with user_errors(), Progress(console=console) as progress:
        env_ids = env or ["cart_pole"]
        setup = pf.PortfolioSetup(
            env_ids[0] if len(env_ids) == 1 else tuple(env_ids),
            pf.parse_contexts(env_ids[0], contexts),
            configs,
            seeds,
            steps,
            best,
            preset,
            seed,
            agent,
        )
        on_task = _task_progress(progress, len(setup.tasks), "random search")
        found = pf.candidates(setup, out, workers, on_task, make_watchdog(watchdog))
    console.print(f"{len(found)} candidates from {len(setup.tasks)} tasks in {out}/candidates")


def portfolio_evaluate(
    root: Annotated[Path, typer.Argument(help="Portfolio directory (after step 1).")],
    workers: Workers = 1,
    watchdog: WatchdogOption = True,
) -> None:
    """Step 2: every candidate on every task (resumes; finished tasks are skipped)."""
    from metapbt.studies import portfolio_build as pf

    with user_errors(), Progress(console=console) as progress:
        setup, _ = pf.read_setup(root)
        on_task = _task_progress(progress, len(setup.tasks), "evaluation")
        matrix = pf.evaluate(root, workers, on_task, make_watchdog(watchdog))
    table = Table(title="seed-averaged final return (rows: candidates by source task)")
    table.add_column("source")
    for task in matrix.tasks:
        table.add_column(task, justify="right")
    for candidate, row in zip(matrix.candidates, matrix.scores, strict=True):
        table.add_row(candidate.source, *(f"{x:.1f}" for x in row))
    console.print(table)


def portfolio_select(
    root: Annotated[Path, typer.Argument(help="Portfolio directory (after step 2).")],
    size: Annotated[int, typer.Option(min=1, help="Entries in the portfolio.")] = 5,
    exclude: Annotated[
        str | None, typer.Option(help="Target task to leave out, e.g. 'cart_pole earth'.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Portfolio file.")] = None,
    env: Annotated[
        str | None,
        typer.Option(help="Cover only this env's tasks (of a general directory)."),
    ] = None,
) -> None:
    """Step 3: greedy coverage selection; writes the portfolio JSON and a heat map PNG."""
    from metapbt.studies import portfolio_build as pf

    with user_errors():
        chosen, path = pf.select_portfolio(root, size, exclude, out, env)
    for i, entry in enumerate(chosen.entries, start=1):
        values = ", ".join(f"{k}={v:.4g}" for k, v in entry.config.items())
        console.print(f"{i}. {values}  (from {entry.source})")
    console.print(f"wrote {path} and {path.with_suffix('.png')}")
