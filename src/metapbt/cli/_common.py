"""What every command shares: the console, error handling, options, progress lines."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from metapbt.engine import presets
from metapbt.engine.dqn_presets import DQN_PRESETS
from metapbt.errors import MetaPBTError
from metapbt.runs.config import RunConfig

console = Console()


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the package's errors into a one-line message and exit code 2 (no traceback)."""
    try:
        yield
    except MetaPBTError as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2) from None


def best_reward(rewards: list[float]) -> float:
    """The best finite reward of a round (NaN when every member diverged)."""
    return max((r for r in rewards if r == r), default=float("nan"))


def show_round(report: Any) -> None:
    """Print one finished round on one line (`round_line`)."""
    console.print(round_line(report), highlight=False)


SHORT_NAMES = {"lambda": "lam", "ent_coef": "ent"}
"""How a round line names a tuned hyperparameter (the others by their own names)."""


def round_line(report: Any, width: int = 79) -> str:
    """One finished round in at most ``width`` characters: step, best reward, its config, time.

    ``round  3/15  step 120,000  best 500.0  lr=7.4e-4 lam=.973 clip=.213  12.3s``: every tuned
    value of the best member, names shortened (`SHORT_NAMES`), numbers compact
    (`compact`). Only when the line is too long, the step is shortened (``120k``), then
    left out (the round number says where the run is); a line still too long (more tuned
    values than the engine's four) is cut with an ellipsis. When every member diverged, the
    best is ``nan`` and no config is shown.
    """
    best = best_reward(report.rewards)
    config = report.configs[report.rewards.index(best)] if best == best else {}
    values = " ".join(f"{SHORT_NAMES.get(k, k)}={compact(v)}" for k, v in config.items())
    reward = f"{best:.1f}" if abs(best) < 1000 else f"{best:.0f}"  # NaN: "nan"
    seconds = f"{report.seconds:.1f}s" if report.seconds < 100 else f"{report.seconds:.0f}s"
    head = f"round {report.round:>2}/{report.rounds}"
    end = report.step // max(report.round, 1) * report.rounds  # steps align with the last's
    exact, short = len(f"{end:,}"), len(count(end))
    for step in (f"  step {report.step:>{exact},}", f"  step {count(report.step):>{short}}", ""):
        line = f"{head}{step}  best {reward}" + (f"  {values}" if values else "")
        if len(line) + 2 + len(seconds) <= width:
            break
    return fit(line, f"  {seconds}", width)


def compact(value: float | str | bool) -> str:
    """A tuned value in few characters: 2-3 significant digits, no leading zero.

    Magnitudes below 0.01 or from 10,000 up in scientific notation with 2 digits; from 1000 to
    10,000 and whole numbers below 10,000 in full.

    Examples:
        ```pycon
        >>> values = (7.42e-4, 0.973, 0.2134, 1e-5, 12.34, 1234.5, 123456.0, 3.0)
        >>> [compact(x) for x in values]
        ['7.4e-4', '.973', '.213', '1e-5', '12.3', '1234', '1.2e5', '3']
        >>> compact(False)
        'off'

        ```
    """
    if isinstance(value, bool):  # a categorical's choice, as on/off
        return "on" if value else "off"
    if isinstance(value, str):  # a categorical's choice
        return value
    v = float(value)
    if not math.isfinite(v) or (v.is_integer() and abs(v) < 1e4):
        return f"{v:.0f}" if math.isfinite(v) else str(v)
    if 0.01 <= abs(v) < 999.5:
        text = f"{v:.3g}"
        return text.replace("0.", ".", 1) if text.lstrip("-").startswith("0.") else text
    if 999.5 <= abs(v) < 1e4:
        return f"{v:.0f}"
    mantissa, exponent = f"{v:.1e}".split("e")
    return f"{mantissa.removesuffix('.0')}e{int(exponent)}"


def count(steps: int) -> str:
    """A step count in at most 5 characters: ``4000``, ``41k``, ``600k``, ``1.02M``."""
    if steps < 10_000:
        return str(steps)
    if steps < 999_500:
        return f"{steps / 1e3:.3g}k"
    return f"{steps / 1e6:.3g}M"


def fit(line: str, tail: str, width: int = 79) -> str:
    """``line + tail``, ``line`` cut (with an ellipsis) to fit ``width`` characters."""
    room = width - len(tail)
    return (line if len(line) <= room else line[: room - 1] + "…") + tail


def option(field: str, text: str) -> Any:
    """An option that fills the run configuration's field ``field``; its default is the config's.

    ``field`` names a [`RunConfig`][metapbt.runs.config.RunConfig] field. ``budget`` and
    ``interval`` default to the preset's; the help names the default preset's.
    """
    default = RunConfig.model_fields[field].default
    if default is None and field in ("budget", "interval"):
        preset = RunConfig.model_fields["preset"].default
        default = f"the preset's; {preset}: {getattr(presets.use(preset), field):,}"
    # Escaped: rich would read "[default: ...]" as markup.
    return typer.Option(help=f"{text} \\[default: {default}]", show_default=False)


def given_options(**options: Any) -> dict[str, Any]:
    """The options the user gave (``None``: left to the config's default)."""
    return {name: value for name, value in options.items() if value is not None}


Preset = Annotated[
    str | None,
    typer.Option(
        help=f"The agent's preset (ppo: {', '.join(presets.PRESETS.names())}; dqn: "
        f"{', '.join(DQN_PRESETS.names())}). \\[default: the env's: classic; box2d for "
        "lunar_lander; brax-fast for a Brax robot; dqn: classic]",
        show_default=False,
    ),
]
PopulationSize = Annotated[int | None, option("population", "Population size.")]
Budget = Annotated[int | None, option("budget", "Environment steps per member.")]
Interval = Annotated[
    int | None, option("interval", "Steps per member between explores (a multiple of the batch).")
]
Quantile = Annotated[
    float | None, option("quantile", "Truncation quantile: bottom share that clones the top.")
]


WatchdogOption = Annotated[
    bool,
    typer.Option(
        "--watchdog/--no-watchdog",
        help="Run each batch in a watched child process: restarted from its checkpoints when "
        "no round finishes in 10x the slowest round (30 min for start-up), failed after 2 "
        "restarts. --no-watchdog runs in this process (--workers 1).",
    ),
]


MixContexts = Annotated[
    bool,
    typer.Option(
        "--mix-contexts/--one-context",
        help="Let the contexts of one classic-control env train in one batch (each member's "
        "context a traced value; identical results, 1.18x cells/h on 2 CPU cores).",
    ),
]


def make_watchdog(on: bool) -> Any:
    from metapbt.studies.watchdog import Watchdog

    return Watchdog() if on else None


StudyFile = Annotated[Path, typer.Argument(help="Study file (TOML), e.g. studies/smoke.toml.")]
Workers = Annotated[int, typer.Option(min=1, help="Tasks computed in parallel processes.")]


class CellsProgress:
    """What a command shows while a study's cells run: the callbacks the runner reports to.

    `run` hands ``execute(on_cell, on_round, on_batches)`` (the study runner with those
    callbacks, e.g. ``run_study``) this reporter's `planned` (the batches, before any runs),
    `round_done` (a cell's finished round) and `cell_done` (a cell's result). Each hook does
    nothing here; `ProgressBars` and `RoundLines` are the two views.
    """

    def run(self, execute: Callable[..., list[Any]]) -> list[Any]:
        """``execute(self.cell_done, self.round_done, self.planned)``: its results."""
        return execute(self.cell_done, self.round_done, self.planned)

    def planned(self, batches: list[list[Any]]) -> None:
        """The cells' batches, before any runs."""

    def round_done(self, cell_id: str, report: Any) -> None:
        """A cell's finished round (a ``RoundReport``)."""

    def cell_done(self, result: Any) -> None:
        """A cell's result (a ``CellResult``)."""


def show_cells_progress(study: Any, pending: list[Any], execute: Any) -> list[Any]:
    """Show the progress of ``execute(on_cell, on_round, on_batches)`` running ``pending`` cells.

    As `ProgressBars` (``metapbt study run``, ``metapbt metadata build``).
    """
    columns = (
        TextColumn("{task.description}"),
        BarColumn(bar_width=24),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as progress:
        return ProgressBars(progress, study, pending).run(execute)


class ProgressBars(CellsProgress):
    """A bar of cells and a bar of rounds (elapsed, ETA), and one line per finished cell.

    The rounds bar's label is a compact live view of the running batch (its size, round, best
    rewards).
    """

    def __init__(self, progress: Progress, study: Any, pending: list[Any]) -> None:
        self.progress = progress
        self.todo = len(pending)
        self.per_cell = {c.id: c.protocol.rounds for c in study.cells}  # a task may set its own
        self.cells = progress.add_task(f"{study.name}: cells", total=self.todo)
        total = sum(self.per_cell[c.id] for c in pending)
        self.rounds = progress.add_task("rounds", total=total)
        self.live: dict[str, float] = {}
        self.reported: dict[str, int] = {}

    def planned(self, batches: list[list[Any]]) -> None:
        sizes = sorted({len(b) for b in batches})
        self.progress.console.print(
            f"{self.todo} cells in {len(batches)} batches of {'/'.join(map(str, sizes))} runs"
        )

    def round_done(self, cell_id: str, report: Any) -> None:
        live = self.live
        live[cell_id] = best_reward(report.rewards)
        self.reported[cell_id] = self.reported.get(cell_id, 0) + 1
        if report.round == report.rounds:
            live.pop(cell_id, None)
        bests = sorted(v for v in live.values() if v == v)
        view = f"round {report.round}/{report.rounds} x{len(live) or 1} runs"
        if bests:
            view += f" best {bests[0]:.0f}..{bests[-1]:.0f}"
        self.progress.update(self.rounds, advance=1, description=view)

    def cell_done(self, result: Any) -> None:
        done = result.state == "done"
        note = f"best {result.final_best:.1f}" if done else result.error
        style = None if done else "cyan" if result.state == "claimed" else "red"
        line = fit(f"{result.state:6} {result.id}  {note}", "")
        self.progress.console.print(line, style=style, markup=False, highlight=False)
        self.progress.advance(self.cells)
        self.live.pop(result.id, None)
        # rounds not reported here: a resumed cell's earlier ones, another process's
        reported = self.reported.pop(result.id, 0)
        self.progress.advance(self.rounds, self.per_cell[result.id] - reported)


class RoundLines(CellsProgress):
    """One line per round of all the runs, every run's best (``metapbt run --seeds/--contexts``).

    ``round  3/15  step   120,000  best 500 498 12  12.3s``: the runs' bests in the order of
    ``names`` (cell id -> the run's name), the slowest run's seconds. A round is printed once a
    later round starts or a cell finishes (every run has reported it by then). Before any runs,
    one line per batch names the runs it trains together.
    """

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names
        self.pending: dict[int, dict[str, Any]] = {}  # round -> cell id -> its report

    def planned(self, batches: list[list[Any]]) -> None:
        for batch in batches:
            listed = ", ".join(self.names[c.id] for c in batch)
            console.print(f"{len(batch)} runs trained together: {listed}")

    def round_done(self, cell_id: str, report: Any) -> None:
        self._flush(before=report.round)
        self.pending.setdefault(report.round, {})[cell_id] = report

    def cell_done(self, result: Any) -> None:
        self._flush(before=math.inf)

    def _flush(self, before: float) -> None:
        """Print each pending round before ``before``."""
        for r in sorted(k for k in self.pending if k < before):
            reports = self.pending.pop(r)
            rep = next(iter(reports.values()))
            bests = [best_reward(reports[i].rewards) for i in self.names if i in reports]
            line = f"round {r:>2}/{rep.rounds}  step {rep.step:>9,}  best "
            line += " ".join(f"{b:.0f}" for b in bests)
            seconds = max(p.seconds for p in reports.values())
            console.print(fit(line, f"  {seconds:.1f}s"), highlight=False)


def exit_on_failures(results: list[Any], what: str) -> None:
    if any(r.state == "failed" for r in results):
        console.print(f"[red]some {what} failed[/red]: rerun the same command to retry them")
        raise typer.Exit(1)
