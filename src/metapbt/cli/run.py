"""``metapbt run``: one run, or several seeds and contexts trained together."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import typer
from rich.table import Table

from metapbt._atomic import ensure_writable
from metapbt.cli._common import (
    Budget,
    Interval,
    PopulationSize,
    Preset,
    Quantile,
    RoundLines,
    WatchdogOption,
    console,
    given_options,
    make_watchdog,
    option,
    show_round,
    user_errors,
)
from metapbt.errors import MetaPBTError
from metapbt.runs.config import RunConfig
from metapbt.runs.outputs import CHECKPOINT

if TYPE_CHECKING:
    from metapbt.studies.config import Study
    from metapbt.studies.runner import CellResult


def _next_free(out: Path) -> Path:
    """``out`` if it holds no runs, else the first of ``out-2``, ``out-3``, ... that holds none."""
    candidate, k = out, 1
    while _holds_runs(candidate):
        k += 1
        candidate = out.with_name(f"{out.name}-{k}")
    return candidate


def _holds_runs(path: Path) -> bool:
    """Whether ``path`` or a directory in it holds a run (checkpoint or summary)."""
    places = [path, *(p for p in path.iterdir() if p.is_dir())] if path.is_dir() else []
    return any((p / CHECKPOINT).exists() or (p / "summary.json").exists() for p in places)


EnvOption = Annotated[
    str | None,
    option(
        "env",
        "Environment id or source (metapbt envs): cart_pole, gymnax:<id>, "
        "gymnasium:<id>, brax:<name>, package.module:attr.",
    ),
]
ContextOption = Annotated[str | None, option("context", "Planet or NAME=VALUE,...")]
MethodOption = Annotated[str | None, option("method", "Method (metapbt methods).")]
AgentOption = Annotated[str | None, option("agent", "The learner: ppo, or dqn (discrete actions).")]
SeedOption = Annotated[int | None, option("seed", "Seed.")]
OutOption = Annotated[Path, typer.Option(help="Run directory.")]
ResumeOption = Annotated[bool, typer.Option(help="Continue a killed run in --out.")]
MetadataOption = Annotated[
    str | None, typer.Option(help="Meta-data directory (meta methods; default: bundled).")
]
SaveMetaOption = Annotated[
    str | None, typer.Option(help="Append the finished run to this meta-data directory.")
]
PortfolioOption = Annotated[
    str | None,
    typer.Option(help="Warm-start from this portfolio file (metapbt portfolio select)."),
]
StrictOption = Annotated[
    bool | None,
    option("strict", "Refuse meta-data recorded under another protocol (else warn)."),
]
SeedingOption = Annotated[
    str | None,
    option(
        "seeding",
        "task: the initial population and network keys derive from (seed, task); "
        "shared: from the seed alone (every task starts alike, as older runs did).",
    ),
]
InitRangesOption = Annotated[
    list[str] | None,
    typer.Option(
        "--init-range",
        help="Draw the initial population of NAME from LOW:HIGH only (repeat it), e.g. "
        "lr=6.31e-4:1e-3; explore steps keep the whole space.",
    ),
]
SpaceOption = Annotated[
    list[str] | None,
    typer.Option(
        help="The tuned hyperparameters, one NAME=SPEC each (repeat it; replaces the "
        "default lr, lambda, clip): LOW:HIGH, log:LOW:HIGH, int:LOW:HIGH, or choices "
        "A|B|C, e.g. --space lr=log:1e-5:1e-3 --space epochs=int:3:30 "
        "--space 'adv_norm=true|false'.",
        metavar="NAME=SPEC",
    ),
]
SeedsOption = Annotated[
    str | None,
    typer.Option(help="Seeds trained together, e.g. 0,1,2 (runs in OUT/<context>__seed<k>)."),
]
ContextsOption = Annotated[
    list[str] | None,
    typer.Option(help="Several contexts trained together (repeat it; 'planets': all five)."),
]
TensorBoardOption = Annotated[
    Path | None,
    typer.Option(
        help="Also write TensorBoard events to DIR/<run> as the run trains "
        "(pip install 'metapbt[tensorboard]'; not a setting of the run).",
        metavar="DIR",
    ),
]


def run_command(
    env: EnvOption = None,
    context: ContextOption = None,
    method: MethodOption = None,
    agent: AgentOption = None,
    preset: Preset = None,
    population: PopulationSize = None,
    budget: Budget = None,
    interval: Interval = None,
    quantile: Quantile = None,
    seed: SeedOption = None,
    out: OutOption = Path("runs/demo"),
    resume: ResumeOption = False,
    metadata: MetadataOption = None,
    save_meta: SaveMetaOption = None,
    portfolio: PortfolioOption = None,
    strict: StrictOption = None,
    seeding: SeedingOption = None,
    init_ranges: InitRangesOption = None,
    space: SpaceOption = None,
    seeds: SeedsOption = None,
    contexts: ContextsOption = None,
    watchdog: WatchdogOption = True,
    tensorboard: TensorBoardOption = None,
) -> None:
    """Train a population (PPO, or DQN) on a contextual environment, exploring with a method."""
    # Every RunConfig field is an option of the same name (tests/test_cli.py checks).
    given = given_options(**{k: v for k, v in locals().items() if k in RunConfig.model_fields})
    with user_errors():
        config = _run_config(given, init_ranges, space)
        if seeds is not None or contexts:
            many = _seed_list(seeds), _context_list(contexts)
            _run_many(config, out, resume, *many, watchdog, tensorboard)
            return
        out, summary = _run_one(config, out, resume, tensorboard)
    console.print(
        f"final best reward {summary['final_best']:.2f} in {summary['wall_seconds']:.1f}s; "
        f"wrote {out}/history.parquet, summary.json, run.png"
    )
    _show_tensorboard(tensorboard)


def _run_config(
    given: dict[str, Any], init_ranges: list[str] | None, space: list[str] | None
) -> RunConfig:
    """The run's settings: the options ``given``, with ``--init-range`` and ``--space`` parsed."""
    given = dict(given)
    if init_ranges:
        given["init_ranges"] = _ranges(init_ranges)
    if space:
        given["space"] = space_option(space)
    return RunConfig(**given)


def _run_one(
    config: RunConfig, out: Path, resume: bool, tensorboard: Path | None
) -> tuple[Path, dict[str, Any]]:
    """Train (or resume) one run, printing its rounds; its directory and summary.

    The run is resolved here, once: every name and file it reads is checked before anything
    is written, and the run trains from that resolved run. A new run goes to ``out``, or to the
    next free ``out-k`` (printed).
    """
    from metapbt.runs.loggers import tensorboard_loggers
    from metapbt.runs.resolve import resolve
    from metapbt.runs.run import run

    resolved = resolve(config)
    if not resume:
        out = _announce_free(out)
    loggers = tensorboard_loggers(tensorboard, out.resolve().name)
    ensure_writable(out)
    summary = run(
        config, out, resume=resume, on_round=show_round, loggers=loggers, resolved=resolved
    )
    return out, summary


def _show_tensorboard(tensorboard: Path | None) -> None:
    if tensorboard is not None:
        console.print(f"TensorBoard events in {tensorboard}: tensorboard --logdir {tensorboard}")


def _ranges(items: list[str]) -> dict[str, tuple[float, float]]:
    """``["lr=6.31e-4:1e-3"]`` -> ``{"lr": (6.31e-4, 1e-3)}``."""
    out = {}
    for item in items:
        name, _, bounds = item.partition("=")
        low, _, high = bounds.partition(":")
        try:
            out[name.strip()] = (float(low), float(high))
        except ValueError:
            raise MetaPBTError(f"--init-range takes NAME=LOW:HIGH, got {item!r}") from None
    return out


def space_option(items: list[str]) -> dict[str, dict[str, Any]]:
    """``--space`` items as a search space's ``to_dict`` mapping.

    Examples:
        ```pycon
        >>> items = ["lr=log:1e-5:1e-3", "epochs=int:3:30", "adv_norm=true|false"]
        >>> space_option(items)["adv_norm"]
        {'type': 'categorical', 'choices': [True, False]}

        ```

    Raises:
        MetaPBTError: On an item that is not NAME=SPEC, or a name given twice.
    """
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        name, sep, spec = (part.strip() for part in item.partition("="))
        if not (name and sep and spec):
            raise MetaPBTError(f"--space takes NAME=SPEC, got {item!r}")
        if name in out:
            raise MetaPBTError(f"--space gives {name!r} twice")
        if "|" in spec:
            out[name] = {"type": "categorical", "choices": [_choice(c) for c in spec.split("|")]}
            continue
        kind, parts = "float", spec.split(":")
        log = parts[0] == "log"
        if parts[0] in ("log", "int", "float"):
            kind = "int" if parts[0] == "int" else "float"
            parts = parts[1:]
        try:
            convert = int if kind == "int" else float
            low, high = (convert(p) for p in parts)
        except ValueError:
            raise MetaPBTError(
                f"--space {item!r}: expected LOW:HIGH, log:LOW:HIGH, int:LOW:HIGH or A|B|C"
            ) from None
        out[name] = {"type": kind, "low": low, "high": high, "log": log}
    return out


def _choice(text: str) -> Any:
    """A choice as written: ``true``/``false``, an int, a float, or else the text itself."""
    text = text.strip()
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def _seed_list(text: str | None) -> list[int]:
    if text is None:
        return []
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise MetaPBTError(f"--seeds takes integers separated by commas, got {text!r}") from None


def _context_list(values: list[str] | None) -> list[str]:
    from metapbt.envs.contexts import PLANETS

    out: list[str] = []
    for value in values or []:
        out += list(PLANETS) if value == "planets" else [value]
    return out


def _announce_free(out: Path) -> Path:
    """A directory for a new run: ``out``, or the next free ``out-k`` (printed)."""
    free = _next_free(out)
    if free != out:
        console.print(f"{out} holds a run (continue it with --resume); this one goes to {free}")
    return free


def _run_many(
    config: RunConfig,
    out: Path,
    resume: bool,
    seeds: list[int],
    contexts: list[str],
    watchdog: bool,
    tensorboard: Path | None = None,
) -> None:
    """``metapbt run --seeds/--contexts``: every (context, seed) as a cell of a study.

    The study ([`study_of_runs`][metapbt.studies.config.study_of_runs]) goes through the study
    runner: its batches (a classic-control env's contexts train together), claims, resume and
    watchdog. Its rounds print as `RoundLines`; then a table of every run's final best.
    """
    from metapbt.studies.config import study_of_runs
    from metapbt.studies.runner import run_study

    if not resume:
        out = _announce_free(out)
    study = study_of_runs(config, seeds, contexts, out, tensorboard)
    names = {cell.id: study.cell_name(cell) for cell in study.cells}
    results = RoundLines(names).run(
        lambda on_cell, on_round, on_batches: run_study(
            study,
            on_round=on_round,
            on_batches=on_batches,
            watchdog=make_watchdog(watchdog),
            mix_contexts=True,
            on_cell=on_cell,
        )
    )
    title = f"{config.method} on {config.env}: final best reward"
    table, finals = _final_bests(study, names, {r.id: r for r in results}, title)
    console.print(table)
    if finals:
        console.print(
            f"mean {np.mean(finals):.2f} ± {np.std(finals, ddof=min(1, len(finals) - 1)):.2f} "
            f"(std over {len(finals)} runs); wrote {out}/<run>/ history.parquet, summary.json, "
            "run.png"
        )
    _show_tensorboard(tensorboard)
    if len(finals) < len(study.cells):
        raise MetaPBTError("some runs failed (see the table); rerun with --resume to retry them")


def _final_bests(
    study: Study, names: dict[str, str], found: dict[str, CellResult], title: str
) -> tuple[Table, list[float]]:
    """A table of every run's final best reward (or why it has none), and those rewards.

    A run finished before (``--resume``) is read from its summary like one finished now.
    """
    from metapbt.studies.states import cell_dir

    table = Table(title=title)
    for column in ("run", "final best", "seconds"):
        table.add_column(column, justify="left" if column == "run" else "right")
    finals = []
    for cell in study.cells:
        summary = cell_dir(study, cell) / "summary.json"
        result = found.get(cell.id)
        if (result is not None and result.state != "done") or not summary.exists():
            error = "not run" if result is None else result.error
            table.add_row(names[cell.id], f"[red]{error}[/red]", "")
            continue
        recorded = json.loads(summary.read_text())
        finals.append(recorded["final_best"])
        table.add_row(
            names[cell.id], f"{recorded['final_best']:.2f}", f"{recorded['wall_seconds']:.1f}"
        )
    return table, finals
