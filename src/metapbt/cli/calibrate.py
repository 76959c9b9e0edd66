"""``metapbt calibrate``: is a task learnable under a preset, and sensitive to its settings?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress

from metapbt import envs
from metapbt._atomic import ensure_writable, write_text_atomic
from metapbt.cli._common import console, user_errors
from metapbt.engine import agents, presets


def calibrate_command(
    env: Annotated[
        list[str] | None, typer.Option(help="Environment(s) (repeat; default: classic control).")
    ] = None,
    preset: Annotated[
        list[str] | None, typer.Option(help="Preset(s) of the agent (repeat; default: classic).")
    ] = None,
    agent: Annotated[str, typer.Option(help="The learner: ppo or dqn.")] = "ppo",
    budget: Annotated[
        list[int] | None,
        typer.Option(
            min=1,
            help="Steps per configuration (repeat for several; default: a run's budget under "
            f"each preset; classic: {presets.use('classic').budget:,}).",
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
    Finished (env, preset, budget) results are read back from OUT, so a killed calibration
    resumes; OUT's table holds every calibration saved there, so separate calls (other
    environments, presets or budgets) add rows to one table.
    """
    from metapbt.studies import calibrate as cal

    env_ids = env or ["cart_pole", "mountain_car", "pendulum", "acrobot"]
    names = preset or ["classic"]
    with user_errors(), Progress(console=console) as progress:
        rows = cal.saved(out) if out.is_dir() else {}
        pairs = [(e, p) for e in env_ids for p in names]
        kind = agents.kind(agent)
        for e, p in pairs:  # before any training: say which pairs do not suit each other
            kind.use(p)  # an unknown preset of this agent: a named error now
            agents.check_env(agent, e)
            envs.resolve_context(e, context)
            if agent == "ppo":
                presets.warn_unsuited(p, e)
        ensure_writable(out)
        todo = [(e, p, s) for e, p in pairs for s in (budget or [kind.use(p).budget])]
        bar = progress.add_task("calibrating", total=len(todo))
        for e, p, steps in todo:
            progress.update(bar, description=f"calibrating {e} with {p} for {steps:,} steps")
            path = cal.result_path(out, e, p, context, steps, seed, agent)
            rows[path.name] = cal.calibrate_or_load(
                out, e, p, steps, configs, context, seed, agent=agent
            )
            progress.update(bar, advance=1)
    text = cal.table(list(rows.values()))
    write_text_atomic(out / "calibration.md", text + "\n")
    console.print(text)
    console.print(f"wrote {out}/calibration.md and one JSON per row")
