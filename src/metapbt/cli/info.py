"""``metapbt methods``, ``metapbt envs`` and ``metapbt toy``: what there is, and a quick look."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.progress import Progress
from rich.table import Table

from metapbt.cli._common import console, user_errors
from metapbt.population import methods


def list_methods() -> None:
    """List the registered methods."""
    for name in methods.names():
        console.print(name)


def toy(
    method: Annotated[list[str], typer.Option(help="Method(s) to compare.")] = (  # type: ignore[assignment]  # typer's repeatable option; a tuple is never mutated
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
    with user_errors(), Progress(console=console, transient=True) as progress:
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


def list_envs(
    env: Annotated[
        str | None,
        typer.Option(help="Show one environment (any id or source) and its context features."),
    ] = None,
) -> None:
    """List the registered environments and their context features, then the other sources."""
    from metapbt import envs
    from metapbt.envs.sources import SOURCES_HELP

    if env is not None:
        with user_errors():
            describe_env(env)
        return
    for name in envs.names():
        features = ", ".join(f"{k}={f.default}" for k, f in envs.spec(name).features.items())
        console.print(f"{name}: {features}", highlight=False)
    console.print(
        f"\nAlso any of: {SOURCES_HELP}. `metapbt envs --env ID` shows one env's features "
        "and the agents that train it (ppo: every env; dqn: discrete actions).",
        highlight=False,
    )


def describe_env(env_id: str) -> None:
    """Show one environment: where it steps, its preset and its context features."""
    from metapbt import envs
    from metapbt.engine import agents, presets

    spec = envs.spec(env_id)
    console.print(
        f"{env_id}: steps {'in JAX' if spec.trainer == 'jax' else 'on the host'}, "
        f"family {spec.family}, default preset {presets.for_env(env_id)[0]!r}, "
        f"agents {', '.join(agents.for_env(env_id))}",
        highlight=False,
    )
    for name, f in spec.features.items():
        bounds = f"[{f.low}, {f.high}]" if f.bounded else "unbounded"
        kind = "int" if f.integer else "float"
        console.print(f"  {name} = {f.default:g} ({kind}, {bounds}) {f.doc}", highlight=False)
    if not spec.features:
        console.print("  no context features", highlight=False)
