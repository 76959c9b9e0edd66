import re

import numpy as np
import pandas as pd
import pytest

from metapbt.analysis.report import build_report
from metapbt.errors import ConfigError

TASKS = ("cart_pole earth", "cart_pole mars", "pendulum moon")
STEPS = (40_000, 80_000, 120_000, 160_000)


def synthetic_results(methods=("pbt", "pb2", "random"), seed=0):
    rng = np.random.default_rng(seed)
    rows = [
        (task, method, s, step, 10.0 * i + step / 1e4 + rng.normal())
        for task in TASKS
        for i, method in enumerate(methods)
        for s in (0, 1)
        for step in STEPS
    ]
    return pd.DataFrame(rows, columns=["task", "method", "seed", "step", "best"])


def synthetic_history(seed=0):
    rng = np.random.default_rng(seed)
    rows = [
        (
            step,
            member,
            rng.normal(),
            0 if (member == 3 and step > 40_000) else -1,
            1e-4 * (member + 1),
            0.95,
            0.2,
        )
        for step in STEPS[:2]
        for member in range(4)
    ]
    columns = ["step", "member", "reward", "clone_source", "lr", "lambda", "clip_param"]
    return pd.DataFrame(rows, columns=columns)


def image_links(report):
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report)


def test_report_writes_every_figure_and_links_them(tmp_path):
    path = build_report(
        synthetic_results(),
        tmp_path / "out",
        {"pb2 / seed 0": synthetic_history()},
        title="Synthetic",
    )
    out = tmp_path / "out"
    assert path == out / "report.md"
    expected = {
        "normalised.png",
        "ranks.png",
        "critical_difference.png",
        "intervals.png",
        "improvement.png",
        "intervals_anytime.png",
        "improvement_anytime.png",
        "curves/cart_pole_earth.png",
        "curves/cart_pole_mars.png",
        "curves/pendulum_moon.png",
        "schedules/pb2_seed_0.png",
    }
    written = {p.relative_to(out).as_posix() for p in out.rglob("*.png")}
    assert written == expected  # no temporary files left behind either
    report = path.read_text()
    assert set(image_links(report)) == expected
    assert report.startswith("# Synthetic")
    # "random" is best everywhere, "pbt" worst: rank table, CD and final-step table agree.
    assert "| random | 1.00 | 1.00 |" in report and "| pbt | 3.00 | 3.00 |" in report
    assert "friedman test p-value" in report and "critical difference **" in report
    assert re.search(r"\| mean \| [^|]+ \| [^|]+ \| \*\*[^|]+\*\* †? \|", report)
    # Best everywhere: first by IQM, and P(random > pbt) = 1 with a point interval, in bold.
    assert re.search(
        r"\| method \| IQM \| 95 % CI \| mean \| 95 % CI \|\n\|[-|]+\|\n\| random ", report
    )
    assert "**1.00 [1.00, 1.00]**" in report


def test_report_with_two_methods_explains_the_missing_diagram(tmp_path):
    (tmp_path / "critical_difference.png").write_bytes(b"stale")
    path = build_report(synthetic_results(methods=("pbt", "pb2")), tmp_path)
    report = path.read_text()
    assert not (tmp_path / "critical_difference.png").exists()
    assert "critical_difference.png" not in report
    assert "No diagram" in report and "wilcoxon" in report
    assert all((tmp_path / link).is_file() for link in image_links(report))


def test_report_rejects_a_history_without_its_columns(tmp_path):
    with pytest.raises(ConfigError, match="clone_source"):
        build_report(
            synthetic_results(), tmp_path, {"bad": synthetic_history().drop(columns="clone_source")}
        )
    assert not (tmp_path / "report.md").exists()
