"""The run configuration: one typed, frozen, validated object that the CLI and study files fill.

:class:`Protocol` holds the settings every run of a comparison shares (the reference protocol's
values by default, ``fast`` PPO); :class:`RunConfig` adds what names one run. Both are validated
on construction (pydantic). A study file embeds :class:`Protocol` as its ``[protocol]`` table, so
its errors name the key (``protocol.population``); :class:`RunConfig` raises
:class:`~metapbt.errors.ConfigError` naming each bad field.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from metapbt import envs
from metapbt.engine import presets
from metapbt.envs.contexts import task_id
from metapbt.errors import ConfigError
from metapbt.metadata.source import PROTOCOL_KEYS
from metapbt.population import methods


def describe(err: ValidationError) -> str:
    """Every problem of a pydantic error as ``"key: message"`` (the key of a field), by ``"; "``."""
    problems = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"])
        message = e["msg"].removeprefix("Value error, ")
        problems.append(f"{key}: {message}" if key else message)
    return "; ".join(problems)


class Protocol(BaseModel):
    """Settings shared by every run of a comparison (the reference protocol by default).

    Args:
        preset: PPO preset name (``metapbt.engine.presets``).
        population: Number of members.
        budget: Environment steps per member (a multiple of ``interval``).
        interval: Steps per member between sync points (a multiple of the preset's batch).
        quantile: Truncation-selection quantile, in (0, 0.5].
        strict: Refuse meta-data recorded under another protocol (preset, population,
            budget, interval) or none, instead of warning.

    Raises:
        pydantic.ValidationError: On invalid settings (a ``ValueError``; the study loader and
            :class:`RunConfig` turn it into a :class:`~metapbt.errors.ConfigError`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    preset: str = "classic"
    population: Annotated[int, Field(ge=1)] = 4
    budget: Annotated[int, Field(ge=1)] = 600_000
    interval: Annotated[int, Field(ge=1)] = 40_000
    quantile: Annotated[float, Field(gt=0, le=0.5)] = 0.25
    strict: bool = False

    @field_validator("preset")
    @classmethod
    def _preset(cls, value: str) -> str:
        if value not in presets.PRESETS:
            raise ValueError(
                f"unknown preset {value!r}; known: {', '.join(presets.PRESETS.names())}"
            )
        return value

    @model_validator(mode="after")
    def _steps(self) -> Protocol:
        if self.budget % self.interval:
            raise ValueError(f"budget {self.budget} must be a multiple of interval {self.interval}")
        ppo = presets.make(self.preset)
        if self.interval % ppo.batch_size:
            raise ValueError(
                f"interval {self.interval} must be a multiple of the {self.preset!r} preset's "
                f"batch size {ppo.batch_size} ({ppo.num_envs} envs x {ppo.rollout_len} steps)"
            )
        return self

    @property
    def rounds(self) -> int:
        """Sync points of a run: ``budget // interval``."""
        return self.budget // self.interval


class RunConfig(Protocol):
    """A run's settings: a :class:`Protocol` plus the task, method, seed and files.

    Args:
        env: Environment id.
        context: Planet name or ``"name=value,..."``.
        method: Method name.
        seed: Seed of everything (population, networks, environments).
        metadata: Meta-data directory for the meta methods (``None``: the bundled set).
        save_meta: Append the finished run to this meta-data directory.
        portfolio: Portfolio file (``metapbt portfolio select``) to warm-start from: member
            ``i`` starts from entry ``i``, members beyond the portfolio from random draws.

    Raises:
        ConfigError: On invalid settings, naming each bad field (an interval that is not a
            multiple of the preset's batch names the preset and its batch size).
    """

    env: str = "cart_pole"
    context: str = "earth"
    method: str = "pb2-star"
    seed: int = 0
    metadata: str | None = None
    save_meta: str | None = None
    portfolio: str | None = None

    def __init__(self, **data: Any) -> None:
        # Not on Protocol: pydantic would route a study's nested [protocol] table through it
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

    @model_validator(mode="after")
    def _context(self) -> RunConfig:
        try:
            envs.resolve_context(self.env, self.context)
        except ConfigError as err:
            raise ValueError(str(err)) from None
        return self

    @property
    def task(self) -> str:
        """The task id, ``"<env> <context>"`` (how meta-data names tasks)."""
        return task_id(self.env, self.context)

    @property
    def protocol(self) -> dict[str, int | str]:
        """The settings a run's rows depend on: its meta-data provenance."""
        return {key: getattr(self, key) for key in PROTOCOL_KEYS}
