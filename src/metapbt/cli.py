"""Command-line interface (``metapbt``). The only layer that prints."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import Progress
from rich.table import Table

from metapbt.errors import MetaPBTError
from metapbt.population import methods

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Population-based hyperparameter optimisation for RL.",
)
console = Console()


@contextmanager
def _user_errors() -> Iterator[None]:
    """Turn the package's errors into a one-line message and exit code 2 (no traceback)."""
    try:
        yield
    except MetaPBTError as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2) from None


@app.callback()
def _configure(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug messages.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False)],
    )


@app.command("methods")
def list_methods() -> None:
    """List the registered methods."""
    for name in methods.names():
        console.print(name)


@app.command()
def toy(
    method: Annotated[list[str], typer.Option(help="Method(s) to compare.")] = (
        "random",
        "pb2-star",
    ),
    seeds: Annotated[int, typer.Option(min=1, help="Seeds per method.")] = 3,
    size: Annotated[int, typer.Option(min=1, help="Population size.")] = 4,
    out: Annotated[Path | None, typer.Option(help="Write each run's history here.")] = None,
) -> None:
    """Run methods on the moving-optimum toy problem (no RL; seconds) and compare them."""
    from metapbt.toy import run_toy

    table = Table(title="moving-optimum toy: best final score (1.0 = always on the optimum)")
    for column in ("method", "mean", "min", "max"):
        table.add_column(column, justify="right" if column != "method" else "left")
    with _user_errors(), Progress(console=console, transient=True) as progress:
        task = progress.add_task("toy runs", total=len(method) * seeds)
        for name in method:
            finals = []
            for seed in range(seeds):
                progress.update(task, description=f"{name} seed {seed}")
                result = run_toy(name, seed, size=size)
                finals.append(result.final)
                if out is not None:
                    out.mkdir(parents=True, exist_ok=True)
                    result.population.history.to_parquet(out / f"{name}_seed{seed}.parquet")
                progress.advance(task)
            table.add_row(
                name, f"{np.mean(finals):.3f}", f"{min(finals):.3f}", f"{max(finals):.3f}"
            )
    console.print(table)


def _show(report: Any) -> None:
    """Print one finished round: best reward and every member's hyperparameters."""
    best = max((r for r in report.rewards if r == r), default=float("nan"))
    hps = "  ".join(
        "(" + ", ".join(f"{k}={v:.3g}" for k, v in c.items()) + f") {r:.1f}"
        for c, r in zip(report.configs, report.rewards, strict=True)
    )
    console.print(
        f"round {report.round:>2}/{report.rounds}  step {report.step:>8}  "
        f"best {best:8.2f}  [{report.seconds:5.1f}s]  [dim]{hps}[/dim]"
    )


@app.command("run")
def run_command(
    env: Annotated[str, typer.Option(help="Environment id (metapbt envs).")] = "cart_pole",
    context: Annotated[str, typer.Option(help="Planet or NAME=VALUE,...")] = "earth",
    method: Annotated[str, typer.Option(help="Method (metapbt methods).")] = "pb2-star",
    preset: Annotated[str, typer.Option(help="PPO preset: fast or paper.")] = "fast",
    population: Annotated[int, typer.Option(min=1, help="Population size.")] = 4,
    budget: Annotated[int, typer.Option(help="Environment steps per member.")] = 600_000,
    interval: Annotated[int, typer.Option(help="Steps per member between explores.")] = 40_000,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    out: Annotated[Path, typer.Option(help="Run directory.")] = Path("runs/demo"),
    resume: Annotated[bool, typer.Option(help="Continue a killed run in --out.")] = False,
    metadata: Annotated[
        str | None, typer.Option(help="Meta-data directory (meta methods; default: bundled).")
    ] = None,
    save_meta: Annotated[
        str | None, typer.Option(help="Append the finished run to this meta-data directory.")
    ] = None,
) -> None:
    """Train a PPO population on a contextual environment, exploring with a method."""
    from metapbt.engine.run import RunConfig, run

    with _user_errors():
        config = RunConfig(
            env,
            context,
            method,
            preset,
            population,
            budget,
            interval,
            seed,
            metadata=metadata,
            save_meta=save_meta,
        )
        summary = run(config, out, resume=resume, on_round=_show)
    console.print(
        f"final best reward {summary['final_best']:.2f} in {summary['wall_seconds']:.1f}s; "
        f"wrote {out}/history.parquet, summary.json, run.png"
    )


@app.command("envs")
def list_envs() -> None:
    """List the environments and their context features."""
    from metapbt import envs

    for name in envs.names():
        features = ", ".join(f"{k}={f.default}" for k, f in envs.spec(name).features.items())
        console.print(f"{name}: {features}")


metadata_app = typer.Typer(help="Build meta-data: previous runs on related tasks.")
app.add_typer(metadata_app, name="metadata")


@metadata_app.command("build")
def metadata_build(
    env: Annotated[str, typer.Option(help="Environment id.")] = "cart_pole",
    contexts: Annotated[
        str, typer.Option(help="'planets', or contexts separated by ';'.")
    ] = "planets",
    method: Annotated[str, typer.Option(help="Method of the stored runs.")] = "pb2",
    seeds: Annotated[int, typer.Option(min=1, help="Seeds per context.")] = 5,
    out: Annotated[Path, typer.Option(help="Meta-data directory.")] = Path("meta"),
    preset: Annotated[str, typer.Option(help="PPO preset.")] = "fast",
    population: Annotated[int, typer.Option(min=1)] = 4,
    budget: Annotated[int, typer.Option()] = 600_000,
    interval: Annotated[int, typer.Option()] = 40_000,
) -> None:
    """Run METHOD on every context x seed and store the runs (finished ones are skipped)."""
    import tempfile

    from metapbt.engine.run import RunConfig, run
    from metapbt.envs import PLANETS
    from metapbt.metadata.store import MetaStore

    names = list(PLANETS) if contexts == "planets" else [c for c in contexts.split(";") if c]
    cells = [(c, s) for c in names for s in range(seeds)]
    store = MetaStore(out)
    with (
        _user_errors(),
        tempfile.TemporaryDirectory() as tmp,
        Progress(console=console) as progress,
    ):
        task = progress.add_task("meta-data runs", total=len(cells))
        for context, seed in cells:
            config = RunConfig(
                env,
                context,
                method,
                preset,
                population,
                budget,
                interval,
                seed,
                save_meta=str(out),
            )
            progress.update(task, description=f"{config.task} seed {seed}")
            stored = store.path_for(config.task, method, seed)
            if not stored.exists():
                run(config, Path(tmp) / stored.relative_to(out))
            progress.advance(task)
    console.print(f"meta-data in {out}: {len(MetaStore(out).runs())} runs")


def main() -> None:
    """Entry point of the ``metapbt`` script."""
    app()
