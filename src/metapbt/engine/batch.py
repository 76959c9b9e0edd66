"""Several runs trained together: one compiled program per interval for all their members.

Runs that share an environment, a context, a preset and a protocol (budget, interval,
population) can train as one population of ``runs x members``: each member carries its own
hyperparameters and random key inside the program, while each run keeps its own
:class:`~metapbt.population.population.Population` (ask/tell, explores, meta-data,
portfolio), checkpoint and output files on the host, between intervals. A run in a batch
writes exactly what :func:`metapbt.engine.run.run` writes, after every round.

Every run's random keys are its own (split from its seed as a lone run splits them), so its
result does not depend on the batch it ran in, up to XLA's arithmetic: see
``tests/engine/test_batch.py`` and the README.

A run that fails (its meta-data is refused, its explorer raises) is reported and left behind;
the others go on. Its members keep their slot in the program until the batch ends (dropping
them would recompile), training on with their last hyperparameters, unrecorded.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from metapbt import envs
from metapbt.engine import presets
from metapbt.engine.checkpoint import Checkpoint
from metapbt.engine.config import RunConfig
from metapbt.engine.factory import make_trainer
from metapbt.engine.outputs import CHECKPOINT, RunOutputs, summary
from metapbt.engine.ppo import MemberState
from metapbt.engine.presets import PPOConfig
from metapbt.engine.resolve import make_population
from metapbt.engine.trainer_base import BasePopulationTrainer
from metapbt.errors import ConfigError
from metapbt.population.decisions import Clone, Decision, Keep
from metapbt.population.meta_io import save_run
from metapbt.population.population import Population
from metapbt.population.space import Config

logger = logging.getLogger(__name__)

Result = dict[str, Any] | BaseException
"""A run's summary (``metapbt.summary/1``), or the error that stopped it."""


@dataclass(frozen=True)
class RunJob:
    """One run of a batch: its config, its directory, and whether to resume it there."""

    config: RunConfig
    out: Path
    resume: bool = False


@dataclass(frozen=True)
class RoundReport:
    """What one finished round of one run reports (for progress displays)."""

    round: int
    rounds: int
    step: int
    rewards: list[float]
    configs: list[Config]
    seconds: float


def batch_key(config: RunConfig, mix_contexts: bool = False) -> tuple[Any, ...]:
    """Runs with equal keys can train together in one batch.

    Environment, context, preset and protocol (population, budget, interval): methods and
    seeds may differ. With ``mix_contexts``, the contexts of an environment whose contexts
    are environment parameters (classic control) may differ too: the trainer then passes
    them per member (see :mod:`metapbt.engine.trainer`); otherwise a trainer's programs hold
    one context as constants.
    """
    if mix_contexts and envs.spec(config.env).mixes_contexts:
        context: tuple[Any, ...] = ("mixed",)
    else:
        context = tuple(sorted(envs.resolve_context(config.env, config.context).items()))
    return (
        config.env,
        context,
        config.preset,
        config.population,
        config.budget,
        config.interval,
    )


def run_batch(
    jobs: Sequence[RunJob],
    on_round: Callable[[int, RoundReport], None] | None = None,
    raise_errors: bool = False,
) -> list[Result]:
    """Train ``jobs`` together; return each run's summary, or the error that stopped it.

    Args:
        jobs: Runs with one :func:`batch_key`.
        on_round: Called with a run's index and report after each of its finished rounds.
        raise_errors: Re-raise the first error of any run (a lone ``metapbt run``) instead of
            returning it.

    Raises:
        ConfigError: If the jobs cannot share a batch (different keys, different numbers of
            finished rounds), or are empty.
    """
    if not jobs:
        raise ConfigError("a batch needs at least one run")
    keys = {batch_key(j.config, mix_contexts=True) for j in jobs}
    if len(keys) > 1:
        raise ConfigError(
            "runs of one batch must share env, context, preset and protocol (the contexts of a "
            f"classic-control env may differ); got {keys}"
        )
    first = jobs[0].config
    size, rounds, interval = first.population, first.rounds, first.interval
    results: list[Result | None] = [None] * len(jobs)
    runs: list[_Run] = []
    for i, job in enumerate(jobs):
        try:
            runs.append(_setup(i, job))
        except Exception as err:
            if raise_errors:
                raise
            logger.warning("run %s failed: %s: %s", job.out, type(err).__name__, err)
            results[i] = err
    if not runs:
        return _complete(results)
    # Refused before a trainer is built: run_groups splits such runs into groups.
    saved = {Checkpoint.finished_rounds(run.outputs.checkpoint) for run in runs}
    saved.discard(-1)  # unreadable: that run's resume fails on its own below
    if len(saved) > 1:
        raise ConfigError(
            f"runs of one batch must have finished the same number of rounds, got {sorted(saved)}"
        )
    ppo = presets.make(first.preset, env=first.env)
    # One context: constants of the trainer's programs; several: one per member, traced.
    contexts = [run.context for run in runs for _ in range(size)]
    same = all(c == contexts[0] for c in contexts)
    trainer = make_trainer(first.env, contexts[0] if same else contexts, ppo, len(contexts))
    state = _start(trainer, runs, size, raise_errors, results)
    done = {len(run.ckpt.records) for run in runs if run.error is None and run.ckpt is not None}
    for r in range(min(done, default=rounds) + 1, rounds + 1):
        start = time.perf_counter()
        step = r * interval
        state = trainer.train(state, interval)
        eval_keys = []
        for run in runs:
            key, k_eval = jax.random.split(run.ckpt.key)
            run.ckpt = replace(run.ckpt, key=key)
            eval_keys.append(jax.random.split(k_eval, size))
        rewards = trainer.evaluate_members(state, jnp.concatenate(eval_keys))
        shared = (time.perf_counter() - start) / len(runs)
        decisions: list[Decision] = []
        for i, run in enumerate(runs):
            offset = i * size
            own = rewards[offset : offset + size]
            tick = time.perf_counter()
            decisions += _offset(_tell(run, step, own, raise_errors, results), offset)
            run.seconds = shared + time.perf_counter() - tick
        if r < rounds:
            state = trainer.apply(state, decisions)
        for i, run in enumerate(runs):
            if run.error is not None:
                continue
            own = rewards[i * size : (i + 1) * size]
            run.ckpt = replace(
                run.ckpt,
                state=_slice(state, i, size),
                population=run.pop.state_dict(),
                records=(*run.ckpt.records, {"step": step, "best": _best(own)}),
                elapsed=run.ckpt.elapsed + run.seconds,
            )
            run.outputs.write_round(run.pop.history, run.ckpt)
            if on_round is not None:
                report = RoundReport(r, rounds, step, own.tolist(), run.configs, run.seconds)
                on_round(run.index, report)
    for run in runs:
        if run.error is None:
            _finish(run, ppo, raise_errors, results)
    return _complete(results)


def run_groups(
    jobs: Sequence[RunJob],
    on_round: Callable[[int, RoundReport], None] | None = None,
    on_start: Callable[[], None] | None = None,
) -> list[Result]:
    """:func:`run_batch` for runs of one key that may have finished different rounds.

    Each job resumes when its directory holds a checkpoint (``job.resume`` is ignored); an
    unreadable checkpoint is set aside first (:func:`set_aside_corrupt`) and its run starts
    again. Runs with the same finished rounds train together, ``on_start`` before each group
    (a kill between two runs' files leaves them one round apart). Results in ``jobs`` order.
    """
    groups: dict[int, list[int]] = {}
    for i, job in enumerate(jobs):
        groups.setdefault(set_aside_corrupt(job.out / CHECKPOINT), []).append(i)
    results: dict[int, Result] = {}
    for members in groups.values():
        if on_start is not None:
            on_start()
        group = [replace(jobs[i], resume=(jobs[i].out / CHECKPOINT).exists()) for i in members]
        report = None if on_round is None else (lambda k, r, m=members: on_round(m[k], r))
        try:
            outcomes: list[Result] = run_batch(group, on_round=report)
        except Exception as err:  # the batch itself failed (e.g. its trainer)
            outcomes = [err] * len(group)
        results.update(zip(members, outcomes, strict=True))
    return [results[i] for i in range(len(jobs))]


def set_aside_corrupt(checkpoint: Path) -> int:
    """The checkpoint's finished rounds; an unreadable one is moved aside (``.corrupt``): 0.

    Moving it aside is logged as a warning: its run starts again.
    """
    rounds = Checkpoint.finished_rounds(checkpoint)
    if rounds >= 0:
        return rounds
    aside = checkpoint.with_name(checkpoint.name + ".corrupt")
    os.replace(checkpoint, aside)
    logger.warning(
        "%s is unreadable (truncated?): moved to %s; the run starts again", checkpoint, aside.name
    )
    return 0


@dataclass
class _Run:
    """One run's host-side state inside a batch."""

    index: int
    job: RunJob
    outputs: RunOutputs
    pop: Population
    context: dict[str, float]
    ckpt: Checkpoint | None = None
    configs: list[Config] = field(default_factory=list)
    seconds: float = 0.0
    error: BaseException | None = None


def _setup(index: int, job: RunJob) -> _Run:
    """The run's population and directory (before any training)."""
    outputs = RunOutputs(Path(job.out))
    if outputs.checkpoint.exists() and not job.resume:
        raise ConfigError(
            f"{outputs.root} already holds a run; pass --resume or choose another --out"
        )
    context = dict(envs.resolve_context(job.config.env, job.config.context))
    return _Run(index, job, outputs, make_population(job.config), context)


def _start(
    trainer: BasePopulationTrainer,
    runs: Sequence[_Run],
    size: int,
    raise_errors: bool,
    results: list[Result | None],
) -> MemberState:
    """Every run's first checkpoint (fresh, or its saved one), and the batch's state."""
    run_keys, member_keys, configs = [], [], []
    for run in runs:
        key, k_init = jax.random.split(jax.random.PRNGKey(run.job.config.random_seed))
        run.configs = run.pop.ask()
        run_keys.append(key)
        member_keys.append(jax.random.split(k_init, size))
        configs += run.configs
    fresh = trainer.init_members(jnp.concatenate(member_keys), configs)
    # A lone run keeps the state as the trainer made it (host episodes included).
    states = [fresh] if len(runs) == 1 else [_slice(fresh, i, size) for i in range(len(runs))]
    for i, run in enumerate(runs):
        config = run.job.config.model_dump(mode="json")
        run.ckpt = Checkpoint(config, state=states[i], key=run_keys[i], population={})
        try:
            states[i] = _resume(run, states[i])
        except Exception as err:
            _fail(run, err, raise_errors, results)
    if len(runs) == 1:
        return states[0]
    return jax.tree.map(lambda *leaves: jnp.concatenate(leaves), *states)


def _resume(run: _Run, fresh: MemberState) -> MemberState:
    """Restore a saved run into ``run`` (its population and checkpoint); its state."""
    if not run.outputs.checkpoint.exists():
        run.outputs.root.mkdir(parents=True, exist_ok=True)
        return fresh
    saved = Checkpoint.load(run.outputs.checkpoint, template=fresh)
    saved.check_config(run.ckpt.config, run.outputs.root)
    run.pop.load_state_dict(saved.population)
    run.configs = run.pop.ask()
    run.ckpt = saved
    logger.info("resumed %s at step %s", run.outputs.root, run.pop.last_step)
    return saved.state


def _tell(
    run: _Run, step: int, rewards: np.ndarray, raise_errors: bool, results: list[Result | None]
) -> list[Decision]:
    """The run's decisions for this round (its members keep their configs once it failed)."""
    if run.error is None:
        try:
            run.configs = run.pop.ask()
            return run.pop.tell(step, [float(x) for x in rewards])
        except Exception as err:
            _fail(run, err, raise_errors, results)
    return [Keep(m, c) for m, c in enumerate(run.configs)]


def _finish(run: _Run, ppo: PPOConfig, raise_errors: bool, results: list[Result | None]) -> None:
    """Write the finished run's summary and figure (and its meta-data when asked)."""
    config = run.job.config
    try:
        assert run.ckpt is not None
        result = summary(config, run.context, ppo, run.ckpt, run.pop.method.explorer.state_dict())
        if config.save_meta is not None:
            path = save_run(
                config.save_meta,
                run.pop.history,
                task=config.task,
                seed=config.seed,
                method=config.method,
                env=config.env,
                context=run.context,
                protocol=config.protocol,
            )
            logger.info("saved the run as meta-data: %s", path)
        title = f"{config.method} on {config.env} ({config.context}), seed {config.seed}"
        run.outputs.write_final(result, run.pop.history, title)
        results[run.index] = result
    except Exception as err:
        _fail(run, err, raise_errors, results)


def _fail(run: _Run, err: Exception, raise_errors: bool, results: list[Result | None]) -> None:
    if raise_errors:
        raise err
    logger.warning("run %s failed: %s: %s", run.outputs.root, type(err).__name__, err)
    run.error = err
    results[run.index] = err


def _offset(decisions: Sequence[Decision], offset: int) -> list[Decision]:
    """A run's decisions as indices into the batch's members."""
    return [
        Clone(d.member + offset, d.source + offset, d.config)
        if isinstance(d, Clone)
        else Keep(d.member + offset, d.config)
        for d in decisions
    ]


def _slice(state: MemberState, i: int, size: int) -> MemberState:
    """Run ``i``'s members of the batch's state."""
    return jax.tree.map(lambda leaf: leaf[i * size : (i + 1) * size], state)


def _best(rewards: np.ndarray) -> float:
    """The best finite reward of a round (NaN when every member diverged)."""
    return float(np.nanmax(rewards)) if np.isfinite(rewards).any() else float("nan")


def _complete(results: list[Result | None]) -> list[Result]:
    assert all(r is not None for r in results)
    return [r for r in results if r is not None]
