"""The run configuration: one typed, frozen, validated object that the CLI and study files fill.

[`TrainingProtocol`][metapbt.runs.config.TrainingProtocol] holds the settings every run of a
comparison shares (the reference protocol's values by default, ``classic`` PPO; a run's budget and
interval default to its preset's); [`RunConfig`][metapbt.runs.config.RunConfig] adds what names one
run. Both are validated on construction (pydantic). A study file embeds
[`TrainingProtocol`][metapbt.runs.config.TrainingProtocol] as its ``[protocol]`` table, so its
errors name the key (``protocol.population``); [`RunConfig`][metapbt.runs.config.RunConfig] raises
[`ConfigError`][metapbt.errors.ConfigError] naming each bad field. ``Protocol``, this class's old
name (it shadowed ``typing.Protocol``), still imports, with a ``DeprecationWarning``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from metapbt import envs
from metapbt._deprecation import renamed
from metapbt.engine import agents, presets
from metapbt.envs.contexts import task_id
from metapbt.errors import ConfigError
from metapbt.metadata.source import PROTOCOL_KEYS
from metapbt.population import methods
from metapbt.population.space import SearchSpace, default_space

POOLED = "pooled"
"""``metadata = "pooled"``: every environment's bundled planets store at once (the target left
out: 19 tasks around a classic-control target), as the Meta-PB2 paper pooled its meta-data."""

_RENAMED = {"Protocol": "metapbt.runs.config.TrainingProtocol"}
"""Old names that still import, each with a ``DeprecationWarning`` (``metapbt._deprecation``)."""


def __getattr__(name: str) -> Any:
    return renamed(__name__, name, _RENAMED)


LEGACY: dict[str, Any] = {"seeding": "shared", "init_ranges": None, "space": None, "agent": "ppo"}
"""The value of each setting that older runs did not record: what they ran with.

A summary or checkpoint written before a setting existed lacks its key; it counts as this
value (runs before ``seeding`` existed derived everything from the seed alone).
"""


def with_legacy(recorded: dict[str, Any]) -> dict[str, Any]:
    """A recorded run configuration, completed with the legacy values.

    The keys it lacks take their [`LEGACY`][metapbt.runs.config.LEGACY] values.
    """
    return {**LEGACY, **recorded}


def check_init_ranges(
    value: dict[str, tuple[float, float]] | None,
    space: SearchSpace | None = None,
) -> dict[str, tuple[float, float]] | None:
    """``init_ranges`` as given, if every range lies inside ``space`` (default: the default).

    Raises:
        ValueError: On an empty mapping, an unknown name or a range outside its bounds.
    """
    if value is None:
        return None
    if not value:
        raise ValueError("give at least one NAME = [low, high], or leave it out")
    try:
        (space or default_space()).narrowed(value)
    except ConfigError as err:
        raise ValueError(str(err)) from None
    return value


def check_space(
    value: dict[str, dict[str, Any]] | None, preset: str, agent: str = "ppo"
) -> dict[str, dict[str, Any]] | None:
    """``space`` as given, if it is a search space ``agent`` can tune under ``preset``.

    Raises:
        ValueError: On a malformed parameter, or one the agent cannot tune (its message
            names the parameter and what the agent takes).
    """
    if value is None:
        return None
    try:
        kind = agents.kind(agent)
        kind.for_space(kind.preset(preset), SearchSpace.from_dict(value))
    except ConfigError as err:
        raise ValueError(str(err)) from None
    return value


def derived_seed(seed: int, task: str) -> int:
    """A 31-bit seed from ``(seed, task)``: independent streams per task, equal across methods.

    Examples:
        ```pycon
        >>> earth = derived_seed(0, "cart_pole earth")
        >>> mars = derived_seed(0, "cart_pole mars")
        >>> earth == derived_seed(0, "cart_pole earth"), earth != mars
        (True, True)

        ```
    """
    digest = hashlib.sha256(f"{seed}|{task}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFF_FFFF


def describe(err: ValidationError) -> str:
    """Every problem of a pydantic error as ``"key: message"`` (the key of a field), by ``"; "``."""
    problems = []
    for e in err.errors():
        if e["type"] == "string_type" and isinstance(e["input"], dict):
            continue  # a table checked against the ``str`` branch of a union: not meant so
        # Union branches ("function-after[_meta(), StudyMethod]", "str") are not keys.
        loc = [p for p in e["loc"] if not (isinstance(p, str) and ("[" in p or p == "str"))]
        key = ".".join(str(p) for p in loc)
        message = e["msg"].removeprefix("Value error, ")
        problems.append(f"{key}: {message}" if key else message)
    return "; ".join(problems)


class TrainingProtocol(BaseModel):
    """Settings shared by every run of a comparison (the reference protocol by default).

    Args:
        agent: The learner (`metapbt.engine.agents.AGENTS`: ``ppo``, ``dqn``).
        preset: The agent's preset (PPO's: ``metapbt.engine.presets``; DQN's:
            ``metapbt.engine.dqn_presets``).
        population: Number of members.
        budget: Environment steps per member (a multiple of ``interval``); ``None``: the
            preset's default (`metapbt.engine.presets.use`; ``classic``: 600,000).
            Always an int after validation, so ``model_dump()`` records the value used.
        interval: Steps per member between sync points (a multiple of the preset's batch);
            ``None``: the preset's default (``classic``: 40,000).
        quantile: Truncation-selection quantile, in (0, 0.5].
        strict: Refuse meta-data recorded under another protocol (preset, population,
            budget, interval) or none, instead of warning.
        seeding: ``"task"``: a run's initial population, network weights and environment keys
            derive from (seed, task) ([`derived_seed`][metapbt.runs.config.derived_seed]), so seed
            ``k`` draws a different initial population on every task while every method of one
            (seed, task) starts from the same one (common random numbers). ``"shared"``: from the
            seed alone, the same initial population on every task (how every run before this setting
            was seeded, e.g. the committed classic-control reproduction).
        space: The tuned hyperparameters, by name
            ([`to_dict`][metapbt.population.space.SearchSpace.to_dict]'s form:
            ``{"type": "float"|"int", "low", "high", "log"}`` or
            ``{"type": "categorical", "choices": [...]}``); the agent's names and kinds (PPO's:
            `metapbt.engine.tuning.TUNABLE`). ``None``: the agent's default space (PPO: the paper's
            ``lr``, ``lambda``, ``clip``).

    Raises:
        pydantic.ValidationError: On invalid settings (a ``ValueError``; the study loader and
            [`RunConfig`][metapbt.runs.config.RunConfig] turn it into a
            [`ConfigError`][metapbt.errors.ConfigError]).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    agent: str = "ppo"
    preset: str = "classic"
    population: Annotated[int, Field(ge=1)] = 4
    budget: Annotated[int | None, Field(ge=1)] = None
    interval: Annotated[int | None, Field(ge=1)] = None
    quantile: Annotated[float, Field(gt=0, le=0.5)] = 0.25
    strict: bool = False
    seeding: Literal["task", "shared"] = "task"
    space: dict[str, dict[str, Any]] | None = None

    @field_validator("agent")
    @classmethod
    def _agent(cls, value: str) -> str:
        return agents.AGENTS.check(value)

    @field_validator("preset")
    @classmethod
    def _preset(cls, value: str, info: ValidationInfo) -> str:
        agent = info.data.get("agent")
        if agent is None:  # the agent failed its own check
            return value
        names = agents.kind(agent).preset_names()
        if value not in names:
            of = "" if agent == "ppo" else f" for the {agent} agent"
            raise ValueError(f"unknown preset {value!r}{of}; known: {', '.join(names)}")
        return value

    @model_validator(mode="after")
    def _steps(self) -> TrainingProtocol:
        # A value not given is the preset's, set here rather than in a "before" validator so
        # that ``model_fields_set`` still tells what was given.
        kind = agents.kind(self.agent)
        defaults = kind.use(self.preset)
        filled = []
        for name in ("budget", "interval"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, getattr(defaults, name))
                filled.append(name)
        if self.budget % self.interval:  # type: ignore[operator]  # both filled in above
            note = {n: f" (the {self.preset!r} preset's default)" for n in filled}
            raise ValueError(
                f"budget {self.budget}{note.get('budget', '')} must be a multiple of interval "
                f"{self.interval}{note.get('interval', '')}"
            )
        preset = kind.preset(self.preset)
        if self.interval % preset.batch_size:
            raise ValueError(
                f"interval {self.interval} must be a multiple of the {self.preset!r} preset's "
                f"batch size {preset.batch_size} ({preset.num_envs} envs x "
                f"{preset.rollout_len} steps)"
            )
        return self

    @model_validator(mode="after")
    def _space(self) -> TrainingProtocol:
        try:
            check_space(self.space, self.preset, self.agent)
        except ValueError as err:
            raise ValueError(f"space: {err}") from None
        return self

    @property
    def search_space(self) -> SearchSpace:
        """The tuned hyperparameters as a [`SearchSpace`][metapbt.population.space.SearchSpace]."""
        if self.space is None:
            return agents.kind(self.agent).default_space()
        return SearchSpace.from_dict(self.space)

    @property
    def rounds(self) -> int:
        """Sync points of a run: ``budget // interval``."""
        return self.budget // self.interval  # type: ignore[operator]  # ints once validated


class RunConfig(TrainingProtocol):
    """A run's settings: the training protocol plus the task, method, seed and files.

    The protocol's fields are those of [`TrainingProtocol`][metapbt.runs.config.TrainingProtocol].

    Args:
        env: Environment id.
        context: Planet name or ``"name=value,..."``.
        method: Method name.
        seed: Seed of everything (population, networks, environments).
        metadata: Meta-data directory for the meta methods (``None``: the bundled store of
            the run's env and context; [`POOLED`][metapbt.runs.config.POOLED]: every env's bundled
            planets store).
        save_meta: Append the finished run to this meta-data directory.
        portfolio: Portfolio file (``metapbt portfolio select``) to warm-start from: member
            ``i`` starts from entry ``i``, members beyond the portfolio from random draws.
        init_ranges: Initial draws from part of the search space, ``name -> (low, high)``
            inside the parameter's bounds (e.g. ``{"lr": (6.31e-4, 1e-3)}``, the top decile of
            the log-scaled ``lr`` range); explore steps keep the whole space. With a
            portfolio, only members beyond its entries draw from the ranges.

    Raises:
        ConfigError: On invalid settings, naming each bad field (an interval that is not a
            multiple of the preset's batch names the preset and its batch size; a preset not
            meant for the environment names the ones that are).
    """

    env: str = "cart_pole"
    context: str = "earth"
    method: str = "pb2-star"
    seed: int = 0
    metadata: str | None = None
    save_meta: str | None = None
    portfolio: str | None = None
    init_ranges: dict[str, tuple[float, float]] | None = None
    _values: dict[str, float] = PrivateAttr(default_factory=dict)
    _values_of: tuple[str, str] | None = PrivateAttr(default=None)

    def __init__(self, **data: Any) -> None:
        # Not on TrainingProtocol: pydantic would route a study's nested [protocol] table
        # through it
        # and lose the key of each error.
        try:
            super().__init__(**data)
        except ValidationError as err:
            raise ConfigError(f"invalid run configuration: {describe(err)}") from None

    @field_validator("env")
    @classmethod
    def _env(cls, value: str) -> str:
        return envs.ENVS.check(value, "env")

    @field_validator("method")
    @classmethod
    def _method(cls, value: str) -> str:
        return methods.METHODS.check(value)

    @model_validator(mode="before")
    @classmethod
    def _env_preset(cls, data: Any) -> Any:
        """No preset given: the env's (``classic``, ``box2d`` for LunarLander, ``brax-fast``)."""
        if isinstance(data, dict) and data.get("preset") is None:
            env = data.get("env", cls.model_fields["env"].default)
            if isinstance(env, str) and env in envs.ENVS:
                if data.get("agent", "ppo") == "ppo":
                    data = {**data, "preset": presets.for_env(env)[0]}
                    presets.warn_uncalibrated(env)
                elif data.get("agent") in agents.AGENTS:
                    data = {**data, "preset": agents.kind(data["agent"]).preset_names()[0]}
        return data

    @model_validator(mode="after")
    def _preset_fits_env(self) -> RunConfig:
        if self.agent == "ppo":
            presets.warn_unsuited(self.preset, self.env)
        return self

    @model_validator(mode="after")
    def _context(self) -> RunConfig:
        # The one place a run's context is resolved: everything downstream reads
        # ``context_values`` (through `metapbt.runs.resolve.ResolvedRun`).
        try:
            self._resolve()
        except ConfigError as err:
            raise ValueError(str(err)) from None
        return self

    def _resolve(self) -> None:
        self._values = dict(envs.resolve_context(self.env, self.context))
        self._values_of = (self.env, self.context)

    @property
    def context_values(self) -> Mapping[str, float]:
        """Every context feature's value (resolved on construction; read-only).

        A copy made with ``model_copy(update=...)``, which pydantic does not validate again,
        resolves its own context on first use.
        """
        if self._values_of != (self.env, self.context):
            self._resolve()
        return MappingProxyType(self._values)

    @model_validator(mode="after")
    def _init_ranges(self) -> RunConfig:
        # After the space (a TrainingProtocol field): the ranges must lie inside the run's own.
        try:
            check_init_ranges(self.init_ranges, self.search_space)
        except ValueError as err:
            raise ValueError(f"init_ranges: {err}") from None
        return self

    @property
    def task(self) -> str:
        """The task id, ``"<env> <context>"`` (how meta-data names tasks)."""
        return task_id(self.env, self.context)

    @property
    def random_seed(self) -> int:
        """The seed of the run's random streams (population, networks, environments).

        ``seed`` itself under ``seeding="shared"``;
        [`derived_seed`][metapbt.runs.config.derived_seed] of (seed, task) under ``"task"``.
        """
        return self.seed if self.seeding == "shared" else derived_seed(self.seed, self.task)

    @property
    def protocol(self) -> dict[str, int | str]:
        """The settings a run's rows depend on: its meta-data provenance (and its agent)."""
        return {"agent": self.agent, **{key: getattr(self, key) for key in PROTOCOL_KEYS}}
