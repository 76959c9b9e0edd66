"""Where the explore step sends a clone, from the committed classic-control cells.

    python studies/warm_picks.py [STUDY.toml]   # default: studies/classic_control_repro.toml
    python studies/warm_picks.py STUDY.toml --seeds 5   # the study's first 5 seeds only

For every clone (a history row with ``clone_source >= 0`` at step ``s``), the clone's new
configuration is the one it trained with in the next interval, its donor's the one the donor
trained with in the interval that ended at ``s``. Per method and round (1-based sync point):

* ``d_donor``: mean distance from the new configuration to the donor's, in the unit cube with
  ``lr`` on its log scale (what the explore step changed; 0 = kept the donor's configuration);
* ``face``: share of new configurations with a coordinate within 1e-3 of a face of the cube;
* ``lr``: median ``lr`` of every member in that round (what the population trains with).

Writes ``<results>_report/warm_picks.md`` and ``warm_picks.json`` beside the study's report.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd

from metapbt.analysis.render import md_table
from metapbt.population.history import History
from metapbt.population.space import default_space
from metapbt.studies.config import load_study
from metapbt.studies.states import cell_dir

ROOT = Path(__file__).resolve().parent
FACE = 1e-3


def clone_rows(history: pd.DataFrame) -> pd.DataFrame:
    """One row per clone with a next interval: round, new config and donor config (unit)."""
    space = default_space()
    steps = sorted(history["step"].unique())
    nxt = dict(itertools.pairwise(steps))
    by = history.set_index(["step", "member"])
    rows = []
    for row in history[(history["clone_source"] >= 0) & history["step"].isin(nxt)].itertuples():
        new = by.loc[(nxt[row.step], row.member), space.names]
        donor = by.loc[(row.step, row.clone_source), space.names]
        u_new = space.to_unit(dict(new))
        u_donor = space.to_unit(dict(donor))
        rows.append(
            {
                "round": steps.index(row.step) + 1,
                "d_donor": float(np.linalg.norm(u_new - u_donor)),
                "face": bool(np.any((u_new < FACE) | (u_new > 1 - FACE))),
            }
        )
    return pd.DataFrame(rows)


def collect(study_file: Path, seeds: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Clones and per-round ``lr`` medians of every done cell of the study's first ``seeds``."""
    study = load_study(study_file)
    wanted = set(study.seed_list[:seeds])
    clones, lrs = [], []
    for cell in study.cells:
        path = cell_dir(study, cell) / "history.parquet"
        if cell.seed not in wanted or not (cell_dir(study, cell) / "summary.json").exists():
            continue
        history = History.from_parquet(path).to_frame()
        steps = sorted(history["step"].unique())
        label = cell.method.label
        picks = clone_rows(history)
        if len(picks):
            clones.append(picks.assign(method=label))
        per_round = history.groupby("step")["lr"].median()
        lrs.append(
            pd.DataFrame(
                {
                    "method": label,
                    "round": [steps.index(s) + 1 for s in per_round.index],
                    "lr": per_round.to_numpy(),
                }
            )
        )
    return pd.concat(clones), pd.concat(lrs)


def _md(frame: pd.DataFrame, fmt: str) -> str:
    """A method x columns table as Markdown, values formatted with ``fmt``."""
    header = ["method", *[str(c) for c in frame.columns]]
    values = frame.to_numpy()
    pairs = zip(frame.index, values, strict=True)
    rows = [[str(i), *[format(v, fmt) for v in r]] for i, r in pairs]
    return md_table(header, rows)


def tables(clones: pd.DataFrame, lrs: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per method x round: mean distance to the donor, share on a face, median lr."""
    d = clones.pivot_table(index="method", columns="round", values="d_donor", aggfunc="mean")
    face = clones.pivot_table(index="method", columns="round", values="face", aggfunc="mean")
    lr = lrs.pivot_table(index="method", columns="round", values="lr", aggfunc="median")
    overall = pd.DataFrame(
        {
            "d_donor": clones.groupby("method")["d_donor"].mean(),
            "face": clones.groupby("method")["face"].mean(),
            "clones": clones.groupby("method").size().astype(float),
        }
    )
    return {"overall": overall, "d_donor": d, "face": face, "lr": lr}


def main() -> None:
    """Print the tables and write them beside the study's report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("study", nargs="?", type=Path, default=ROOT / "classic_control_repro.toml")
    parser.add_argument("--seeds", type=int, help="read the study's first N seeds (default: all)")
    args = parser.parse_args()
    study = load_study(args.study)
    clones, lrs = collect(args.study, args.seeds)
    seeds = study.seed_list[: args.seeds]
    out = Path(f"{study.results_dir}_report")
    out.mkdir(parents=True, exist_ok=True)
    parts = tables(clones, lrs)
    lines = [
        f"# Where the explore step sends a clone ({study.name})",
        "",
        "Distance from a clone's new configuration to its donor's (unit cube, log lr), share of "
        "new configurations on a face of the cube, and the population's median lr, per method "
        f"and round (`python studies/warm_picks.py`), over the done cells of seeds "
        f"{seeds[0]}-{seeds[-1]}.",
        "",
        "## Over all rounds",
        "",
        _md(parts["overall"], ".3f"),
    ]
    for name, fmt in (("d_donor", ".2f"), ("face", ".2f"), ("lr", ".1e")):
        lines += ["", f"## {name} per round", "", _md(parts[name], fmt)]
    (out / "warm_picks.md").write_text("\n".join(lines) + "\n")
    payload = {k: json.loads(v.to_json()) for k, v in parts.items()}
    (out / "warm_picks.json").write_text(json.dumps(payload, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
