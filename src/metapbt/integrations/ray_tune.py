"""Ray Tune scheduler over our [`Population`][metapbt.population.population.Population].

``MetaPB2`` lets a Ray Tune user switch to any registered method (``pb2-star``, ``meta-prior``,
``multitask``, ``taf``, ``dkl``, ``pbt``, ...) by changing the scheduler, keeping their
trainables, RLlib algorithms and cluster. Ray's ``PopulationBasedTraining`` machinery does what it
does well (pausing trials at a sync point, saving the donors' checkpoints, restoring a cloned
trial from its donor's, logging policies); our ``Population`` decides everything else: which
trials are cloned, from which donor, and with which new hyperparameters. No method is
implemented twice.

Ray exposes no public hook for that, so private methods of ``PopulationBasedTraining`` are
overridden (``_quantiles``, ``_checkpoint_or_exploit``, ``_get_new_config``,
``_save_trial_state``, besides the public ``on_trial_add`` and ``on_trial_result``) and its
private ``_trial_state`` and ``_next_perturbation_sync`` are read and, on restore, written;
a stale entry of the ``TuneController``'s private ``_cached_trial_decisions`` is dropped after an
exploit (a race in Ray 2.60, see ``_drop_stale_stop``).
They are pinned to `SUPPORTED_RAY` (the ``ray`` extra), checked
when the scheduler is built and by a contract test (``tests/integrations``).

Both of Ray's protocols: ``synch=True`` (the paper's: every trial reaches a sync point, the
population is told all rewards at once and decides for everyone,
[`Population.tell`][metapbt.population.population.Population.tell]) and ``synch=False`` (Ray's
default: a trial is decided alone when it reports, against the others' latest rewards,
[`Population.tell_member`][metapbt.population.population.Population.tell_member]).

What Ray's own PB2 lacks, done here: log-scaled, integer and categorical hyperparameters
(our [`SearchSpace`][metapbt.population.space.SearchSpace], or Ray's ``tune.choice``,
``tune.uniform``, ``tune.loguniform`` and ``tune.randint`` domains); new values handed to
trials as plain Python values of the declared type (``float``, ``int``, or the choice
itself); the scheduler's state saved in the experiment directory after every sync point and
restored by ``Tuner.restore`` (Ray's schedulers start again from nothing); the run's history
exported as our ``history.parquet``; misuse refused when the first trial is added (a
``param_space`` value outside a bound or not among a categorical's choices).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from metapbt._atomic import write_text_atomic
from metapbt.errors import ConfigError
from metapbt.metadata.source import MetaSource
from metapbt.population import methods
from metapbt.population.decisions import Clone, Decision
from metapbt.population.initializers import given
from metapbt.population.meta_io import save_run
from metapbt.population.population import Population
from metapbt.population.portfolio import Portfolio
from metapbt.population.space import Categorical, Float, Int, SearchSpace, default_space
from metapbt.runs.resolve import meta_source, task_ref

try:  # the optional ``ray`` extra
    import ray
    from ray.tune.schedulers import PopulationBasedTraining
    from ray.tune.search import sample
except ImportError as _err:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "metapbt.integrations.ray_tune needs Ray Tune: pip install -e '.[ray]'"
    ) from _err

if TYPE_CHECKING:
    from ray.tune.execution.tune_controller import TuneController
    from ray.tune.experiment import Trial

logger = logging.getLogger(__name__)

SUPPORTED_RAY = ("2.60",)
"""Ray minor versions whose private PBT methods this adapter was checked against."""
STATE_FILE = "metapbt_scheduler.json"
"""The scheduler's state, in the experiment directory."""
STATE_SCHEMA = "metapbt.ray-scheduler/1"


def check_ray_version(version: str = ray.__version__) -> None:
    """Raise unless ``version`` is one this adapter supports.

    Raises:
        ConfigError: Naming the supported versions and how to install one.
    """
    if ".".join(version.split(".")[:2]) not in SUPPORTED_RAY:
        raise ConfigError(
            f"metapbt's Ray Tune scheduler supports Ray {', '.join(SUPPORTED_RAY)}.x (it "
            f"overrides private PopulationBasedTraining methods), found {version}; "
            "pip install -e '.[ray]' installs a supported one"
        )


class MetaPB2(PopulationBasedTraining):
    """A Ray Tune population-based scheduler driven by one of our methods.

    Args:
        method: A registered method (``metapbt methods``).
        space: The tuned hyperparameters (a [`SearchSpace`][metapbt.population.space.SearchSpace],
            or a mapping of names to ``Float`` / ``Int`` / ``Categorical`` or to Ray domains:
            ``tune.choice``, ``tune.uniform``, ``tune.loguniform``, ``tune.randint`` with its
            exclusive upper bound; default: the paper's ``lr``, ``lambda``, ``clip``). They are
            top-level keys of the trials' config. A categorical needs a method that handles one
            (``random``, ``pbt``, ``pb2-mix``, ``meta-prior``, ``taf``).
        metadata: Meta-data store (``metapbt metadata build``) for the meta methods.
        target: The task being tuned, as a task id (``"cart_pole earth"``); the meta-data's runs
            of this task are left out. Required with ``metadata``.
        portfolio: A portfolio file (``metapbt portfolio select``): trial ``i`` starts from its
            entry ``i``.
        seed: Seed of the population (initial draws, donors, explores).
        quantile: Truncation-selection quantile of the method's exploit step.
        time_attr: The result field that measures time (sync points are its multiples); an
            integer counter such as ``training_iteration`` (float times are truncated to
            integer steps in the population's history).
        metric: The result field to maximise or minimise.
        mode: ``"max"`` or ``"min"`` (with ``"min"`` the population is told, and its history
            and saved meta-data hold, the negated metric: higher is better there).
        perturbation_interval: Sync-point spacing in ``time_attr`` units.
        synch: The synchronous protocol (all trials decided together at each sync point) or,
            if false, Ray's asynchronous one (each trial decided when it reports).
        log_config: Let Ray write its ``pbt_policy_<trial>.txt`` files (replayable with Ray's
            ``PopulationBasedTrainingReplay``).
        require_attrs: Fail when a result lacks ``time_attr`` or ``metric`` (Ray's check).

    Raises:
        ConfigError: On an unsupported Ray, an unknown method, a meta method without meta-data
            (or meta-data for a method that takes none), or a portfolio built over another
            space.
    """

    def __init__(
        self,
        method: str = "pb2-star",
        space: SearchSpace | Mapping[str, Any] | None = None,
        *,
        metadata: str | Path | None = None,
        target: str | None = None,
        portfolio: str | Path | None = None,
        seed: int = 0,
        quantile: float = 0.25,
        time_attr: str = "training_iteration",
        metric: str | None = None,
        mode: str | None = None,
        perturbation_interval: float = 4,
        synch: bool = True,
        log_config: bool = True,
        require_attrs: bool = True,
    ) -> None:
        check_ray_version()
        self.space = _as_space(space)
        self.method_name = methods.METHODS.check(method)
        self._method = methods.make(
            method, quantile, metadata=_meta_source(method, metadata, target)
        )
        self._seed = seed
        self._given: list[dict[str, float]] = []
        if portfolio:
            loaded = Portfolio.load(portfolio)
            loaded.check_space(self.space)
            self._given = loaded.configs
        self._draws = np.random.default_rng([seed, 1])
        self._members: list[Any] = []  # trials in member order
        self._initial: list[dict[str, float | int]] = []
        self._population: Population | None = None
        self._decisions: dict[Any, Decision] = {}
        self._restored: dict[str, Any] | None = None
        self._before: dict[str, Any] | None = None  # the population before the last tell
        self._reporting: Any = None  # asynchronous mode: the trial whose result is handled
        self._state_path: Path | None = None
        super().__init__(
            time_attr=time_attr,
            metric=metric,
            mode=mode,
            perturbation_interval=perturbation_interval,
            hyperparam_mutations={name: [] for name in self.space},  # filled by us
            quantile_fraction=quantile,
            resample_probability=0.0,
            log_config=log_config,
            require_attrs=require_attrs,
            synch=synch,
        )

    # --- trials join ---------------------------------------------------------------------------

    def on_trial_add(self, tune_controller: TuneController, trial: Trial) -> None:
        """Give the trial its member index and initial hyperparameters (or restore them)."""
        if self._state_path is None:
            self._state_path = Path(trial.local_experiment_path) / STATE_FILE
            if self._state_path.exists():
                saved = _read_state(self._state_path)
                if trial.trial_id in saved.get("trials", {}):  # Tuner.restore of this experiment
                    self._restored = saved
                    self._load(saved)
                else:
                    logger.warning(
                        "MetaPB2: %s belongs to other trials (a new experiment in an old "
                        "directory); starting a new population, the file will be overwritten",
                        self._state_path,
                    )
        restored = (self._restored or {}).get("trials", {}).get(trial.trial_id)
        if restored is None:
            if self._population is not None:
                raise ConfigError(
                    "MetaPB2 cannot add trials after the first sync point: its population "
                    f"has {self._population.size} members"
                )
            config = self._initial_config(trial.config, len(self._members))
            trial.config.update(config)
            self._members.append(trial)
            self._initial.append(config)
        else:
            self._members[restored["member"]] = trial
        trial.evaluated_params.update({k: trial.config[k] for k in self.space})
        # Ray's PBT would sample the keys from hyperparam_mutations: they are set already.
        super().on_trial_add(tune_controller, trial)
        if restored is not None:
            state = self._trial_state[trial]
            state.last_perturbation_time = restored["last_perturbation_time"]
            state.last_train_time = restored["last_train_time"]
            state.last_score = restored["last_score"]

    def _initial_config(self, config: Mapping[str, Any], member: int) -> dict[str, Any]:
        """The trial's starting values of the tuned keys.

        A key the user's ``param_space`` sets (a value, or a ``tune.choice`` Ray sampled) is
        checked and kept; the others come from the portfolio entry or a draw.
        """
        start = self._given[member] if member < len(self._given) else self.space.sample(self._draws)
        given_keys = [k for k in self.space if k in config]
        try:
            values = self.space.validate({**start, **{k: config[k] for k in given_keys}})
        except ConfigError as err:
            raise ConfigError(
                f"the trial's param_space disagrees with MetaPB2's space {self.space}: "
                f"{err} (set each tuned key inside its bounds or among its choices, or leave "
                "it to the scheduler)"
            ) from None
        return _plain(self.space, values)

    # --- sync points ---------------------------------------------------------------------------

    def _save_trial_state(
        self, state: Any, time: int, result: dict[str, Any], trial: Trial
    ) -> float:
        self._reporting = trial
        return super()._save_trial_state(state, time, result, trial)

    def _quantiles(self) -> tuple[list[Trial], list[Trial]]:
        """Tell the population; cloned trials are the lower quantile, their donors the upper."""
        if not self._synch:
            return self._tell_one(self._reporting)
        states = [None if t is None else self._trial_state.get(t) for t in self._members]
        times = [s.last_train_time for s in states if s is not None and s.last_score is not None]
        if not times:
            return [], []
        step = int(max(times))
        population = self._population_now()
        if population.last_step is not None and step <= population.last_step:
            return [], []  # no new sync point (Ray may ask again)
        rewards = [
            None
            if t is None or s is None or s.last_score is None or t.is_finished()
            else s.last_score
            for t, s in zip(self._members, states, strict=True)
        ]
        self._before = population.state_dict() if population.last_step is not None else None
        decisions = population.tell(step, rewards)
        self._decisions = {self._members[d.member]: d for d in decisions}
        clones = [
            d
            for d in decisions
            if isinstance(d, Clone) and not self._members[d.member].is_finished()
        ]
        lower = [self._members[d.member] for d in clones]
        upper = list(dict.fromkeys(self._members[d.source] for d in clones))
        return lower, upper

    def _tell_one(self, trial: Trial) -> tuple[list[Trial], list[Trial]]:
        """Asynchronous mode: the reporting trial alone, against the others' latest rewards.

        A kept trial counts as upper quantile, so Ray saves its checkpoint: any trial may be
        chosen as a donor later, and Ray skips an exploit whose donor has no checkpoint.
        """
        population = self._population_now()
        state = self._trial_state[trial]
        member = self._members.index(trial)
        self._before = population.state_dict()
        decision = population.tell_member(member, int(state.last_train_time), state.last_score)
        self._decisions = {trial: decision}
        if isinstance(decision, Clone):
            return [trial], [self._members[decision.source]]
        return [], [trial]

    def _checkpoint_or_exploit(
        self,
        trial: Trial,
        tune_controller: TuneController,
        upper_quantile: list[Trial],
        lower_quantile: list[Trial],
    ) -> None:
        decision = self._decisions.get(trial)
        if isinstance(decision, Clone) and trial in lower_quantile:
            # Ray clones a random upper-quantile trial: give it the population's donor only.
            donor = self._members[decision.source]
            super()._checkpoint_or_exploit(trial, tune_controller, [donor], lower_quantile)
            _drop_stale_stop(tune_controller, trial)
            applied = {k: trial.config.get(k) for k in self.space}
            if not _same_config(applied, _plain(self.space, decision.config)):
                logger.warning(
                    "MetaPB2: Ray did not clone trial %s into %s (no checkpoint of the donor); "
                    "the population's record of this exploit is wrong. Report a checkpoint at "
                    "every sync point.",
                    donor.trial_id,
                    trial.trial_id,
                )
            return
        super()._checkpoint_or_exploit(trial, tune_controller, upper_quantile, lower_quantile)

    def _get_new_config(
        self, trial: Trial, trial_to_clone: Trial
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The donor's config with the population's new hyperparameters (plain numbers)."""
        decision = self._decisions[trial]
        config = dict(trial_to_clone.config)
        config.update(_plain(self.space, decision.config))
        return config, {}

    def on_trial_result(
        self, tune_controller: TuneController, trial: Trial, result: dict[str, Any]
    ) -> str:
        """Ray's PBT step; the scheduler's state is saved after every sync point."""
        before = None if self._population is None else len(self._population.history)
        decision = super().on_trial_result(tune_controller, trial, result)
        if self._population is not None and len(self._population.history) != before:
            self.save_state()
        return decision

    def _population_now(self) -> Population:
        if self._population is None:
            self._population = Population(
                self.space,
                len(self._members),
                self._method,
                self._seed,
                initializer=given(self._initial),
            )
            if self._restored is not None:
                self._restore_population(self._restored)
        return self._population

    def _restore_population(self, data: Mapping[str, Any]) -> None:
        """Load the saved population whose configs the restored trials run with.

        Ray may have saved its experiment before or after it applied our last sync point's
        clones (an interrupt lands anywhere). The trials' restored hyperparameters say which:
        those after the last tell (it was applied), or those before it (Ray lost it: so do we,
        and that sync point is not in the history).
        """
        assert self._population is not None
        running = {
            i: {k: t.config[k] for k in self.space}
            for i, t in enumerate(self._members)
            if t is not None
        }
        for key in ("population", "population_before"):
            state = data[key]
            configs = self._initial if state is None else state["configs"]
            if all(_same_config(configs[i], c) for i, c in running.items()):
                if state is not None:
                    self._population.load_state_dict(state)
                if key == "population_before":
                    logger.warning(
                        "MetaPB2: Ray restored the trials from before the last sync point's "
                        "clones; the population continues from before it too"
                    )
                return
        raise ConfigError(
            f"the restored trials' hyperparameters match neither state in {self._state_path}; "
            "was it written by another experiment?"
        )

    # --- state, history ------------------------------------------------------------------------

    @property
    def population(self) -> Population | None:
        """The population (``None`` before the first sync point)."""
        return self._population

    @property
    def initial_configs(self) -> list[dict[str, float | int]]:
        """Every member's initial hyperparameters, in member order."""
        return [dict(c) for c in self._initial]

    def save_state(self, path: str | Path | None = None) -> Path:
        """Write the scheduler's state (default: ``<experiment>/metapbt_scheduler.json``)."""
        path = Path(path) if path is not None else self._state_path
        if path is None:
            raise ConfigError("no trial has been added yet: nothing to save")
        trials = {}
        for member, trial in enumerate(self._members):
            state = self._trial_state.get(trial)
            trials[trial.trial_id] = {
                "member": member,
                "last_perturbation_time": getattr(state, "last_perturbation_time", 0),
                "last_train_time": getattr(state, "last_train_time", 0),
                "last_score": getattr(state, "last_score", None),
            }
        data = {
            "schema": STATE_SCHEMA,
            "method": self.method_name,
            "space": self.space.to_dict(),
            "initial": self._initial,
            "next_sync": self._next_perturbation_sync,
            "trials": trials,
            "population": None if self._population is None else self._population.state_dict(),
            "population_before": self._before,
        }
        write_text_atomic(path, json.dumps(data, default=float))
        return path

    def _load(self, data: Mapping[str, Any]) -> None:
        if data["method"] != self.method_name:
            raise ConfigError(
                f"{self._state_path} holds a {data['method']!r} scheduler, this is "
                f"{self.method_name!r}: restore with the same scheduler"
            )
        if SearchSpace.from_dict(data["space"]) != self.space:
            raise ConfigError(f"{self._state_path} was written over another search space")
        self._initial = [dict(c) for c in data["initial"]]
        self._members = [None] * len(self._initial)
        self._next_perturbation_sync = data["next_sync"]
        logger.info("MetaPB2: restoring its state from %s", self._state_path)

    def save_meta(
        self, store: str | Path, task: str, protocol: Mapping[str, Any] | None = None
    ) -> Path:
        """Append this run to a meta-data store, as ``metapbt run --save-meta`` does.

        Args:
            store: The meta-data directory.
            task: The tuned task's id (``"cart_pole earth"``, or any ``"<env> <context>"``).
            protocol: Its protocol, recorded as provenance (``preset``, ``population``,
                ``budget``, ``interval``); ``None``: unknown.
        """
        if self._population is None:
            raise ConfigError("no sync point yet: nothing to save")
        ref = task_ref(task)
        return save_run(
            store,
            self._population.history,
            task=task,
            seed=self._seed,
            method=self.method_name,
            env=ref.env,
            context=ref.context,
            protocol=protocol,
        )

    def write_history(self, path: str | Path) -> Path:
        """The population's history as ``history.parquet`` (``metapbt.history/1``)."""
        if self._population is None:
            raise ConfigError("no sync point yet: the history is empty")
        path = Path(path)
        self._population.history.to_parquet(path)
        return path


def _drop_stale_stop(tune_controller: TuneController, trial: Trial) -> None:
    """Forget the STOP that Ray's exploit of a still-saving trial leaves behind (issue 43).

    Ray's exploit pauses a clone that is not yet PAUSED with ``pause_trial(trial,
    should_checkpoint=False)``, which stops the trial's actor. In synchronous mode that trial
    can still be RUNNING with its sync point's save in flight (a slow save, a loaded machine):
    ``_schedule_trial_stop`` then caches a STOP decision "for after the save", drops the save,
    and sets the trial PAUSED. The cached STOP outlives the exploit: the clone restarts from its
    donor's checkpoint, and the first save Tune processes for it afterwards (its next report
    that carries a checkpoint) executes the STOP. The clone ended TERMINATED after one report,
    and the population was told no reward for it at the later sync points. A PAUSED trial that
    was just cloned has nothing left to stop, so the decision is dropped. Reproduced
    deterministically by ``tests/integrations/test_ray_tune.py`` (a sync point's save that
    outlasts the last trial's report).
    """
    decisions = getattr(tune_controller, "_cached_trial_decisions", None)
    if (
        trial.status == trial.PAUSED
        and decisions is not None
        and decisions.get(trial.trial_id) == PopulationBasedTraining.STOP
    ):
        del decisions[trial.trial_id]
        logger.debug("MetaPB2: dropped Ray's stale STOP of the cloned trial %s", trial.trial_id)


def _as_space(space: SearchSpace | Mapping[str, Any] | None) -> SearchSpace:
    """Our search space from ours, or from a mapping of our parameters or Ray's domains."""
    if space is None:
        return default_space()
    if isinstance(space, SearchSpace):
        return space
    return SearchSpace({name: _param(name, value) for name, value in space.items()})


def _param(name: str, value: Any) -> Any:
    """A Ray domain as our parameter (ours pass through; anything else is refused).

    ``tune.choice`` -> [`Categorical`][metapbt.population.space.Categorical]; ``tune.uniform`` /
    ``tune.loguniform`` -> [`Float`][metapbt.population.space.Float]; ``tune.randint(a, b)`` /
    ``tune.lograndint(a, b)`` -> ``Int(a, b - 1)`` (Ray's upper bound is exclusive, ours inclusive).
    Quantised domains are refused.
    """
    if isinstance(value, Float | Categorical):
        return value
    if isinstance(value, sample.Categorical):
        return Categorical(tuple(value.categories))
    if isinstance(value, sample.Float | sample.Integer):
        sampler = value.get_sampler()
        if isinstance(sampler, sample.Quantized) or not isinstance(
            sampler, sample.LogUniform | sample.Uniform
        ):
            raise ConfigError(
                f"{name!r}: MetaPB2 takes uniform, log-uniform and choice domains, got "
                f"{type(sampler).__name__}"
            )
        log = isinstance(sampler, sample.LogUniform)
        if isinstance(value, sample.Integer):
            return Int(int(value.lower), int(value.upper) - 1, log)
        return Float(float(value.lower), float(value.upper), log)
    raise ConfigError(
        f"{name!r}: expected a Float, Int or Categorical, or a tune.choice / uniform / "
        f"loguniform / randint domain, got {value!r}"
    )


def _plain(space: SearchSpace, config: Mapping[str, Any]) -> dict[str, Any]:
    """Python values of each parameter's declared type (never numpy scalars).

    ``int`` for integers, ``float`` for reals, a categorical's choice as declared (its own
    ``str``, ``int``, ``float`` or ``bool``).
    """
    out: dict[str, Any] = {}
    for k, v in config.items():
        param = space[k]
        if isinstance(param, Categorical):
            out[k] = param.choices[param.index(v)]
        else:
            out[k] = int(v) if param.kind == "int" else float(v)
    return out


def _meta_source(method: str, metadata: str | Path | None, target: str | None) -> MetaSource | None:
    """The method's meta-data, resolved as a run's is.

    By [`meta_source`][metapbt.runs.resolve.meta_source].
    """
    if methods.uses_metadata(method) and (metadata is None or target is None):
        raise ConfigError(
            f"method {method!r} learns from previous runs: pass metadata= (a store built by "
            "`metapbt metadata build`) and target= (this task's id, left out of it)"
        )
    ref = None if target is None else task_ref(target)
    root = None if metadata is None else Path(metadata)
    return meta_source(method, root, ref)


def _same_config(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return a.keys() == b.keys() and all(_same_value(a[k], b[k]) for k in a)


def _same_value(a: Any, b: Any) -> bool:
    if isinstance(a, str | bool) or isinstance(b, str | bool):
        return type(a) is type(b) and a == b
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=0.0)


def _read_state(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path} is not a readable scheduler state ({err}); delete it") from None
    if data.get("schema") != STATE_SCHEMA:
        raise ConfigError(f"{path} is not a {STATE_SCHEMA} file")
    return data
