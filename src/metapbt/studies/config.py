"""Study files: a grid of methods x tasks x seeds under one protocol, in TOML.

Example (``studies/smoke.toml``):

```toml
name = "smoke"
seeds = 2                          # seeds 0..1, or a list: [0, 3, 7]
methods = ["random", "pb2-star"]   # a name, or a table for a variant (below)

[protocol]
preset = "fast"
population = 2
budget = 8000
interval = 4000

[[tasks]]
env = "cart_pole"
# or "planets", or "grid:length" (default x 0.1 ... 2.2)
contexts = ["earth", "neptune"]
```

A method table names a variant of a registered method:

```toml
[[methods]]
label = "pb2-star-warm"            # the name in results and figures
method = "pb2-star"
# {env}, {context}, {task}
portfolio = "portfolios/{env}/{env}__{context}.json"
# meta methods only; "pooled": every env's bundled planets
metadata = "meta/{env}"

[[methods]]
# PB2* started in the top decile of the lr range
label = "high-lr"
method = "pb2-star"
init_ranges = { lr = [6.31e-4, 1e-3] }
```

The tuned hyperparameters are the protocol's ``space`` (default: ``lr``, ``lambda``, ``clip``);
a method's own ``space`` replaces it for that method:

```toml
[protocol.space]
lr = { type = "float", low = 1e-5, high = 1e-3, log = true }
epochs = { type = "int", low = 1, high = 8 }
gamma = { type = "categorical", choices = [0.95, 0.99, 0.999] }
```

A ``[logging]`` table writes what the runs do as they train, for TensorBoard
(`TensorBoardLogger`; ``pip install 'metapbt[tensorboard]'``):

```toml
[logging]
# one sub-directory per cell, named as its results
tensorboard = "tb"
```

Logging is an output, not a setting of the runs: adding or changing it leaves done cells done.

``save_meta = "meta/{env}"`` at the top level appends every finished run to a meta-data store
(``metapbt metadata build`` is such a study). The ``[protocol]`` table is the engine's
[`TrainingProtocol`][metapbt.runs.config.TrainingProtocol], with its defaults and checks; its
``seeding`` (``"task"`` by default) decides whether seed ``k`` starts every task from its own
initial population or all tasks from one (``"shared"``: how the committed classic-control
reproduction ran).

Paths in the file are relative to the file. Unknown keys and impossible values are errors that
name the key (pydantic validation; ``extra="forbid"`` everywhere).

A study file may come from someone else, so what it names stays in its place: ``name``, method
labels and context names are plain names (no slash, backslash or ``..``); ``results``, ``save_meta``
and ``[logging]`` paths are relative and stay below the file's directory (read paths,
``portfolio`` and ``metadata``, may point anywhere); an env named ``module:attr`` is imported
only if ``METAPBT_ALLOW_IMPORT`` lists its module (`metapbt.envs.sources`).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from metapbt import envs
from metapbt._deprecation import renamed
from metapbt._paths import confined, plain_name
from metapbt._slug import slug
from metapbt.envs.contexts import task_id
from metapbt.envs.grids import expand_contexts
from metapbt.envs.sources import refusing_imports
from metapbt.errors import ConfigError
from metapbt.population import methods
from metapbt.population.space import SearchSpace
from metapbt.runs.config import POOLED, RunConfig, TrainingProtocol, check_init_ranges, describe

MAX_CELLS = 100_000
"""The most cells a study may expand to (found by the property tests: ``seeds = 10**9`` made
loading the file build a billion cells)."""

_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

_RENAMED = {
    "MethodSpec": "metapbt.studies.config.StudyMethod",
    "Protocol": "metapbt.runs.config.TrainingProtocol",  # imported here before its rename
}
"""Old names that still import, each with a ``DeprecationWarning`` (``metapbt._deprecation``)."""


def __getattr__(name: str) -> Any:
    return renamed(__name__, name, _RENAMED)


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StudyMethod(_Frozen):
    """A method of the study: a registered method, optionally warm-started or with meta-data.

    Any method composes with a warm start (``portfolio``) and with initial draws from part of
    the space (``init_ranges``, e.g. ``{ lr = [6.31e-4, 1e-3] }``): ablations are study-file
    tables, not new methods (``random`` + a portfolio: the portfolio alone; ``pb2-star`` +
    a high ``lr`` range: "start high" without meta-data). ``space`` replaces the protocol's
    search space for this method (PB2* tuning the numeric part of a mixed space, its
    categorical held at the preset's value, beside ``pb2-mix`` tuning all of it).
    """

    label: str
    method: str
    portfolio: str | None = None
    metadata: str | None = None
    space: dict[str, dict[str, Any]] | None = None  # before init_ranges: their check reads it
    init_ranges: dict[str, tuple[float, float]] | None = None

    @field_validator("label")
    @classmethod
    def _label(cls, value: str) -> str:
        if not _LABEL.match(value):
            raise ValueError(f"label {value!r} may hold letters, digits, '_', '.', '-' only")
        return value

    @field_validator("method")
    @classmethod
    def _method(cls, value: str) -> str:
        return methods.METHODS.check(value)

    @field_validator("space")
    @classmethod
    def _space(cls, value: dict[str, dict[str, Any]] | None) -> dict[str, dict[str, Any]] | None:
        if value is not None:
            try:
                SearchSpace.from_dict(value)
            except ConfigError as err:
                raise ValueError(str(err)) from None
        return value

    @field_validator("init_ranges")
    @classmethod
    def _init_ranges(
        cls, value: dict[str, tuple[float, float]] | None, info: ValidationInfo
    ) -> dict[str, tuple[float, float]] | None:
        # Inside the method's own space when it has one (the protocol's is checked per cell).
        own = info.data.get("space")
        return check_init_ranges(value, None if own is None else SearchSpace.from_dict(own))

    @model_validator(mode="after")
    def _meta(self) -> StudyMethod:
        if self.metadata is not None:
            try:
                methods.check_metadata(self.method, given=True)
            except ConfigError as err:
                raise ValueError(str(err)) from None
        return self


class TaskSpec(_Frozen):
    """One environment and its contexts (``"planets"`` for the five planets).

    ``protocol`` overrides some of the study's protocol for this environment (e.g. LunarLander
    under ``box2d`` beside classic control under ``classic``), as an inline table of
    [`TrainingProtocol`][metapbt.runs.config.TrainingProtocol] fields.
    """

    env: str
    contexts: tuple[str, ...] | str = ("earth",)
    protocol: dict[str, Any] = Field(default_factory=dict)

    @field_validator("env")
    @classmethod
    def _env(cls, value: str) -> str:
        return envs.ENVS.check(value, "env")

    @model_validator(mode="after")
    def _contexts(self) -> TaskSpec:
        if isinstance(self.contexts, str) and not (
            self.contexts == "planets" or self.contexts.startswith("grid:")
        ):
            raise ValueError("contexts must be a list, 'planets' or 'grid:FEATURE'")
        try:
            self.context_list  # noqa: B018 - validates every context
        except ConfigError as err:
            raise ValueError(str(err)) from None
        return self

    @property
    def context_list(self) -> tuple[str, ...]:
        """The contexts, with ``"planets"`` and ``"grid:FEATURE"`` expanded."""
        if isinstance(self.contexts, str):
            return tuple(expand_contexts(self.env, self.contexts))
        for context in self.contexts:
            plain_name(context, "context")
            envs.resolve_context(self.env, context)
        return self.contexts


class ReportSpec(_Frozen):
    """What the report shows beyond the comparison.

    Attributes:
        schedules: Cell ids whose hyperparameter schedules are drawn.
        above: The return the contexts section counts contexts above over time (e.g. 0 on
            LunarLander, where the reference asked when a method "turns positive").
    """

    schedules: tuple[str, ...] = ()
    above: float | None = None


class LoggingSpec(_Frozen):
    """Where the runs of a study are watched from as they train (outputs, not run settings).

    Attributes:
        tensorboard: TensorBoard directory (relative to the study file); each cell's events go
            to a sub-directory named as the cell's results directory.
    """

    tensorboard: Annotated[str, Field(min_length=1)] | None = None


class Cell(_Frozen):
    """One run of the grid."""

    method: StudyMethod
    env: str
    context: str
    seed: int
    protocol: TrainingProtocol
    save_meta: str | None = None

    @property
    def task(self) -> str:
        """The task id ``"<env> <context>"``."""
        return task_id(self.env, self.context)

    @property
    def id(self) -> str:
        """Stable id (and results sub-directory): ``<label>__<env>__<context>__seed<seed>``."""
        return f"{self.method.label}__{slug(self.env)}__{slug(self.context)}__seed{self.seed}"

    def run_config(self) -> RunConfig:
        """The run's settings."""
        fill = {"env": self.env, "context": self.context, "task": self.task}
        settings = self.protocol.model_dump()
        if self.method.space is not None:
            settings["space"] = self.method.space
        return RunConfig(
            **settings,
            env=self.env,
            context=self.context,
            method=self.method.method,
            seed=self.seed,
            metadata=_fill(self.method.metadata, fill),
            portfolio=_fill(self.method.portfolio, fill),
            init_ranges=self.method.init_ranges,
            save_meta=_fill(self.save_meta, fill),
        )


class Study(_Frozen):
    """A study: methods x tasks x seeds under one protocol.

    Args:
        name: The study's name.
        results: Results directory (default ``results/<name>`` beside the study file).
        methods: Method names or [`StudyMethod`][metapbt.studies.config.StudyMethod] tables (labels
            must be unique).
        tasks: Environments and contexts.
        seeds: A count (seeds ``0..n-1``) or a list of seeds.
        protocol: Shared run settings ([`TrainingProtocol`][metapbt.runs.config.TrainingProtocol]).
        save_meta: Meta-data store to append every finished run to (``{env}``, ``{context}``,
            ``{task}`` placeholders).
        report: Report options.
        layout: How cell directories are named: ``"cell"``, by the cell id; ``"run"``,
            ``<context>__seed<k>`` (what ``metapbt run --seeds/--contexts`` writes: a study of
            one method on one environment, [`study_of_runs`][metapbt.studies.config.study_of_runs]).
        logging: What watches the runs as they train
            ([`LoggingSpec`][metapbt.studies.config.LoggingSpec]).
    """

    name: str
    results: str | None = None
    methods: tuple[str | StudyMethod, ...]
    tasks: tuple[TaskSpec, ...]
    seeds: Annotated[int, Field(ge=1)] | tuple[int, ...] = 1
    protocol: TrainingProtocol = TrainingProtocol()
    save_meta: str | None = None
    report: ReportSpec = ReportSpec()
    layout: Literal["cell", "run"] = "cell"
    logging: LoggingSpec = LoggingSpec()
    base: Path = Field(default=Path("."), exclude=True)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        try:
            return plain_name(value, "study name")
        except ConfigError as err:
            raise ValueError(str(err)) from None

    @field_validator("methods")
    @classmethod
    def _methods(cls, value: tuple[str | StudyMethod, ...]) -> tuple[StudyMethod, ...]:
        specs = tuple(StudyMethod(label=v, method=v) if isinstance(v, str) else v for v in value)
        labels = [s.label for s in specs]
        if not specs:
            raise ValueError("a study needs at least one method")
        if len(set(labels)) != len(labels):
            raise ValueError(f"method labels must be unique, got {labels}")
        return specs

    @field_validator("tasks")
    @classmethod
    def _tasks(cls, value: tuple[TaskSpec, ...]) -> tuple[TaskSpec, ...]:
        if not value:
            raise ValueError("a study needs at least one task")
        return value

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, value: int | tuple[int, ...]) -> int | tuple[int, ...]:
        if isinstance(value, tuple) and (not value or len(set(value)) != len(value)):
            raise ValueError("seeds must be a count or a non-empty list of distinct seeds")
        return value

    @model_validator(mode="after")
    def _layout(self) -> Study:
        if self.layout == "run" and (len(self.methods) > 1 or len(self.tasks) > 1):
            raise ValueError('layout "run" names cells by context and seed: one method, one task')
        return self

    @model_validator(mode="after")
    def _size(self) -> Study:
        seeds = self.seeds if isinstance(self.seeds, int) else len(self.seeds)
        count = sum(len(t.context_list) for t in self.tasks) * len(self.methods) * seeds
        if count > MAX_CELLS:
            raise ValueError(
                f"the study expands to {count:,} cells, more than {MAX_CELLS:,}: split it (a "
                "typo in seeds?)"
            )
        return self

    @model_validator(mode="after")
    def _task_protocols(self) -> Study:
        for task in self.tasks:
            try:
                self.task_protocol(task)
            except ValidationError as err:
                raise ValueError(f"tasks.{task.env}.protocol: {describe(err)}") from None
        return self

    def task_protocol(self, task: TaskSpec) -> TrainingProtocol:
        """The protocol of ``task``'s runs: the study's, with the task's overrides."""
        if not task.protocol:
            return self.protocol
        return TrainingProtocol(**{**self.protocol.model_dump(), **task.protocol})

    @property
    def seed_list(self) -> tuple[int, ...]:
        """The seeds."""
        return tuple(range(self.seeds)) if isinstance(self.seeds, int) else self.seeds

    @property
    def method_specs(self) -> tuple[StudyMethod, ...]:
        """The methods as specs (after validation every entry is one)."""
        return tuple(m for m in self.methods if isinstance(m, StudyMethod))

    @property
    def results_dir(self) -> Path:
        """Where every cell's outputs land."""
        return self.base / (self.results or f"results/{self.name}")

    @property
    def tensorboard_dir(self) -> Path | None:
        """The TensorBoard directory of ``[logging]`` (relative to the study file), or ``None``."""
        path = self._relative(self.logging.tensorboard)
        return None if path is None else Path(path)

    @cached_property
    def cells(self) -> tuple[Cell, ...]:
        """The grid, in a stable order: task, context, method, seed."""
        return tuple(
            Cell(
                method=self._resolved(m),
                env=t.env,
                context=c,
                seed=s,
                protocol=self.task_protocol(t),
                save_meta=self._relative(self.save_meta),
            )
            for t in self.tasks
            for c in t.context_list
            for m in self.method_specs
            for s in self.seed_list
        )

    def cell_name(self, cell: Cell) -> str:
        """The name of ``cell``'s results directory (see ``layout``)."""
        if self.layout == "run":
            return f"{slug(cell.context)}__seed{cell.seed}"
        return cell.id

    def _resolved(self, spec: StudyMethod) -> StudyMethod:
        """Paths relative to the study file."""
        metadata = spec.metadata if spec.metadata == POOLED else self._relative(spec.metadata)
        return spec.model_copy(
            update={"portfolio": self._relative(spec.portfolio), "metadata": metadata}
        )

    def _relative(self, path: str | None) -> str | None:
        """``path`` relative to the study file (absolute paths and ``None`` unchanged)."""
        return str(self.base / path) if path is not None and not Path(path).is_absolute() else path


def load_study(path: Path | str) -> Study:
    """Parse and validate a study file.

    Raises:
        ConfigError: If the file is missing, not TOML, or invalid (the message names each bad
            key and why).
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"study file {path} does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"study file {path} is not valid TOML: {err}") from None
    if "base" in data:
        raise ConfigError(f"{path}: unknown key 'base'")
    try:
        with refusing_imports(f"study file {path}"):
            study = Study(**data, base=path.parent)
    except ValidationError as err:
        raise ConfigError(f"study file {path} is invalid: {describe(err)}") from None
    except TypeError as err:  # a top-level value of the wrong kind, e.g. ``methods`` a table
        raise ConfigError(f"study file {path} is invalid: {err}") from None
    _check_writes(study, path)
    ids = [c.id for c in study.cells]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"study file {path} expands to duplicate cells (repeated contexts?)")
    return study


def _check_writes(study: Study, path: Path) -> None:
    """Every path ``study`` writes to stays below the study file's directory."""
    where = f"study file {path}:"
    if study.results is not None:
        confined(study.results, f"{where} results")
    if study.logging.tensorboard is not None:
        confined(study.logging.tensorboard, f"{where} logging.tensorboard")
    for cell in study.cells if study.save_meta is not None else ():
        values = {"env": cell.env, "context": cell.context, "task": cell.task}
        confined(str(_fill(study.save_meta, values)), f"{where} save_meta")


def study_of_runs(
    config: RunConfig,
    seeds: Sequence[int],
    contexts: Sequence[str],
    results: Path | str,
    tensorboard: Path | str | None = None,
) -> Study:
    """The study ``metapbt run --seeds/--contexts`` runs: ``config``'s method on its env.

    Every (context, seed) pair is a cell, with ``config``'s protocol, meta-data, portfolio,
    initial ranges and meta-data store; cells go to ``<results>/<context>__seed<k>``, and their
    TensorBoard events (when ``tensorboard`` is given) to ``<tensorboard>/<context>__seed<k>``.
    Empty ``seeds`` or ``contexts`` mean ``config``'s own.

    Raises:
        ConfigError: If a context or seed is repeated, or a setting is invalid.
    """
    contexts, seeds = tuple(contexts) or (config.context,), tuple(seeds) or (config.seed,)
    for name, values in (("context", contexts), ("seed", seeds)):
        if len(set(values)) != len(values):
            raise ConfigError(f"each {name} may be given once, got {list(values)}")
    method = StudyMethod(
        label=config.method,
        method=config.method,
        portfolio=config.portfolio,
        metadata=config.metadata,
        init_ranges=config.init_ranges,
    )
    try:
        return Study(
            name=Path(results).resolve().name or "runs",
            results=str(results),
            methods=(method,),
            tasks=(TaskSpec(env=config.env, contexts=contexts),),
            seeds=seeds,
            protocol=TrainingProtocol(
                **{k: getattr(config, k) for k in TrainingProtocol.model_fields}
            ),
            save_meta=config.save_meta,
            layout="run",
            logging=LoggingSpec(tensorboard=None if tensorboard is None else str(tensorboard)),
        )
    except ValidationError as err:
        raise ConfigError(describe(err)) from None


def _fill(template: str | None, values: dict[str, str]) -> str | None:
    if template is None:
        return None
    try:
        return template.format(**values)
    except (KeyError, IndexError) as err:
        raise ConfigError(
            f"unknown placeholder {err} in {template!r}; use {{env}}, {{context}} or {{task}}"
        ) from None
