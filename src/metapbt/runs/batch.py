"""Several runs trained together: one compiled program per interval for all their members.

Runs that share an environment, a context, a preset and a protocol (budget, interval,
population) can train as one population of ``runs x members``: each member carries its own
hyperparameters and random key inside the program, while each run keeps its own
[`Population`][metapbt.population.population.Population] (ask/tell, explores, meta-data,
portfolio), checkpoint and output files on the host, between intervals. A run in a batch
writes exactly what [`metapbt.runs.run.run`][metapbt.runs.run.run] writes, after every round.

Every run's random keys are its own (split from its seed as a lone run splits them), so its
result does not depend on the batch it ran in, up to XLA's arithmetic: see
``tests/runs/test_batch.py`` and docs/guides/studies.md.

A run that fails (its meta-data is refused, its explorer raises) is reported and left behind;
the others go on. Its members keep their slot in the program until the batch ends (dropping
them would recompile), training on with their last hyperparameters, unrecorded.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from metapbt._atomic import remove_dead_temporaries, write_text_atomic
from metapbt._deprecation import renamed
from metapbt.engine.factory import make_trainer
from metapbt.engine.ppo import MemberState
from metapbt.engine.trainer_base import BasePopulationTrainer
from metapbt.envs.contexts import Context
from metapbt.errors import ConfigError
from metapbt.population.decisions import Clone, Decision, Keep
from metapbt.population.history import NO_SOURCE
from metapbt.population.meta_io import save_run
from metapbt.population.population import Population
from metapbt.population.space import Config
from metapbt.runs.checkpoint import Checkpoint
from metapbt.runs.config import RunConfig
from metapbt.runs.loggers import RoundReport, RunLogger
from metapbt.runs.outputs import PHASES, RunOutputs, summary
from metapbt.runs.resolve import ResolvedRun, batch_key, resolve

logger = logging.getLogger(__name__)

Result = dict[str, Any] | BaseException
"""A run's summary (``metapbt.summary/1``), or the error that stopped it."""

_RENAMED = {
    "run_groups": "metapbt.runs.resume.run_groups",
    "set_aside_corrupt": "metapbt.runs.resume.set_aside_corrupt",
}
"""Names that moved to the resume policy's module; they still import from here, with a
``DeprecationWarning`` (``metapbt._deprecation``)."""


def __getattr__(name: str) -> Any:
    return renamed(__name__, name, _RENAMED)


@dataclass(frozen=True)
class RunJob:
    """One run of a batch: its config, its directory, and whether to resume it there.

    Attributes:
        config: The run's settings.
        out: Its directory.
        resume: Continue the run saved in ``out``.
        loggers: What watches its finished rounds (`RunLogger`);
            outputs, not settings. The batch closes them when it ends, however it ends.
        resolved: ``config`` resolved already ([`resolve`][metapbt.runs.resolve.resolve]);
            ``None``: the batch resolves it.
    """

    config: RunConfig
    out: Path
    resume: bool = False
    loggers: tuple[RunLogger, ...] = ()
    resolved: ResolvedRun | None = None

    def __post_init__(self) -> None:
        if self.resolved is not None and self.resolved.config != self.config:
            raise ValueError("a RunJob's resolved run must be its config's (resolve(config))")


def run_batch(
    jobs: Sequence[RunJob],
    on_round: Callable[[int, RoundReport], None] | None = None,
    raise_errors: bool = False,
) -> list[Result]:
    """Train ``jobs`` together; return each run's summary, or the error that stopped it.

    Args:
        jobs: Runs with one [`batch_key`][metapbt.runs.resolve.batch_key].
        on_round: Called with a run's index and report after each of its finished rounds.
        raise_errors: Re-raise the first error of any run (a lone ``metapbt run``) instead of
            returning it.

    Every job's loggers see each of its finished rounds, after its files are written (before
    ``on_round``); they are closed when this returns or raises.

    Raises:
        ConfigError: If the jobs cannot share a batch (different keys, different numbers of
            finished rounds), or are empty; both before any trainer is built.
    """
    try:
        batch = Batch(jobs, raise_errors)
        if batch.runs:
            batch.train(on_round)
        return batch.results()
    finally:
        for job in jobs:
            for log in job.loggers:
                log.close()


class Batch:
    """The runs of one batch, their trainer, and what each run has returned so far.

    Built from jobs: every run resolved ([`resolve`][metapbt.runs.resolve.resolve]) and its
    directory checked; the batch refused before a trainer exists when its runs cannot train
    together. `train` then builds the trainer and trains every remaining round.

    Args:
        jobs: Runs with one batch key.
        raise_errors: Re-raise a run's error instead of recording it.
    """

    def __init__(self, jobs: Sequence[RunJob], raise_errors: bool = False) -> None:
        if not jobs:
            raise ConfigError("a batch needs at least one run")
        keys = {batch_key(j.config, mix_contexts=True) for j in jobs}
        if len(keys) > 1:
            raise ConfigError(
                "runs of one batch must share env, context, preset and protocol (the contexts "
                f"of a classic-control env may differ); got {keys}"
            )
        self.raise_errors = raise_errors
        self._results: list[Result | None] = [None] * len(jobs)
        self.runs: list[_Run] = []
        for i, job in enumerate(jobs):
            try:
                self.runs.append(_setup(i, job))
            except Exception as err:
                self._record(i, job.out, err)
        # Refused before a trainer is built: runs.resume.run_groups splits such runs into groups.
        saved = {Checkpoint.finished_rounds(run.outputs.checkpoint) for run in self.runs}
        saved.discard(-1)  # unreadable: that run's resume fails on its own below
        if len(saved) > 1:
            raise ConfigError(
                "runs of one batch must have finished the same number of rounds, got "
                f"{sorted(saved)}"
            )
        first = jobs[0].config
        assert first.interval is not None  # validation fills it in
        self.size, self.rounds, self.interval = first.population, first.rounds, first.interval
        # Seconds of this process's train() per phase (runs.outputs.PHASES).
        self.phases = dict.fromkeys(PHASES, 0.0)
        self._tick = time.perf_counter()

    def _phase(self, name: str) -> None:
        """Book the time since the last booking to ``name``."""
        now = time.perf_counter()
        self.phases[name] += now - self._tick
        self._tick = now

    def results(self) -> list[Result]:
        """Each run's summary or error, in job order (after `train`)."""
        assert all(r is not None for r in self._results)
        return [r for r in self._results if r is not None]

    def train(self, on_round: Callable[[int, RoundReport], None] | None = None) -> None:
        """Build the trainer, then train, evaluate, tell and write every remaining round."""
        runs, size = self.runs, self.size
        self._tick = time.perf_counter()
        # One context: constants of the trainer's programs; several: one per member, traced.
        # Resolved once (the runs' configs): the trainer takes them as they are.
        contexts = [Context(run.resolved.context) for run in runs for _ in range(size)]
        same = all(c == contexts[0] for c in contexts)
        first = runs[0].resolved
        trainer = make_trainer(
            first.config.env,
            contexts[0] if same else contexts,
            first.agent_config,
            len(contexts),
            agent=first.config.agent,
        )
        state = self._start(trainer)
        self._phase("start")
        done = {len(r.ckpt.records) for r in runs if r.error is None and r.ckpt is not None}
        for r in range(min(done, default=self.rounds) + 1, self.rounds + 1):
            state = self._round(trainer, state, r, on_round)
        for run in runs:
            if run.error is None:
                self._finish(run)
        self._phase("finish")
        self._write_timings()

    def _write_timings(self) -> None:
        """Log where the batch's time went; each run's ``timings.json`` gets its share."""
        total = sum(self.phases.values()) or 1.0
        logger.info(
            "batch of %d runs, %.1f s: %s",
            len(self.runs),
            total,
            ", ".join(f"{k} {v:.1f} s ({100 * v / total:.0f} %)" for k, v in self.phases.items()),
        )
        share = {k: v / len(self.runs) for k, v in self.phases.items()}
        text = json.dumps({"runs_in_batch": len(self.runs), "seconds": share}, indent=2)
        for run in self.runs:
            if run.error is None:
                write_text_atomic(run.outputs.timings, text)

    def _round(
        self,
        trainer: BasePopulationTrainer,
        state: MemberState,
        r: int,
        on_round: Callable[[int, RoundReport], None] | None,
    ) -> MemberState:
        """Round ``r`` of every run: train, evaluate, tell, apply, write; the new state."""
        runs, size = self.runs, self.size
        start = time.perf_counter()
        step = r * self.interval
        self._phase("write")  # between rounds: the loggers' and callers' work
        state = jax.block_until_ready(trainer.train(state, self.interval))
        self._phase("train")
        eval_keys = []
        for run in runs:
            key, k_eval = jax.random.split(run.checkpoint.key)
            run.ckpt = replace(run.checkpoint, key=key)
            eval_keys.append(jax.random.split(k_eval, size))
        rewards = trainer.evaluate_members(state, jnp.concatenate(eval_keys))
        self._phase("evaluate")
        shared = (time.perf_counter() - start) / len(runs)
        decisions: list[Decision] = []
        for i, run in enumerate(runs):
            tick = time.perf_counter()
            own = rewards[i * size : (i + 1) * size]
            mine = self._tell(run, step, own)
            run.clone_sources = [d.source if isinstance(d, Clone) else NO_SOURCE for d in mine]
            decisions += _offset(mine, i * size)
            run.seconds = shared + time.perf_counter() - tick
        self._phase("explore")
        if r < self.rounds:
            state = trainer.apply(state, decisions)
        parts = trainer.split(state, len(runs))
        self._phase("apply")
        for i, run in enumerate(runs):
            if run.error is not None:
                continue
            own = rewards[i * size : (i + 1) * size]
            run.ckpt = replace(
                run.checkpoint,
                state=parts[i],
                population=run.pop.state_dict(),
                records=(*run.checkpoint.records, {"step": step, "best": _best(own)}),
                elapsed=run.checkpoint.elapsed + run.seconds,
            )
            run.outputs.write_round(run.pop.history, run.checkpoint)
            report = RoundReport(
                r, self.rounds, step, own.tolist(), run.configs, run.seconds, run.clone_sources
            )
            for log in run.loggers:
                log.log_round(report)
            if on_round is not None:
                on_round(run.index, report)
        self._phase("write")
        return state

    def _start(self, trainer: BasePopulationTrainer) -> MemberState:
        """Every run's first checkpoint (fresh, or its saved one), and the batch's state."""
        run_keys, member_keys, configs = [], [], []
        for run in self.runs:
            key, k_init = jax.random.split(jax.random.PRNGKey(run.resolved.config.random_seed))
            run.configs = run.pop.ask()
            run_keys.append(key)
            member_keys.append(jax.random.split(k_init, self.size))
            configs += run.configs
        fresh = trainer.init_members(jnp.concatenate(member_keys), configs)
        states = trainer.split(fresh, len(self.runs))
        for i, run in enumerate(self.runs):
            config = run.resolved.config.model_dump(mode="json")
            run.ckpt = Checkpoint(config, state=states[i], key=run_keys[i], population={})
            try:
                states[i] = _resume(run, states[i])
            except Exception as err:
                self._fail(run, err)
        return trainer.join(states)

    def _tell(self, run: _Run, step: int, rewards: np.ndarray) -> list[Decision]:
        """The run's decisions for this round (its members keep their configs once it failed)."""
        if run.error is None:
            try:
                run.configs = run.pop.ask()
                return run.pop.tell(step, [float(x) for x in rewards])
            except Exception as err:
                self._fail(run, err)
        return [Keep(m, c) for m, c in enumerate(run.configs)]

    def _finish(self, run: _Run) -> None:
        """Write the finished run's summary and figure (and its meta-data when asked)."""
        resolved = run.resolved
        config = resolved.config
        try:
            assert run.ckpt is not None
            context = dict(resolved.context)
            state = run.pop.method.explorer.state_dict()
            result = summary(config, context, resolved.agent_config, run.ckpt, state)
            if config.save_meta is not None:
                path = save_run(
                    config.save_meta,
                    run.pop.history,
                    task=config.task,
                    seed=config.seed,
                    method=config.method,
                    env=config.env,
                    context=context,
                    protocol=config.protocol,
                )
                logger.info("saved the run as meta-data: %s", path)
            title = f"{config.method} on {config.env} ({config.context}), seed {config.seed}"
            run.outputs.write_final(result, run.pop.history, title)
            self._results[run.index] = result
        except Exception as err:
            self._fail(run, err)

    def _fail(self, run: _Run, err: Exception) -> None:
        run.error = err
        self._record(run.index, run.outputs.root, err)

    def _record(self, index: int, where: Path, err: Exception) -> None:
        if self.raise_errors:
            raise err
        logger.warning("run %s failed: %s: %s", where, type(err).__name__, err)
        self._results[index] = err


@dataclass
class _Run:
    """One run's host-side state inside a batch."""

    index: int
    resolved: ResolvedRun
    outputs: RunOutputs
    pop: Population
    ckpt: Checkpoint | None = None
    configs: list[Config] = field(default_factory=list)
    clone_sources: list[int] = field(default_factory=list)
    loggers: tuple[RunLogger, ...] = ()
    seconds: float = 0.0
    error: BaseException | None = None

    @property
    def checkpoint(self) -> Checkpoint:
        """The run's checkpoint, which the batch's start sets before any round."""
        assert self.ckpt is not None
        return self.ckpt


def _setup(index: int, job: RunJob) -> _Run:
    """The run's population and directory (before any training)."""
    outputs = RunOutputs(Path(job.out), {"agent": job.config.agent})
    if outputs.checkpoint.exists() and not job.resume:
        raise ConfigError(
            f"{outputs.root} already holds a run; pass --resume or choose another --out"
        )
    resolved = resolve(job.config) if job.resolved is None else job.resolved
    return _Run(index, resolved, outputs, resolved.population(), loggers=job.loggers)


def _resume(run: _Run, fresh: MemberState) -> MemberState:
    """Restore a saved run into ``run`` (its population and checkpoint); its state."""
    run.outputs.root.mkdir(parents=True, exist_ok=True)
    for tmp in remove_dead_temporaries(run.outputs.root):  # a write its process did not finish
        logger.info("removed %s, left by a killed process", tmp)
    if not run.outputs.checkpoint.exists():
        return fresh
    saved = Checkpoint.load(run.outputs.checkpoint, template=fresh)
    saved.check_config(run.checkpoint.config, run.outputs.root)
    run.pop.load_state_dict(saved.population)
    run.configs = run.pop.ask()
    run.ckpt = saved
    logger.info("resumed %s at step %s", run.outputs.root, run.pop.last_step)
    return saved.state


def _offset(decisions: Sequence[Decision], offset: int) -> list[Decision]:
    """A run's decisions as indices into the batch's members."""
    return [
        Clone(d.member + offset, d.source + offset, d.config)
        if isinstance(d, Clone)
        else Keep(d.member + offset, d.config)
        for d in decisions
    ]


def _best(rewards: np.ndarray) -> float:
    """The best finite reward of a round (NaN when every member diverged)."""
    return float(np.nanmax(rewards)) if np.isfinite(rewards).any() else float("nan")
