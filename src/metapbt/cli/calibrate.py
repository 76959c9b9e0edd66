"""``metapbt calibrate``: is a task learnable under a preset, and sensitive to its settings?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress

from metapbt._atomic import write_text_atomic
from metapbt.cli._common import console, user_errors
from metapbt.engine import presets


def calibrate_command(
    env: Annotated[
        list[str] | None, typer.Option(help="Environment(s) (repeat; default: classic control).")
    ] = None,
    preset: Annotated[list[str] | None, typer.Option(help="Preset(s) (repeat).")] = None,
    budget: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Steps per configuration (default: a run's budget under each preset; "
            f"classic: {presets.use('classic').budget:,}).",
        ),
    ] = None,
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
    with user_errors(), Progress(console=console) as progress:
        pairs = [(e, p) for e in env_ids for p in names]
        for e, p in pairs:  # before any training: say which pairs do not suit each other
            presets.warn_unsuited(p, e)
        bar = progress.add_task("calibrating", total=len(pairs))
        for e, p in pairs:
            progress.update(bar, description=f"calibrating {e} with {p}")
            steps = presets.use(p).budget if budget is None else budget
            rows.append(cal.calibrate_or_load(out, e, p, steps, configs, context, seed))
            progress.update(bar, advance=1)
    text = cal.table(rows)
    write_text_atomic(out / "calibration.md", text + "\n")
    console.print(text)
    console.print(f"wrote {out}/calibration.md and one JSON per row")
