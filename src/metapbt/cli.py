"""Command-line interface (``metapbt``). The only layer that prints."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from metapbt import compile_cache
from metapbt._atomic import ensure_writable, write_text_atomic
from metapbt._slug import slug
from metapbt.engine import presets
from metapbt.engine.config import RunConfig
from metapbt.engine.outputs import CHECKPOINT
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
    cache: Annotated[
        bool,
        typer.Option(
            "--compile-cache/--no-compile-cache",
            help="Keep compiled programs on disk for the next command "
            "(~/.cache/metapbt/jax, or $METAPBT_COMPILE_CACHE).",
        ),
    ] = True,
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


def _best(rewards: list[float]) -> float:
    """The best finite reward of a round (NaN when every member diverged)."""
    return max((r for r in rewards if r == r), default=float("nan"))


def _show(report: Any) -> None:
    """One finished round on one line of at most 79 characters: best, its config, time."""
    best = _best(report.rewards)
    line = f"round {report.round:>2}/{report.rounds}  step {report.step:>9,}  best {best:9.2f}"
    if best == best:
        config = report.configs[report.rewards.index(best)]
        line += "  " + " ".join(f"{k}={v:.3g}" for k, v in config.items())
    console.print(_fit(line, f"  {report.seconds:.1f}s"), highlight=False)


def _fit(line: str, tail: str, width: int = 79) -> str:
    """``line + tail``, ``line`` cut (with an ellipsis) to fit ``width`` characters."""
    room = width - len(tail)
    return (line if len(line) <= room else line[: room - 1] + "…") + tail


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


def _option(field: str, text: str) -> Any:
    """An option that fills the :class:`RunConfig` field ``field``; its default is the config's."""
    default = RunConfig.model_fields[field].default
    # Escaped: rich would read "[default: ...]" as markup.
    return typer.Option(help=f"{text} \\[default: {default}]", show_default=False)


def _given(**options: Any) -> dict[str, Any]:
    """The options the user gave (``None``: left to the config's default)."""
    return {name: value for name, value in options.items() if value is not None}


Preset = Annotated[
    str | None, _option("preset", f"PPO preset ({', '.join(presets.PRESETS.names())}).")
]
PopulationSize = Annotated[int | None, _option("population", "Population size.")]
Budget = Annotated[int | None, _option("budget", "Environment steps per member.")]
Interval = Annotated[
    int | None, _option("interval", "Steps per member between explores (a multiple of the batch).")
]
Quantile = Annotated[
    float | None, _option("quantile", "Truncation quantile: bottom share that clones the top.")
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


def _watchdog(on: bool) -> Any:
    from metapbt.studies.watchdog import Watchdog

    return Watchdog() if on else None


@app.command("run")
def run_command(
    env: Annotated[str | None, _option("env", "Environment id (metapbt envs).")] = None,
    context: Annotated[str | None, _option("context", "Planet or NAME=VALUE,...")] = None,
    method: Annotated[str | None, _option("method", "Method (metapbt methods).")] = None,
    preset: Preset = None,
    population: PopulationSize = None,
    budget: Budget = None,
    interval: Interval = None,
    quantile: Quantile = None,
    seed: Annotated[int | None, _option("seed", "Seed.")] = None,
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
        _option("strict", "Refuse meta-data recorded under another protocol (else warn)."),
    ] = None,
    seeding: Annotated[
        str | None,
        _option(
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
    seeds: Annotated[
        str | None,
        typer.Option(help="Seeds trained together, e.g. 0,1,2 (runs in OUT/<context>__seed<k>)."),
    ] = None,
    contexts: Annotated[
        list[str] | None,
        typer.Option(help="Several contexts trained together (repeat it; 'planets': all five)."),
    ] = None,
    watchdog: WatchdogOption = True,
) -> None:
    """Train a PPO population on a contextual environment, exploring with a method."""
    from metapbt.engine.run import run

    # Every RunConfig field is an option of the same name (tests/test_cli.py checks).
    given = _given(**{k: v for k, v in locals().items() if k in RunConfig.model_fields})
    with _user_errors():
        if init_ranges:
            given["init_ranges"] = _ranges(init_ranges)
        config = RunConfig(**given)
        if seeds is not None or contexts:
            _run_many(config, out, resume, _seed_list(seeds), _context_list(contexts), watchdog)
            return
        if not resume:
            out = _announce_free(out)
        ensure_writable(out)
        summary = run(config, out, resume=resume, on_round=_show)
    console.print(
        f"final best reward {summary['final_best']:.2f} in {summary['wall_seconds']:.1f}s; "
        f"wrote {out}/history.parquet, summary.json, run.png"
    )


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
) -> None:
    """``metapbt run --seeds/--contexts``: every (context, seed); a context's seeds as a batch."""
    from metapbt.studies.runner import runs_work
    from metapbt.studies.watchdog import Watchdog, supervise

    base = config.model_dump()
    configs = [
        RunConfig(**{**base, "context": c, "seed": s})
        for c in contexts or [config.context]
        for s in seeds or [config.seed]
    ]
    if not resume:
        out = _announce_free(out)
    ensure_writable(out)
    names = [f"{slug(c.context)}__seed{c.seed}" for c in configs]
    pending: dict[int, list[Any]] = {}

    def flush(before: int) -> None:
        """Print each finished round before ``before``: one line, every run's best."""
        for r in sorted(k for k in pending if k < before):
            parts = sorted(pending.pop(r), key=lambda p: p[0])
            rep = parts[0][1]
            bests = [_best(p.rewards) for _, p in parts]
            line = f"round {r:>2}/{rep.rounds}  step {rep.step:>9,}  best "
            line += " ".join(f"{b:.0f}" for b in bests)
            seconds = max(p.seconds for _, p in parts)
            console.print(_fit(line, f"  {seconds:.1f}s"), highlight=False)

    def show(index: int, report: Any) -> None:
        flush(report.round)
        pending.setdefault(report.round, []).append((index, report))

    cache = compile_cache.current()
    results: list[Any] = []
    for context in dict.fromkeys(c.context for c in configs):  # one batch per context
        chosen = [i for i, c in enumerate(configs) if c.context == context]
        console.print(f"{len(chosen)} runs trained together: {', '.join(names[i] for i in chosen)}")
        args = ([configs[i].model_dump() for i in chosen], [str(out / names[i]) for i in chosen])
        if not watchdog:
            results += runs_work(*args, cache, progress=_forward(show))
        else:
            try:
                results += supervise(
                    runs_work,
                    (*args, cache),
                    Watchdog(),
                    dumps=[out / names[i] for i in chosen],
                    on_progress=lambda _, p: show(*p),
                    label=f"the runs of {context}",
                )
            except MetaPBTError as err:  # the watchdog gave up
                results += [str(err)] * len(chosen)
        flush(config.rounds + 1)
    table = Table(title=f"{config.method} on {config.env}: final best reward")
    for column in ("run", "final best", "seconds"):
        table.add_column(column, justify="left" if column == "run" else "right")
    finals = []
    for name, result in zip(names, results, strict=True):
        if isinstance(result, str):
            table.add_row(name, f"[red]{result}[/red]", "")
            continue
        finals.append(result["final_best"])
        table.add_row(name, f"{result['final_best']:.2f}", f"{result['wall_seconds']:.1f}")
    console.print(table)
    if finals:
        console.print(
            f"mean {np.mean(finals):.2f} ± {np.std(finals, ddof=min(1, len(finals) - 1)):.2f} "
            f"(std over {len(finals)} runs); wrote {out}/<run>/ history.parquet, summary.json, "
            "run.png"
        )
    if len(finals) < len(results):
        raise MetaPBTError("some runs failed (see the table); rerun with --resume to retry them")


def _forward(show: Any) -> Any:
    """A progress callable (:mod:`metapbt.studies.watchdog`) that shows each round's report."""

    def progress(kind: str, number: int = 0, payload: Any = None) -> None:
        if kind == "round":
            show(*payload)

    return progress


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
        str, typer.Option(help="'planets', 'grid:FEATURE', or contexts separated by ';'.")
    ] = "planets",
    method: Annotated[str, typer.Option(help="Method of the stored runs.")] = "pb2",
    seeds: Annotated[int, typer.Option(min=1, help="Seeds per context.")] = 5,
    out: Annotated[Path, typer.Option(help="Meta-data directory.")] = Path("meta"),
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

    protocol = _given(
        preset=preset, population=population, budget=budget, interval=interval, quantile=quantile
    )
    with _user_errors():
        study = mb.metadata_study(env, contexts, method, seeds, out, runs, **protocol)
        ensure_writable(out)
        results = _run_cells(
            study,
            mb.pending(study),
            lambda on_cell, on_round, on_batches: mb.build_metadata(
                study,
                workers,
                on_cell,
                on_round=on_round,
                on_batches=on_batches,
                watchdog=_watchdog(watchdog),
                mix_contexts=mix_contexts,
            ),
        )
    console.print(f"meta-data in {out}: {len(MetaStore(out).runs())} runs")
    _exit_on_failures(results, "meta-data runs")


@app.command("calibrate")
def calibrate_command(
    env: Annotated[
        list[str] | None, typer.Option(help="Environment(s) (repeat; default: classic control).")
    ] = None,
    preset: Annotated[list[str] | None, typer.Option(help="Preset(s) (repeat).")] = None,
    budget: Annotated[
        int, typer.Option(min=1, help="Steps per configuration (default: a run's budget).")
    ] = RunConfig.model_fields["budget"].default,
    configs: Annotated[int, typer.Option(min=2, help="Random configurations per task.")] = 30,
    context: Annotated[str, typer.Option(help="The task's context.")] = "earth",
    seed: Annotated[int, typer.Option(help="Seed of the configurations and the training.")] = 0,
    out: Annotated[Path, typer.Option(help="Directory of the JSON files and table.")] = Path(
        "calibration"
    ),
) -> None:
    """Is a task learnable under a preset, and sensitive to its hyperparameters?

    Trains CONFIGS random configurations (fixed for the whole budget) per environment and
    preset; reports the best final return against the usual solved level, and the spread.
    Finished (env, preset) pairs are read back from OUT, so a killed calibration resumes.
    """
    from metapbt.studies import calibrate as cal

    env_ids = env or ["cart_pole", "mountain_car", "pendulum", "acrobot"]
    names = preset or ["classic"]
    rows = []
    with _user_errors(), Progress(console=console) as progress:
        for name in names:
            presets.PRESETS.check(name)
        pairs = [(e, p) for e in env_ids for p in names]
        bar = progress.add_task("calibrating", total=len(pairs))
        for e, p in pairs:
            progress.update(bar, description=f"calibrating {e} with {p}")
            rows.append(cal.calibrate_or_load(out, e, p, budget, configs, context, seed))
            progress.update(bar, advance=1)
    text = cal.table(rows)
    write_text_atomic(out / "calibration.md", text + "\n")
    console.print(text)
    console.print(f"wrote {out}/calibration.md and one JSON per row")


portfolio_app = typer.Typer(help="Build a warm-start portfolio from related tasks (3 steps).")
app.add_typer(portfolio_app, name="portfolio")
Workers = Annotated[int, typer.Option(min=1, help="Tasks computed in parallel processes.")]


def _task_progress(progress: Progress, total: int, label: str) -> Any:
    task = progress.add_task(label, total=total)
    return lambda name: progress.update(task, advance=1, description=f"{label}: {name}")


@portfolio_app.command("candidates")
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
    steps: Annotated[int, typer.Option(min=1, help="Steps per configuration and seed.")] = 160_000,
    best: Annotated[int, typer.Option(min=1, help="Candidates kept per task.")] = 2,
    preset: Annotated[str, typer.Option(help="PPO preset.")] = "classic",
    seed: Annotated[int, typer.Option(help="Root seed.")] = 0,
    workers: Workers = 1,
    watchdog: WatchdogOption = True,
) -> None:
    """Step 1: random search on every task; keep each task's best configurations."""
    from metapbt.studies import portfolio as pf

    with _user_errors(), Progress(console=console) as progress:
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
        )
        on_task = _task_progress(progress, len(setup.tasks), "random search")
        found = pf.candidates(setup, out, workers, on_task, _watchdog(watchdog))
    console.print(f"{len(found)} candidates from {len(setup.tasks)} tasks in {out}/candidates")


@portfolio_app.command("evaluate")
def portfolio_evaluate(
    root: Annotated[Path, typer.Argument(help="Portfolio directory (after step 1).")],
    workers: Workers = 1,
    watchdog: WatchdogOption = True,
) -> None:
    """Step 2: every candidate on every task (resumes; finished tasks are skipped)."""
    from metapbt.studies import portfolio as pf

    with _user_errors(), Progress(console=console) as progress:
        setup, _ = pf.read_setup(root)
        on_task = _task_progress(progress, len(setup.tasks), "evaluation")
        matrix = pf.evaluate(root, workers, on_task, _watchdog(watchdog))
    table = Table(title="seed-averaged final return (rows: candidates by source task)")
    table.add_column("source")
    for task in matrix.tasks:
        table.add_column(task, justify="right")
    for candidate, row in zip(matrix.candidates, matrix.scores, strict=True):
        table.add_row(candidate.source, *(f"{x:.1f}" for x in row))
    console.print(table)


@portfolio_app.command("select")
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
    from metapbt.studies import portfolio as pf

    with _user_errors():
        chosen, path = pf.select_portfolio(root, size, exclude, out, env)
    for i, entry in enumerate(chosen.entries, start=1):
        values = ", ".join(f"{k}={v:.4g}" for k, v in entry.config.items())
        console.print(f"{i}. {values}  (from {entry.source})")
    console.print(f"wrote {path} and {path.with_suffix('.png')}")


study_app = typer.Typer(help="Studies: grids of methods x tasks x seeds, run and compared.")
app.add_typer(study_app, name="study")
StudyFile = Annotated[Path, typer.Argument(help="Study file (TOML), e.g. studies/smoke.toml.")]


@study_app.command("list")
def study_list(file: StudyFile) -> None:
    """Show the study's cells and which are done."""
    from metapbt.studies import claims
    from metapbt.studies.config import load_study
    from metapbt.studies.states import cell_dir, states

    with _user_errors():
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


@study_app.command("run")
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
) -> None:
    """Run every cell that is not done yet (failed cells are retried), in batches.

    Several runners may share one study: each claims the batches it runs.
    """
    from metapbt.studies.config import load_study
    from metapbt.studies.runner import run_study
    from metapbt.studies.states import states

    with _user_errors():
        study = load_study(file)
        cell_states = states(study)
        results = _run_cells(
            study,
            [c for c in study.cells if cell_states[c.id] != "done"],
            lambda on_cell, on_round, on_batches: run_study(
                study,
                workers=workers,
                ray=ray,
                on_cell=on_cell,
                batch=batch,
                on_round=on_round if ray is None else None,
                on_batches=on_batches,
                watchdog=_watchdog(watchdog),
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
    _exit_on_failures(results, "cells")


def _run_cells(study: Any, pending: list[Any], execute: Any) -> list[Any]:
    """Run a study's ``pending`` cells through ``execute(on_cell, on_round, on_batches)``.

    A bar of cells and a bar of rounds (elapsed, ETA); the rounds bar's label is a compact live
    view of the running batch (its size, round, best rewards); one line per finished cell.
    """
    columns = (
        TextColumn("{task.description}"),
        BarColumn(bar_width=24),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    todo = len(pending)
    per_cell = {c.id: c.protocol.rounds for c in study.cells}  # a task may set its own
    with Progress(*columns, console=console) as progress:
        cells = progress.add_task(f"{study.name}: cells", total=todo)
        rounds = progress.add_task("rounds", total=sum(per_cell[c.id] for c in pending))
        live: dict[str, float] = {}
        reported: dict[str, int] = {}

        def planned(batches: list[list[Any]]) -> None:
            sizes = sorted({len(b) for b in batches})
            progress.console.print(
                f"{todo} cells in {len(batches)} batches of {'/'.join(map(str, sizes))} runs"
            )

        def round_done(cell_id: str, report: Any) -> None:
            live[cell_id] = _best(report.rewards)
            reported[cell_id] = reported.get(cell_id, 0) + 1
            if report.round == report.rounds:
                live.pop(cell_id, None)
            bests = sorted(v for v in live.values() if v == v)
            view = f"round {report.round}/{report.rounds} x{len(live) or 1} runs"
            if bests:
                view += f" best {bests[0]:.0f}..{bests[-1]:.0f}"
            progress.update(rounds, advance=1, description=view)

        def cell_done(result: Any) -> None:
            done = result.state == "done"
            note = f"best {result.final_best:.1f}" if done else result.error
            style = None if done else "cyan" if result.state == "claimed" else "red"
            line = _fit(f"{result.state:6} {result.id}  {note}", "")
            progress.console.print(line, style=style, markup=False, highlight=False)
            progress.advance(cells)
            live.pop(result.id, None)
            # rounds not reported here: a resumed cell's earlier ones, another process's
            progress.advance(rounds, per_cell[result.id] - reported.pop(result.id, 0))

        return execute(cell_done, round_done, planned)


def _exit_on_failures(results: list[Any], what: str) -> None:
    if any(r.state == "failed" for r in results):
        console.print(f"[red]some {what} failed[/red]: rerun the same command to retry them")
        raise typer.Exit(1)


@study_app.command("report")
def study_report(
    file: StudyFile,
    out: Annotated[Path, typer.Option(help="Report directory.")] = Path("report"),
    schedule: Annotated[
        list[str] | None,
        typer.Option(help="Cell id whose schedules to plot (repeatable; default: per method)."),
    ] = None,
) -> None:
    """Normalised scores, ranks, critical differences and curves, as PNGs and report.md."""
    from metapbt.analysis.report import build_report
    from metapbt.envs.contexts import task_features
    from metapbt.studies.config import load_study
    from metapbt.studies.results import default_schedules, load_histories, load_results

    with _user_errors():
        study = load_study(file)
        results = load_results(study)
        ids = schedule or list(study.report.schedules) or default_schedules(study)
        path = build_report(
            results.drop(columns="seconds"),
            out,
            histories=load_histories(study, ids),
            title=f"Study {study.name}",
            features={t: task_features(t) for t in results["task"].unique()},
            above=study.report.above,
        )
    console.print(f"wrote {path}")


def main() -> None:
    """Entry point of the ``metapbt`` script."""
    app()
