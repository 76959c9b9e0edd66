"""``metapbt run``: one run, or several seeds and contexts trained together."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.table import Table

from metapbt import compile_cache
from metapbt._atomic import ensure_writable
from metapbt._slug import slug
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
    option,
    show_round,
    user_errors,
)
from metapbt.errors import MetaPBTError
from metapbt.runs.config import RunConfig
from metapbt.runs.outputs import CHECKPOINT
from metapbt.runs.resolve import batch_key


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
    env: Annotated[str | None, option("env", "Environment id (metapbt envs).")] = None,
    context: Annotated[str | None, option("context", "Planet or NAME=VALUE,...")] = None,
    method: Annotated[str | None, option("method", "Method (metapbt methods).")] = None,
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
    from metapbt.runs.run import run

    # Every RunConfig field is an option of the same name (tests/test_cli.py checks).
    given = given_options(**{k: v for k, v in locals().items() if k in RunConfig.model_fields})
    with user_errors():
        if init_ranges:
            given["init_ranges"] = _ranges(init_ranges)
        config = RunConfig(**given)
        if seeds is not None or contexts:
            _run_many(config, out, resume, _seed_list(seeds), _context_list(contexts), watchdog)
            return
        if not resume:
            out = _announce_free(out)
        ensure_writable(out)
        summary = run(config, out, resume=resume, on_round=show_round)
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
            bests = [best_reward(p.rewards) for _, p in parts]
            line = f"round {r:>2}/{rep.rounds}  step {rep.step:>9,}  best "
            line += " ".join(f"{b:.0f}" for b in bests)
            seconds = max(p.seconds for _, p in parts)
            console.print(fit(line, f"  {seconds:.1f}s"), highlight=False)

    def show(index: int, report: Any) -> None:
        flush(report.round)
        pending.setdefault(report.round, []).append((index, report))

    cache = compile_cache.current()
    outcome: dict[int, Any] = {}
    # Grouped by the study runner's rule (runs.resolve.batch_key): a classic-control env's
    # contexts train together, each of another env's contexts on its own.
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, c in enumerate(configs):
        groups.setdefault(batch_key(c, mix_contexts=True), []).append(i)
    for chosen in groups.values():
        console.print(f"{len(chosen)} runs trained together: {', '.join(names[i] for i in chosen)}")
        args = ([configs[i].model_dump() for i in chosen], [str(out / names[i]) for i in chosen])
        if not watchdog:
            found = runs_work(*args, cache, progress=_forward(show, chosen))
        else:
            try:
                found = supervise(
                    runs_work,
                    (*args, cache),
                    Watchdog(),
                    dumps=[out / names[i] for i in chosen],
                    on_progress=lambda _, p, chosen=chosen: show(chosen[p[0]], p[1]),
                    label=f"the runs {names[chosen[0]]}..{names[chosen[-1]]}",
                )
            except MetaPBTError as err:  # the watchdog gave up
                found = [str(err)] * len(chosen)
        outcome.update(zip(chosen, found, strict=True))
        flush(config.rounds + 1)
    results = [outcome[i] for i in range(len(configs))]
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


def _forward(show: Any, chosen: list[int]) -> Any:
    """A progress callable (:mod:`metapbt.studies.watchdog`) that shows each round's report.

    ``chosen``: the group's runs, as indices of the whole command's runs.
    """

    def progress(kind: str, number: int = 0, payload: Any = None) -> None:
        if kind == "round":
            show(chosen[payload[0]], payload[1])

    return progress
