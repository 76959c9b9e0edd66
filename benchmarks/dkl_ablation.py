"""Why did the deep kernel pick no better than uniform draws? One change at a time, measured.

    python benchmarks/dkl_ablation.py [--seeds 10] [--summarise-only]

Runs ``benchmarks/explore_quality.py`` for ``dkl`` on the *rising* and *moving* problems once
per variant of ``DKLSettings`` below (each a ``--dkl`` override of the settings the variant
starts from), then ``dkl`` and ``meta-dkl`` on all three problems for the last candidates, and
writes one table: per variant, the median distance of the picks to the optimum (all picks and
from sync point 5 on) and the fraction of held-out rows inside the model's 90 % predictive
interval. A variant whose JSON exists is not run again (delete it to rerun). ``overrides``
start from the settings before this study (no raw factor, no prior, no PB2* start), so every
row is comparable to ``old``.

Runtime: about 1.5 minutes per variant at 10 seeds on the 2-core machine (quality, not speed:
other work may run meanwhile). Writes benchmarks/results/dkl_ablation.json (and one
explore_quality_dkl_<name>.json / explore_quality_all_<name>.json per variant).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from _common import write

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
OLD = "raw_factor=false,start_from_gp=false,prior_std=none"

#: name -> (what changes, --dkl overrides); dkl only, rising and moving.
ONE_AT_A_TIME: dict[str, tuple[str, str]] = {
    "base": ("the deep kernel before (maximum likelihood, warm network)", OLD),
    "nf01": ("noise floor 0.01", f"{OLD},noise_floor=0.01"),
    "nf05": ("noise floor 0.05", f"{OLD},noise_floor=0.05"),
    "p1": (
        "Gaussian prior on the weights, std 1 (anchored at the initial weights)",
        f"{OLD},prior_std=1.0",
    ),
    "p03": ("weight prior std 0.3", f"{OLD},prior_std=0.3"),
    "p01": ("weight prior std 0.1", f"{OLD},prior_std=0.1"),
    "p003": ("weight prior std 0.03", f"{OLD},prior_std=0.03"),
    "cold": ("each round from the initial network, not the last fit", f"{OLD},warm_network=false"),
    "p01cold": ("prior 0.1, cold network", f"{OLD},prior_std=0.1,warm_network=false"),
    "s100": ("100 Adam steps instead of 300", f"{OLD},steps=100"),
    "f4": ("4 features instead of 2", f"{OLD},features=4"),
    "h8": ("hidden layers 8x8 instead of 32x32", f"{OLD},hidden=8x8"),
    "plain": ("UCB's variance from a PB2* GP (the reference's choice)", f"{OLD},variance=plain"),
    "raw": ("times PB2*'s SE factor on the raw inputs", f"{OLD},raw_factor=true"),
    "rawp03": ("raw factor, prior 0.3", f"{OLD},raw_factor=true,prior_std=0.3"),
    "rawp01": ("raw factor, prior 0.1", f"{OLD},raw_factor=true,prior_std=0.1"),
    "rawp003": ("raw factor, prior 0.03", f"{OLD},raw_factor=true,prior_std=0.03"),
    "rawp001": ("raw factor, prior 0.01", f"{OLD},raw_factor=true,prior_std=0.01"),
    "rawp01cold": (
        "raw factor, prior 0.1, cold network",
        f"{OLD},raw_factor=true,prior_std=0.1,warm_network=false",
    ),
    "rawp003cold": (
        "raw factor, prior 0.03, cold network",
        f"{OLD},raw_factor=true,prior_std=0.03,warm_network=false",
    ),
    "rawp003f4": (
        "raw factor, prior 0.03, 4 features",
        f"{OLD},raw_factor=true,prior_std=0.03,features=4",
    ),
    "rawplain": ("raw factor, plain variance", f"{OLD},raw_factor=true,variance=plain"),
    "gp": (
        "raw factor, each fit starting from PB2*'s L-BFGS fit of the same rows",
        f"{OLD},raw_factor=true,start_from_gp=true",
    ),
    "gpp01": (
        "PB2* start, prior 0.1",
        f"{OLD},raw_factor=true,start_from_gp=true,prior_std=0.1",
    ),
    "gpp003": (
        "PB2* start, prior 0.03 (the new default of dkl)",
        f"{OLD},raw_factor=true,start_from_gp=true,prior_std=0.03",
    ),
}
#: name -> overrides; dkl and meta-dkl (meta-dkl: dkl's settings, 100 steps, no prior unless
#: the override sets one), all three problems.
WITH_META: dict[str, str] = {
    "gp": ONE_AT_A_TIME["gp"][1],
    "gpp003": ONE_AT_A_TIME["gpp003"][1],
    "rawp001": ONE_AT_A_TIME["rawp001"][1],
}


def run(label: str, seeds: int, methods: str, scenarios: str, overrides: str) -> Path:
    path = RESULTS / f"explore_quality_{label}.json"
    if not path.exists():
        subprocess.run(
            [
                sys.executable,
                str(HERE / "explore_quality.py"),
                f"--seeds={seeds}",
                f"--methods={methods}",
                f"--scenarios={scenarios}",
                f"--dkl={overrides}",
                f"--label={label}",
            ],
            check=True,
        )
    return path


def row(path: Path, method: str) -> dict[str, dict[str, float | None]]:
    data = json.loads(path.read_text())
    return {
        scenario: {
            "pick": r["pick"],
            "pick_se": r["pick_se"],
            "pick_late": r["pick_late"],
            "coverage90": r.get("coverage90"),
            "kept_start": r.get("deep_kept_start"),
        }
        for scenario, rows in data["quality"].items()
        for name, r in rows.items()
        if name == method
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--summarise-only", action="store_true")
    args = parser.parse_args()
    table: dict[str, dict] = {"one_at_a_time": {}, "with_meta": {}}
    for name, (what, overrides) in ONE_AT_A_TIME.items():
        label = f"dkl_{name}"
        path = RESULTS / f"explore_quality_{label}.json"
        if not args.summarise_only:
            run(label, args.seeds, "dkl", "rising,moving", overrides)
        if path.exists():
            table["one_at_a_time"][name] = {"change": what, "overrides": overrides}
            table["one_at_a_time"][name]["dkl"] = row(path, "dkl")
    for name, overrides in WITH_META.items():
        label = f"all_{name}"
        path = RESULTS / f"explore_quality_{label}.json"
        if not args.summarise_only:
            run(label, args.seeds, "dkl,meta-dkl", "rising,flat,moving", overrides)
        if path.exists():
            table["with_meta"][name] = {m: row(path, m) for m in ("dkl", "meta-dkl")}
    print("| variant | change | rising d | moving d | in 90 % (rising / moving) |")
    print("|---|---|---:|---:|---:|")
    for name, r in table["one_at_a_time"].items():
        q = r["dkl"]
        print(
            f"| {name} | {r['change']} | {q['rising']['pick']:.3f} | {q['moving']['pick']:.3f} "
            f"| {q['rising']['coverage90']:.2f} / {q['moving']['coverage90']:.2f} |"
        )
    print(f"\nwrote {write('dkl_ablation', {'seeds': args.seeds, **table})}")


if __name__ == "__main__":
    main()
