"""Command-line interface (``metapbt``), the only layer that prints: one module per command group.

Each module is a thin layer over library calls (`metapbt.runs`, `metapbt.studies`);
defaults come from the configuration classes. This module assembles the commands into one
`typer` application.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.logging import RichHandler

from metapbt import __version__, compile_cache
from metapbt.cli import calibrate, info, metadata, portfolio, run, study
from metapbt.cli._common import console

__all__ = ["app", "main"]


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"metapbt {__version__}")
        raise typer.Exit()


def _configure(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug messages.")] = False,
    cache: Annotated[
        bool,
        typer.Option(
            "--compile-cache/--no-compile-cache",
            help="Keep compiled programs on disk for the next command "
            "(~/.cache/metapbt/jax, or $METAPBT_COMPILE_CACHE).",
        ),
    ] = True,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,  # before the missing command is noticed
            help="Print metapbt's version and exit.",
        ),
    ] = False,
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False)],
    )
    if cache:
        compile_cache.enable()
    else:  # also for the processes this command starts (study cells)
        os.environ[compile_cache.ENV_VAR] = "off"


def _build() -> typer.Typer:
    """The ``metapbt`` application: every command, grouped as ``metapbt --help`` shows them."""
    root = typer.Typer(
        add_completion=False,
        no_args_is_help=True,
        help="Population-based hyperparameter optimisation for RL.",
    )
    root.callback()(_configure)
    root.command("methods")(info.list_methods)
    root.command("toy")(info.toy)
    root.command("run")(run.run_command)
    root.command("envs")(info.list_envs)
    groups: dict[str, tuple[str, dict[str, Callable[..., Any]]]] = {  # name: (help, commands)
        "metadata": (
            "Build meta-data: previous runs on related tasks.",
            {"build": metadata.metadata_build},
        ),
        "portfolio": (
            "Build a warm-start portfolio from related tasks (3 steps).",
            {
                "candidates": portfolio.portfolio_candidates,
                "evaluate": portfolio.portfolio_evaluate,
                "select": portfolio.portfolio_select,
            },
        ),
        "study": (
            "Studies: grids of methods x tasks x seeds, run and compared.",
            {"list": study.study_list, "run": study.study_run, "report": study.study_report},
        ),
    }
    for name, (text, commands) in groups.items():
        group = typer.Typer(help=text)
        for command, function in commands.items():
            group.command(command)(function)
        root.add_typer(group, name=name)
    root.command("calibrate")(calibrate.calibrate_command)
    return root


app = _build()


def main() -> None:
    """Entry point of the ``metapbt`` script."""
    app()
