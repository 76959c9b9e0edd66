"""Explore *quality* (not speed): how close each method's explore picks land to a known optimum.

    python benchmarks/explore_quality.py [--seeds 20] [--methods pb2,pb2-star] [--label before]

1. Synthetic populations (size 4, quantile 0.25: one clone per sync point, 15 sync points of
   40k steps) on the default search space, driven through ``Population.ask/tell`` only. The
   optimum ``u*`` is known in the unit cube (log scale for ``lr``):

   * ``rising``: every member's reward rises every interval, faster the closer its config is to
     the fixed ``u* = (0.8, 0.3, 0.6)`` (the toy's growth law with a still optimum), so a donor's
     reward *now* is above every past ``reward_before``;
   * ``flat``: MountainCar-like: every reward is exactly -200; from the fourth interval on, a
     member within 0.45 of ``u*`` improves slightly (at most 2 per interval). At the fourth sync
     point every training row's ``reward_before`` is -200 while an improved donor's reward is
     above it;
   * ``moving``: the toy of ``toy_moving_optimum.py`` (:class:`metapbt.toy.MovingOptimum`), its
     optimum moving linearly from (0.15, 0.85, 0.2) to (0.85, 0.15, 0.8).

   At every clone decision it records the distance from the chosen config to ``u*`` at that
   sync point, from the donor's config (what copying it would give), and whether the pick lies
   on a face of the cube (where a variance-seeking pick on a flat mean goes). Reported: the
   median over seeds of the per-run mean distance (with its bootstrap standard error), over all
   picks and over the picks from sync point 5 on, against the expected distance of a uniform
   draw (Monte-Carlo): a method near that line explores at random, above it worse than random.
   ``random`` is fresh uniform draws at the same sync points.
2. Best final true score per method and scenario, mean and median over seeds; on ``moving``
   this is the moving-optimum toy comparison, its runs :func:`metapbt.toy.run_toy` step for
   step (checked on seed 0 of every method against ``run_toy`` itself; printed).

The meta methods get meta-data built here, in a temporary directory, from one ``pb2`` run of the
same scenario on each of two related tasks (optimum shifted by +-0.05 per coordinate), the target
task left out. Method construction is in :func:`make_method` alone. ``--settings KEY=VALUE``
overrides the ``PB2Settings`` of every PB2-family method (e.g. ``query=donor_now``,
``log_space=false``) to compare one design choice; the "before" figures in
docs/results/benchmarks.md come from this script run on the code before the explore fixes
(commit fc9d86f), with an import shim.

Runtime at the default 20 seeds, all methods, on the 2-core development machine while a test
run kept the other core busy: 4 minutes (10 seeds: 2.5 minutes). It is deterministic: the same
code gives the same table.
Writes benchmarks/results/explore_quality_<label>.json.
"""

from __future__ import annotations

import os

# One thread for BLAS and XLA, set before numpy and jax load: this measures quality, not speed,
# and on a small shared machine their spinning thread pools made runs up to 10x slower.
os.environ["OPENBLAS_NUM_THREADS"] = os.environ.get("OPENBLAS_NUM_THREADS", "1")
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "")
    + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
)

import argparse
import copy
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np

from metapbt.metadata.source import MetaSource, TaskRef
from metapbt.population import methods
from metapbt.population.decisions import Clone
from metapbt.population.explorers.schedule import ScheduleExplorer
from metapbt.population.explorers.training import TrainingSet
from metapbt.population.initializers import given
from metapbt.population.meta_io import save_run
from metapbt.population.population import Population
from metapbt.population.space import default_space
from metapbt.surrogates.posterior import posterior_predict
from metapbt.toy import MovingOptimum, run_toy

from _common import median, write

META_ENV = "quality"  # the synthetic tasks' "environment"; context {"shift": k}, 0 = the target


def make_method(name: str, store: Path | None, target_task: str, quantile: float) -> Any:
    """The method ``name``; a meta method reads ``store`` with ``target_task`` left out.

    ``target_task`` is the target's id; the target is the task with context ``{"shift": 0}``
    (the stored related tasks have shifts 1, 2, ...).
    """
    if not methods.uses_metadata(name):
        return methods.make(name, quantile)
    if store is None:
        raise ValueError(f"{name} needs meta-data")
    target = TaskRef(META_ENV, {"shift": 0.0}, target_task)
    return methods.make(name, quantile, metadata=MetaSource(store, target))


def _value(text: str) -> Any:
    """``true``/``false``/``none``, an int, a float, ``64x64`` (a tuple of ints), else text."""
    low = text.lower()
    if low in ("true", "false", "none"):
        return {"true": True, "false": False, "none": None}[low]
    if "x" in low and all(part.isdigit() for part in low.split("x")):
        return tuple(int(part) for part in low.split("x"))
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _override(text: str, *factories: str) -> dict[str, Any]:
    """Apply ``KEY=VALUE,...`` (values read by `_value`) to the settings each of ``factories``
    (names of `metapbt.population.methods` functions) returns, in this process only."""
    changes = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        changes[key] = _value(value)
    if not changes:
        return changes
    for factory in factories:
        original = getattr(methods, factory)
        setattr(methods, factory, lambda original=original: replace(original(), **changes))
    return changes


def override_dkl(text: str) -> dict[str, Any]:
    """Apply ``KEY=VALUE,...`` to the ``DKLSettings`` of ``dkl`` and of ``meta-dkl``.

    Both methods' settings get the same changes (e.g. ``prior_std=0.03,noise_floor=0.01``,
    ``hidden=64x64``); what ``meta-dkl`` sets differently (100 steps, no weight prior) stays
    unless an override names it.
    """
    return _override(text, "dkl_settings", "meta_dkl_settings")


def override_trust_region(text: str) -> dict[str, Any]:
    """Apply ``KEY=VALUE,...`` to the ``TrustRegionSettings`` of every ``-tr`` method."""
    return _override(text, "trust_region_settings")


def override_patience(text: str) -> dict[str, Any]:
    """Apply ``KEY=VALUE,...`` to the ``PatienceSettings`` of every ``-patient`` method."""
    return _override(text, "patience_settings")


def override_settings(text: str) -> dict[str, Any]:
    """Apply ``KEY=VALUE,...`` to the ``PB2Settings`` of every PB2-family method.

    For comparisons of one choice (``query=donor_now``, ``log_space=false``); the registry's
    settings factories are replaced in this process only.
    """
    changes: dict[str, Any] = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        changes[key] = {"true": True, "false": False}.get(value.lower(), value)
    for factory in ("pb2_star", "stock_pb2"):
        original = getattr(methods, factory)
        setattr(methods, factory, lambda original=original: replace(original(), **changes))
    return changes


ALL_METHODS = (
    "random",
    "pbt",
    "pb2",
    "pb2-star",
    "dkl",
    "meta-prior",
    "multitask",
    "taf",
    "meta-dkl",
    "pb2-star-tr",
    "meta-prior-tr",
    "pbt-patient",
    "pb2-star-patient",
    "meta-prior-patient",
    "schedule-replay",
    "schedule-pbt",
)
SIZE = 4
QUANTILE = 0.25
FACE = 1e-3  # a unit coordinate this close to 0 or 1 counts as on a face of the cube
DEFAULT_SEEDS = 20  # the median of 10 seeds moved by ~0.05 (bootstrap SE): too coarse
Z90 = 1.6448536269514722  # the central 90 % interval of a normal: mean +- Z90 std
MIN_CHECK_ROWS = 8  # rows before a sync point's surrogate is checked for calibration
LATE = 5  # "late" picks: from this sync point on (the surrogates have a few rounds of rows)
FLAT_FLOOR, FLAT_RADIUS, FLAT_RATE, FLAT_DELAY = -200.0, 0.45, 2.0, 3
# Two related tasks of one run each: 112 meta rows, which meta-dkl pads to 128 for its
# pre-training; a third task (168 rows, padded to 256) makes every meta-dkl run ~8x slower.
SHIFTS = ((0.05, 0.05, 0.05), (-0.05, -0.05, -0.05))
META_SEEDS = (1000,)


@dataclass(frozen=True)
class Scenario:
    """A synthetic problem: the toy's optimum path and growth law, or the flat variant."""

    name: str
    start: tuple[float, ...]
    end: tuple[float, ...]
    flat: bool = False
    near: float | None = None  # a good start: members begin within +-near of u* per axis

    @property
    def toy(self) -> MovingOptimum:
        return MovingOptimum(start=self.start, end=self.end)

    @property
    def sync_points(self) -> list[int]:
        toy = self.toy
        return list(range(toy.interval, toy.budget + 1, toy.interval))

    def optimum(self, step: float) -> np.ndarray:
        return self.toy.optimum(step)

    def shifted(self, delta: tuple[float, ...]) -> Scenario:
        def move(point: tuple[float, ...]) -> tuple[float, ...]:
            return tuple(float(v) for v in np.clip(np.add(point, delta), 0.0, 1.0))

        return replace(self, start=move(self.start), end=move(self.end))

    def gain(self, unit: np.ndarray, step_from: int, step_to: int) -> float:
        if not self.flat:
            return self.toy.gain(unit, step_from, step_to)
        if step_from < FLAT_DELAY * self.toy.interval:
            return 0.0
        distance = float(np.linalg.norm(unit - self.optimum(step_to)))
        return FLAT_RATE * max(0.0, 1.0 - distance / FLAT_RADIUS)

    def observe(self, scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.flat:
            return FLAT_FLOOR + scores  # exactly -200 for every member that never improved
        return scores + self.toy.noise * rng.standard_normal(scores.shape)


SCENARIOS = (
    Scenario("rising", (0.8, 0.3, 0.6), (0.8, 0.3, 0.6)),
    Scenario("flat", (0.8, 0.3, 0.6), (0.8, 0.3, 0.6), flat=True),
    Scenario("moving", MovingOptimum().start, MovingOptimum().end),
    Scenario("good", (0.8, 0.3, 0.6), (0.8, 0.3, 0.6), near=0.1),
)


@dataclass
class Coverage:
    """Calibration of a surrogate: held-out rows inside its 90 % predictive interval.

    At every sync point with at least ``MIN_CHECK_ROWS`` rows, a copy of the surrogate (its
    state just before the round's real fit) is fitted on a random 75 % of the round's training
    rows and predicts the other 25 % (observation noise included); the run itself is
    unchanged. Records whether each held-out target lies inside the central 90 % interval and
    its predictive negative log density.
    """

    inside: list[bool] = field(default_factory=list)
    nll: list[float] = field(default_factory=list)

    def watch(self, explorer: Any, seed: int) -> None:
        """Check ``explorer``'s surrogate at every fit (no-op without a surrogate)."""
        surrogate = getattr(explorer, "surrogate", None)
        if surrogate is None:
            return
        real = surrogate.fit
        rng = np.random.default_rng([seed, 3])

        def fit(context: Any, train: TrainingSet, fit_rng: np.random.Generator) -> Any:
            if len(train.y) >= MIN_CHECK_ROWS:
                twin = copy.deepcopy(surrogate)
                del twin.__dict__["fit"]  # the copy's own fit, not this wrapper
                self.check(twin, context, train, rng)
            return real(context, train, fit_rng)

        surrogate.fit = fit

    def check(self, twin: Any, context: Any, train: TrainingSet, rng: Any) -> None:
        n = len(train.y)
        order = rng.permutation(n)
        held, kept = np.sort(order[: n // 4]), np.sort(order[n // 4 :])

        def rows(index: np.ndarray) -> TrainingSet:
            return replace(
                train,
                x=train.x[index],
                y=train.y[index],
                members=train.members[index],
                raw_context=train.raw_context[index],
            )

        model = twin.fit(context, rows(kept), np.random.default_rng(rng.integers(2**31)))
        if model is None:
            return
        tr = np.array([model.train.context(*raw) for raw in train.raw_context[held]])
        x = np.column_stack([np.tile(model.prefix, (len(held), 1)), tr, train.x[held, 2:]])
        mean, var = posterior_predict(model.posterior, jnp.asarray(x, jnp.float32))
        var = np.asarray(var, np.float64) + model.posterior.noise()
        err = train.y[held] - np.asarray(mean, np.float64)
        self.inside.extend(bool(v) for v in np.abs(err) <= Z90 * np.sqrt(var))
        self.nll.extend(float(v) for v in 0.5 * (np.log(2 * np.pi * var) + err**2 / var))


@dataclass
class Picks:
    """One run's clone decisions and its best final true score.

    Attributes:
        rounds: Sync point index (1-based) of each clone.
        pick: Distance from each pick to ``u*``.
        donor: Distance from the donor's config to ``u*``.
        face: Whether the pick lies on a face of the unit cube (a variance-seeking pick).
        final: Best true (noise-free) score in the population at the end.
    """

    rounds: list[int] = field(default_factory=list)
    pick: list[float] = field(default_factory=list)
    donor: list[float] = field(default_factory=list)
    face: list[bool] = field(default_factory=list)
    final: float = float("nan")
    coverage: Coverage = field(default_factory=Coverage)
    fits: list[dict[str, Any]] = field(default_factory=list)

    def mean(self, which: str, first: int = 1) -> float:
        values = [d for r, d in zip(self.rounds, getattr(self, which), strict=True) if r >= first]
        return float(np.mean(values)) if values else float("nan")

    def add(self, k: int, pick: np.ndarray, donor: np.ndarray, target: np.ndarray) -> None:
        self.rounds.append(k)
        self.pick.append(float(np.linalg.norm(pick - target)))
        self.donor.append(float(np.linalg.norm(donor - target)))
        self.face.append(bool(np.any((pick < FACE) | (pick > 1 - FACE))))


def drive(
    scenario: Scenario, method: Any, seed: int, calibrate: bool = False
) -> tuple[Picks, Population]:
    """Run one population on ``scenario`` through ask/tell, recording every clone's pick.

    With ``calibrate``, also the surrogate's :class:`Coverage` (the picks are unchanged).

    On the ``moving`` scenario this is :func:`metapbt.toy.run_toy` step for step (same seeds,
    same noise draws), plus the recording.
    """
    space = default_space()
    initializer = None
    # A schedule method starts every member on its schedule (from the related tasks' runs),
    # never from a given start: on ``good`` it starts from the schedules, not near u*.
    if scenario.near is not None and not isinstance(method.explorer, ScheduleExplorer):
        jitter = np.random.default_rng([seed, 4]).uniform(-1, 1, (SIZE, space.dim))
        units = np.clip(scenario.optimum(0) + scenario.near * jitter, 0.0, 1.0)
        initializer = given([space.from_unit(u) for u in units])
    pop = Population(
        space, size=SIZE, method=method, seed=seed, quantile=QUANTILE, initializer=initializer
    )
    noise = np.random.default_rng([seed, 1])
    scores = np.zeros(SIZE)
    picks = Picks()
    if calibrate:
        picks.coverage.watch(method.explorer, seed)
    previous = 0
    for k, step in enumerate(scenario.sync_points, start=1):
        configs = pop.ask()
        for member, config in enumerate(configs):
            scores[member] += scenario.gain(space.to_unit(config), previous, step)
        previous = step
        picks.final = float(scores.max())
        target = scenario.optimum(step)
        for decision in pop.tell(step, list(scenario.observe(scores, noise))):
            if isinstance(decision, Clone):
                unit = space.to_unit(decision.config, log_space=True)
                picks.add(k, unit, space.to_unit(configs[decision.source]), target)
                scores[decision.member] = scores[decision.source]
    picks.fits = list(getattr(method.explorer, "fits", []))
    return picks, pop


def random_picks(scenario: Scenario, seed: int) -> Picks:
    """Fresh uniform draws at the sync points (one per point, like one clone per round)."""
    space, rng = default_space(), np.random.default_rng([seed, 2])
    picks = Picks()
    for k, step in enumerate(scenario.sync_points, start=1):
        picks.add(
            k, space.to_unit(space.sample(rng)), np.full(space.dim, np.nan), scenario.optimum(step)
        )
    return picks


def uniform_distance(scenario: Scenario, first: int = 1, draws: int = 200_000) -> float:
    """Expected distance of a uniform unit-cube draw to ``u*``, averaged over sync points."""
    rng = np.random.default_rng(0)
    u = rng.uniform(size=(draws, len(scenario.start)))
    steps = scenario.sync_points[first - 1 :]
    return float(np.mean([np.linalg.norm(u - scenario.optimum(s), axis=1).mean() for s in steps]))


def build_store(root: Path, scenario: Scenario) -> None:
    """Meta-data: ``pb2`` runs of ``scenario`` on the related tasks (the target not stored)."""
    for j, delta in enumerate(SHIFTS):
        for seed in META_SEEDS:
            _, pop = drive(scenario.shifted(delta), methods.make("pb2", QUANTILE), seed)
            save_run(
                root,
                pop.history,
                task=f"quality {scenario.name}-shift{j}",
                seed=seed,
                method="pb2",
                env=META_ENV,
                context={"shift": float(j + 1)},
            )


def scenario_rows(
    scenario: Scenario, names: list[str], seeds: int, tmp: Path, calibrate: bool = True
) -> dict[str, dict[str, Any]]:
    """Part 1 for one scenario: per method, per-seed picks summarised (and final scores)."""
    store = tmp / scenario.name
    target = f"quality {scenario.name}-target"
    if any(methods.uses_metadata(n) for n in names):
        build_store(store, scenario)
    rows: dict[str, dict[str, Any]] = {}
    for name in names:
        start = time.perf_counter()
        runs = []
        for seed in range(seeds):
            method = make_method(name, store, target, QUANTILE)
            picks, _ = drive(scenario, method, seed, calibrate=calibrate)
            if name == "random":  # no clones: fresh draws stand in for its picks
                picks = replace(random_picks(scenario, seed), final=picks.final)
            runs.append(picks)
        rows[name] = _summary(runs, time.perf_counter() - start)
        if scenario.name == "moving":
            fresh = make_method(name, store, target, QUANTILE)  # explorers keep state
            theirs = run_toy(fresh, 0, problem=scenario.toy).final
            rows[name]["same_as_run_toy"] = bool(np.isclose(runs[0].final, theirs, atol=1e-12))
        print(f"  {scenario.name:7s} {name:10s} {rows[name]['pick']:.3f}", flush=True)
    return rows


def _summary(runs: list[Picks], seconds: float) -> dict[str, Any]:
    per_round: dict[int, list[float]] = {}
    for picks in runs:
        for r, d in zip(picks.rounds, picks.pick, strict=True):
            per_round.setdefault(r, []).append(d)
    finals = [p.final for p in runs]
    deep = [f for p in runs for f in p.fits if f["model"] in ("dkl", "meta-dkl")]
    inside = [v for p in runs for v in p.coverage.inside]
    nll = [v for p in runs for v in p.coverage.nll]
    return {
        "coverage90": float(np.mean(inside)) if inside else None,
        "heldout_nll": float(np.median(nll)) if nll else None,
        "coverage_rows": len(inside),
        # deep kernels: how often training kept its start (PB2*'s fit, for the default dkl)
        # and how long the fitted feature lengthscale is (100: the features barely count)
        "deep_fits": len(deep),
        "deep_kept_start": float(np.mean([f["best_step"] == 0 for f in deep])) if deep else None,
        "deep_feature_lengthscale": median([f["lengthscale"] for f in deep]) if deep else None,
        "pick": median([p.mean("pick") for p in runs]),
        "pick_se": _median_se([p.mean("pick") for p in runs]),
        "pick_late": median([p.mean("pick", LATE) for p in runs]),
        "donor": median([p.mean("donor") for p in runs]),
        "face": float(np.mean([f for p in runs for f in p.face])),
        "per_seed_pick": [p.mean("pick") for p in runs],
        "per_seed_pick_late": [p.mean("pick", LATE) for p in runs],
        "per_seed_donor": [p.mean("donor") for p in runs],
        "per_round_mean_pick": {r: float(np.mean(v)) for r, v in sorted(per_round.items())},
        "finals": finals,
        "final_mean": float(np.mean(finals)),
        "final_sem": float(np.std(finals) / np.sqrt(len(finals))),
        "final_median": median(finals),
        "seconds": seconds,
    }


def _median_se(values: list[float], resamples: int = 2000) -> float:
    """Bootstrap standard error of the median over seeds."""
    rng = np.random.default_rng(0)
    v = np.asarray(values)
    return float(np.std(np.median(rng.choice(v, (resamples, len(v))), axis=1)))


def quality_table(rows: dict[str, Any], uniform: dict[str, float]) -> str:
    lines = [
        "| method | pick d (all) | ± SE | pick d (late) | donor d | picks on a face "
        "| in 90 % interval | held-out NLL |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in rows.items():
        cover = r.get("coverage90")
        lines.append(
            f"| {name} | {r['pick']:.3f} | {r['pick_se']:.3f} | {r['pick_late']:.3f} "
            f"| {_fmt(r['donor'])} "
            f"| {r['face']:.0%} | {'-' if cover is None else f'{cover:.2f}'} "
            f"| {_fmt(r.get('heldout_nll') or float('nan'))} |"
        )
    lines.append(
        f"| *uniform draw, E[d]* | {uniform['all']:.3f} | | {uniform['late']:.3f} | | | | |"
    )
    return "\n".join(lines)


def _fmt(value: float) -> str:
    return "-" if np.isnan(value) else f"{value:.3f}"


def toy_table(rows: dict[str, Any]) -> str:
    lines = ["| method | mean | sem | median |", "|---|---:|---:|---:|"]
    for name, r in rows.items():
        lines.append(
            f"| {name} | {r['final_mean']:.3f} | {r['final_sem']:.3f} | {r['final_median']:.3f} |"
        )
    return "\n".join(lines)


def report(quality: dict[str, Any], uniform: dict[str, Any], seeds: int) -> None:
    print(
        f"\nExplore picks: median over {seeds} seeds of each run's mean distance to u* (unit "
        f"cube, log lr); late = sync points >= {LATE}; donor d = copying the donor's config"
    )
    for name in quality:
        print(f"\n{name}\n")
        print(quality_table(quality[name], uniform[name]))
    for name in quality:
        print(f"\n{name}: best final true score over {seeds} seeds\n")
        print(toy_table(quality[name]))
    if "moving" not in quality:
        return
    checks = {n: r["same_as_run_toy"] for n, r in quality["moving"].items()}
    print(f"\nsame final score as metapbt.toy.run_toy (seed 0): {checks}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=DEFAULT_SEEDS)
    parser.add_argument("--methods", default=",".join(ALL_METHODS))
    parser.add_argument("--label", default="after")
    parser.add_argument(
        "--settings", default="", help="PB2Settings overrides, e.g. query=donor_now"
    )
    parser.add_argument(
        "--dkl", default="", help="DKLSettings overrides of dkl and meta-dkl, e.g. prior_std=0.3"
    )
    parser.add_argument(
        "--trust-region", default="", help="TrustRegionSettings overrides, e.g. init_length=0.2"
    )
    parser.add_argument(
        "--patience", default="", help="PatienceSettings overrides, e.g. window=3,tolerance=0.1"
    )
    parser.add_argument("--scenarios", default=",".join(s.name for s in SCENARIOS))
    parser.add_argument(
        "--no-calibration", action="store_true", help="skip the held-out coverage check"
    )
    args = parser.parse_args()
    settings = override_settings(args.settings)
    dkl = override_dkl(args.dkl)
    trust_region = override_trust_region(args.trust_region)
    patience = override_patience(args.patience)
    chosen = [s for s in SCENARIOS if s.name in args.scenarios.split(",")]
    names = [n.strip() for n in args.methods.split(",") if n.strip()]
    unknown = [n for n in names if n not in ALL_METHODS]
    if unknown:
        parser.error(f"unknown methods {unknown}; known: {', '.join(ALL_METHODS)}")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        quality = {
            s.name: scenario_rows(s, names, args.seeds, Path(tmp), not args.no_calibration)
            for s in chosen
        }
    uniform = {
        s.name: {"all": uniform_distance(s), "late": uniform_distance(s, LATE)} for s in chosen
    }
    seconds = time.perf_counter() - start
    report(quality, uniform, args.seeds)
    print(f"\ntotal {seconds:.0f} s")
    path = write(
        f"explore_quality_{args.label}",
        {
            "label": args.label,
            "settings": settings,
            "dkl": dkl,
            "trust_region": trust_region,
            "patience": patience,
            "seeds": args.seeds,
            "methods": names,
            "size": SIZE,
            "quantile": QUANTILE,
            "late_from": LATE,
            "scenarios": {s.name: s.__dict__ for s in chosen},
            "flat": {
                "floor": FLAT_FLOOR,
                "radius": FLAT_RADIUS,
                "rate": FLAT_RATE,
                "delay_intervals": FLAT_DELAY,
            },
            "meta": {"shifts": SHIFTS, "seeds": META_SEEDS, "method": "pb2"},
            "uniform_distance": uniform,
            "quality": quality,
            "toy": {"problem": MovingOptimum().__dict__, "same_as_run_toy": "quality.moving"},
            "seconds": seconds,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
