"""Count XLA CPU hangs of a per-member-context PPO program in fresh processes, in A/B arms.

The trigger (docs/stall-report.md): one jitted program trains 32 PPO members on CartPole, half
under Earth's gravity and half under Neptune's, the environment parameters passed *per member*
(traced, vmapped) instead of as compile-time constants. Such programs hung XLA's CPU runtime
in about 1 of 6 fresh processes (every thread parked, 0 % CPU).

Each trial is a fresh ``python tools/xla_stall.py child`` process with a timeout. A trial that
times out is a hang: before it is killed, its Python stacks (``faulthandler`` on SIGUSR1) and,
where gdb exists, its native stacks (``gdb -batch -ex 'thread apply all bt'``) are written to
``OUT/stacks/``. Arms are interleaved (trial k of every arm before trial k+1 of any), so a
drift in the machine's load hits every arm alike. Every finished trial is appended to
``OUT/trials.jsonl`` at once, so a killed characterisation resumes where it stopped::

    python tools/xla_stall.py run --trials 24 --out benchmarks/results/xla_stall
    python tools/xla_stall.py summary --out benchmarks/results/xla_stall   # Fisher's exact test
    python tools/xla_stall.py hlo --out /tmp/hlo   # the trigger's optimised HLO (--xla_dump_to)

Arms (``--arms``, comma-separated): ``baseline`` (JAX's defaults), ``eigen-off``
(``--xla_cpu_multi_thread_eigen=false``, what ``metapbt.runtime`` has set so far), ``ynn-off``
(``--xla_cpu_experimental_ynn_fusion_type=``: jaxlib 0.10.2's YNN fusion off), ``one-core``
(``taskset -c 0``), and ``prev-jaxlib`` (the same child under ``--prev-python``, an interpreter
with the previous jaxlib and metapbt installed).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ARMS: dict[str, dict[str, object]] = {
    "baseline": {"flags": ""},
    "eigen-off": {"flags": "--xla_cpu_multi_thread_eigen=false"},
    "ynn-off": {"flags": "--xla_cpu_experimental_ynn_fusion_type="},
    "one-core": {"flags": "", "prefix": ["taskset", "-c", "0"]},
    "prev-jaxlib": {"flags": "", "prev": True},
}
MEMBERS = 32
CONTEXTS = ("earth", "neptune")


def child(rounds: int, stacks: str | None, trigger: str) -> None:
    """Build the trigger and run it; print one JSON line of timings."""
    import faulthandler

    if stacks:
        handle = open(stacks, "w")  # noqa: SIM115 (kept open for the signal handler)
        faulthandler.register(signal.SIGUSR1, file=handle, all_threads=True)
    start = time.perf_counter()
    if trigger == "batch":
        _batch(start)
        return
    import jax

    from metapbt.engine import presets
    from metapbt.engine.trainer import PopulationTrainer

    ppo = presets.make("classic", env="cart_pole")
    contexts = [CONTEXTS[i * len(CONTEXTS) // MEMBERS] for i in range(MEMBERS)]
    trainer = PopulationTrainer("cart_pole", contexts, ppo, MEMBERS)  # traced, per member
    configs = [{"lr": 3e-4, "lambda": 0.95, "clip": 0.2}] * MEMBERS
    state = trainer.init(jax.random.PRNGKey(0), configs)
    times = []
    for _ in range(rounds):
        tick = time.perf_counter()
        state = trainer.train(state, 4 * ppo.batch_size)
        jax.block_until_ready(state)
        times.append(time.perf_counter() - tick)
    _print_result(times, start)


def _batch(start: float) -> None:
    """The ``batch`` trigger: what ``study run --mix-contexts`` runs, 8 runs x 4 members."""
    import tempfile

    from metapbt.runs.batch import RunJob, run_batch
    from metapbt.runs.config import RunConfig

    protocol = {"budget": 8000, "interval": 2000, "population": MEMBERS // 8}
    configs = [
        RunConfig(method="pb2-star", context=CONTEXTS[i % 2], seed=i, **protocol) for i in range(8)
    ]
    times: list[float] = []
    tick = time.perf_counter()

    def on_round(index: int, report: object) -> None:
        nonlocal tick
        if index == 0:
            times.append(time.perf_counter() - tick)
            tick = time.perf_counter()

    with tempfile.TemporaryDirectory() as out:
        jobs = [RunJob(c, Path(out) / f"run{i}") for i, c in enumerate(configs)]
        results = run_batch(jobs, on_round=on_round)
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        raise failed[0]
    _print_result(times, start)


def _print_result(times: list[float], start: float) -> None:
    """The trial's one JSON line: round times, total seconds, versions."""
    import jax
    import jaxlib

    total = time.perf_counter() - start
    result = {"rounds": times, "total": total, "jax": jax.__version__, "jaxlib": jaxlib.__version__}
    print(json.dumps(result))


def trial(
    arm: str, out: Path, index: int, timeout: float, rounds: int, prev: str | None, trigger: str
) -> dict:
    """One fresh process of ``arm``: ``ok``, ``hang`` (timed out) or ``crash``."""
    spec = ARMS[arm]
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    if spec["flags"]:
        env["XLA_FLAGS"] = str(spec["flags"])
    python = prev if spec.get("prev") else sys.executable
    if python is None:
        raise SystemExit("arm prev-jaxlib needs --prev-python")
    stacks = out / "stacks" / f"{arm}-{index}.py.txt"
    stacks.parent.mkdir(parents=True, exist_ok=True)
    command = [
        *spec.get("prefix", []),
        python,
        __file__,
        "child",
        "--rounds",
        str(rounds),
        "--stacks",
        str(stacks),
    ]
    start = time.perf_counter()
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    record: dict[str, object] = {"arm": arm, "index": index}
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _dump_native(proc.pid, out / "stacks" / f"{arm}-{index}.gdb.txt")
        proc.send_signal(signal.SIGUSR1)
        time.sleep(2)
        proc.kill()
        stdout, stderr = proc.communicate()
        record.update(outcome="hang", stacks=str(stacks))
    else:
        if proc.returncode == 0:
            record.update(outcome="ok", **json.loads(stdout.strip().splitlines()[-1]))
            stacks.unlink(missing_ok=True)
        else:
            record.update(outcome="crash", code=proc.returncode, stderr=stderr[-2000:])
    record["seconds"] = time.perf_counter() - start
    return record


def _dump_native(pid: int, path: Path) -> None:
    """Every native thread's stack of ``pid`` (gdb), where gdb exists and may attach."""
    from metapbt.studies.watchdog import native_stacks

    path.write_text(native_stacks(pid))


def run(args: argparse.Namespace) -> None:
    """Every arm's trials, interleaved; finished trials are skipped."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "trials.jsonl"
    done = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    arms = args.arms.split(",")
    for index in range(args.trials):
        for arm in arms:
            if any(r["arm"] == arm and r["index"] == index for r in done):
                continue
            record = trial(
                arm, out, index, args.timeout, args.rounds, args.prev_python, args.trigger
            )
            with log.open("a") as f:
                f.write(json.dumps(record) + "\n")
            print(
                f"{arm:12} trial {index:3}: {record['outcome']:5} {record['seconds']:.1f}s",
                flush=True,
            )
    summary(args)


def summary(args: argparse.Namespace) -> None:
    """Counts per arm and Fisher's exact test against the baseline (``summary.json``)."""
    from scipy.stats import fisher_exact

    out = Path(args.out)
    records = [json.loads(line) for line in (out / "trials.jsonl").read_text().splitlines()]
    arms = list(dict.fromkeys(r["arm"] for r in records))
    counts = {}
    for arm in arms:
        mine = [r for r in records if r["arm"] == arm]
        counts[arm] = {o: sum(r["outcome"] == o for r in mine) for o in ("ok", "hang", "crash")}
        times = sorted(r["total"] for r in mine if r["outcome"] == "ok")
        counts[arm]["median_ok_seconds"] = times[len(times) // 2] if times else None
        versions = {(r.get("jax"), r.get("jaxlib")) for r in mine if r["outcome"] == "ok"}
        counts[arm]["versions"] = sorted(f"jax {a} / jaxlib {b}" for a, b in versions)
    base = counts.get("baseline")
    for arm, c in counts.items():
        if base is not None and arm != "baseline":
            table = [[c["hang"], c["ok"]], [base["hang"], base["ok"]]]
            c["fisher_p_vs_baseline"] = float(fisher_exact(table)[1])
    (out / "summary.json").write_text(json.dumps(counts, indent=2))
    print(f"{'arm':12} {'ok':>4} {'hang':>5} {'crash':>6} {'p vs baseline':>14}")
    for arm, c in counts.items():
        p = c.get("fisher_p_vs_baseline")
        print(
            f"{arm:12} {c['ok']:4} {c['hang']:5} {c['crash']:6} "
            f"{'' if p is None else f'{p:.3f}':>14}"
        )


def hlo(args: argparse.Namespace) -> None:
    """Dump the trigger's HLO (before and after optimisation) to ``--out``."""
    env = {**os.environ, "XLA_FLAGS": f"--xla_dump_to={args.out} --xla_dump_hlo_as_text"}
    subprocess.run(
        [sys.executable, __file__, "child", "--trigger", "train", "--rounds", "1"],
        env=env,
        check=True,
    )


def main() -> None:
    """Command line: ``child``, ``run``, ``summary``, ``hlo``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("child")
    c.add_argument("--rounds", type=int, default=3)
    c.add_argument("--stacks", default=None)
    c.add_argument("--trigger", choices=("batch", "train"), default="batch")
    r = sub.add_parser("run")
    r.add_argument("--out", default="benchmarks/results/xla_stall")
    r.add_argument("--trials", type=int, default=24)
    r.add_argument("--arms", default="baseline,eigen-off,ynn-off,one-core")
    r.add_argument("--timeout", type=float, default=180.0)
    r.add_argument("--rounds", type=int, default=3)
    r.add_argument("--prev-python", default=None)
    r.add_argument("--trigger", choices=("batch", "train"), default="batch")
    s = sub.add_parser("summary")
    s.add_argument("--out", default="benchmarks/results/xla_stall")
    h = sub.add_parser("hlo")
    h.add_argument("--out", default="/tmp/xla_stall_hlo")
    args = parser.parse_args()
    if args.command == "child":
        child(args.rounds, args.stacks, args.trigger)
    else:
        {"run": run, "summary": summary, "hlo": hlo}[args.command](args)


if __name__ == "__main__":
    main()
