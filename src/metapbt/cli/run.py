"""``metapbt run``: one run, or several seeds and contexts trained together."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

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
    WatchdogOption,
    best_reward,
    console,
    fit,
    given_options,
    make_watchdog,
    option,
    show_round,
    user_errors,
)
from metapbt.errors import MetaPBTError
from metapbt.runs.config import RunConfig
from metapbt.runs.outputs import CHECKPOINT


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


def run_command(
    env: Annotated[
        str | None,
        option(
            "env",
            "Environment id or source (metapbt envs): cart_pole, gymnax:<id>, "
            "gymnasium:<id>, brax:<name>, package.module:attr.",
        ),
    ] = None,
    context: Annotated[str | None, option("context", "Planet or NAME=VALUE,...")] = None,
    method: Annotated[str | None, option("method", "Method (metapbt methods).")] = None,
    agent: Annotated[
        str | None, option("agent", "The learner: ppo, or dqn (discrete actions).")
    ] = None,
    preset: Preset = None,
    population: PopulationSize = None,
    budget: Budget = None,
    interval: Interval = None,
    quantile: Quantile = None,
    seed: Annotated[int | None, option("seed", "Seed.")] = None,
    out: Annotated[Path, typer.Option(help="Run directory.")] = Path("runs/demo"),
    resume: Annotated[bool, typer.Option(help="Continue a killed run in --out.")] = False,
    metadata: Annotated[
        str | None, typer.Option(help="Meta-data directory (meta methods; default: bundled).")
    ] = None,
    save_meta: Annotated[
        str | None, typer.Option(help="Append the finished run to this meta-data directory.")
    ] = None,
    portfolio: Annotated[
        str | None,
        typer.Option(help="Warm-start from this portfolio file (metapbt portfolio select)."),
    ] = None,
    strict: Annotated[
        bool | None,
        option("strict", "Refuse meta-data recorded under another protocol (else warn)."),
    ] = None,
    seeding: Annotated[
        str | None,
        option(
            "seeding",
            "task: the initial population and network keys derive from (seed, task); "
            "shared: from the seed alone (every task starts alike, as older runs did).",
        ),
    ] = None,
    init_ranges: Annotated[
        list[str] | None,
        typer.Option(
            "--init-range",
            help="Draw the initial population of NAME from LOW:HIGH only (repeat it), e.g. "
            "lr=6.31e-4:1e-3; explore steps keep the whole space.",
        ),
    ] = None,
    space: Annotated[
        list[str] | None,
        typer.Option(
            help="The tuned hyperparameters, one NAME=SPEC each (repeat it; replaces the "
            "default lr, lambda, clip): LOW:HIGH, log:LOW:HIGH, int:LOW:HIGH, or choices "
            "A|B|C, e.g. --space lr=log:1e-5:1e-3 --space epochs=int:3:30 "
            "--space 'adv_norm=true|false'.",
            metavar="NAME=SPEC",
        ),
    ] = None,
    seeds: Annotated[
        str | None,
        typer.Option(help="Seeds trained together, e.g. 0,1,2 (runs in OUT/<context>__seed<k>)."),
    ] = None,
    contexts: Annotated[
        list[str] | None,
        typer.Option(help="Several contexts trained together (repeat it; 'planets': all five)."),
    ] = None,
    watchdog: WatchdogOption = True,
    tensorboard: Annotated[
        Path | None,
        typer.Option(
            help="Also write TensorBoard events to DIR/<run> as the run trains "
            "(pip install 'metapbt[tensorboard]'; not a setting of the run).",
            metavar="DIR",
        ),
    ] = None,
) -> None:
    """Train a population (PPO, or DQN) on a contextual environment, exploring with a method."""
    from metapbt.runs.loggers import tensorboard_loggers
    from metapbt.runs.resolve import resolve
    from metapbt.runs.run import run

    # Every RunConfig field is an option of the same name (tests/test_cli.py checks).
    given = given_options(**{k: v for k, v in locals().items() if k in RunConfig.model_fields})
    with user_errors():
        if init_ranges:
            given["init_ranges"] = _ranges(init_ranges)
        if space:
            given["space"] = space_option(space)
        config = RunConfig(**given)
        if seeds is not None or contexts:
            many = _seed_list(seeds), _context_list(contexts)
            _run_many(config, out, resume, *many, watchdog, tensorboard)
            return
        resolve(config)  # every name and file the run reads, checked before anything is written
        if not resume:
            out = _announce_free(out)
        loggers = tensorboard_loggers(tensorboard, out.resolve().name)
        ensure_writable(out)
        summary = run(config, out, resume=resume, on_round=show_round, loggers=loggers)
    console.print(
        f"final best reward {summary['final_best']:.2f} in {summary['wall_seconds']:.1f}s; "
        f"wrote {out}/history.parquet, summary.json, run.png"
    )
    _show_tensorboard(tensorboard)


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
    watchdog.
    """
    from metapbt.studies.config import study_of_runs
    from metapbt.studies.runner import run_study
    from metapbt.studies.states import cell_dir

    if not resume:
        out = _announce_free(out)
    study = study_of_runs(config, seeds, contexts, out, tensorboard)
    names = {cell.id: study.cell_name(cell) for cell in study.cells}
    order = list(names)
    pending: dict[int, dict[str, Any]] = {}

    def flush(before: int) -> None:
        """Print each finished round before ``before``: one line, every run's best."""
        for r in sorted(k for k in pending if k < before):
            reports = pending.pop(r)
            rep = next(iter(reports.values()))
            bests = [best_reward(reports[i].rewards) for i in order if i in reports]
            line = f"round {r:>2}/{rep.rounds}  step {rep.step:>9,}  best "
            line += " ".join(f"{b:.0f}" for b in bests)
            seconds = max(p.seconds for p in reports.values())
            console.print(fit(line, f"  {seconds:.1f}s"), highlight=False)

    def show(cell_id: str, report: Any) -> None:
        flush(report.round)
        pending.setdefault(report.round, {})[cell_id] = report

    def planned(batches: list[list[Any]]) -> None:
        for batch in batches:
            listed = ", ".join(names[c.id] for c in batch)
            console.print(f"{len(batch)} runs trained together: {listed}")

    found = {
        r.id: r
        for r in run_study(
            study,
            on_round=show,
            on_batches=planned,
            watchdog=make_watchdog(watchdog),
            mix_contexts=True,
            on_cell=lambda _: flush(config.rounds + 1),
        )
    }
    table = Table(title=f"{config.method} on {config.env}: final best reward")
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
        recorded = json.loads(summary.read_text())  # also runs finished before (--resume)
        finals.append(recorded["final_best"])
        table.add_row(
            names[cell.id], f"{recorded['final_best']:.2f}", f"{recorded['wall_seconds']:.1f}"
        )
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
