import pandas as pd
import pytest

from metapbt.analysis.context_maps import (
    context_axes,
    context_grid,
    first_above,
    first_above_table,
    fraction_above,
    plot_heatmaps,
)
from metapbt.analysis.report import build_report
from metapbt.envs.contexts import task_features

LEGS = (1.6, 3.2, 8.0)


def lunar_results():
    """Two methods on three leg heights, two seeds, three steps; 'meta' is 50 above 'pb2'."""
    rows = []
    for leg in LEGS:
        for method, lift in (("pb2", 0.0), ("meta", 50.0)):
            for seed in (0, 1):
                for k, step in enumerate((50_000, 100_000, 150_000)):
                    best = -100.0 + 60.0 * k + 10.0 * leg + lift + seed
                    rows.append((f"lunar_lander leg_height={leg!r}", method, seed, step, best))
    return pd.DataFrame(rows, columns=["task", "method", "seed", "step", "best"])


def features(tasks):
    return {t: task_features(t) for t in tasks}


def test_the_varying_feature_orders_the_contexts_and_planets_are_left_out():
    tasks = [f"lunar_lander leg_height={v!r}" for v in (8.0, 1.6)] + [
        "cart_pole earth",
        "cart_pole neptune",
        "acrobot length=1.0,mass=2.0",
        "acrobot length=2.0,mass=1.0",  # two features move at once: no single axis
    ]
    axes = context_axes(features(tasks))
    assert axes == {
        "lunar_lander": (
            "leg_height",
            {"lunar_lander leg_height=8.0": 8.0, "lunar_lander leg_height=1.6": 1.6},
        )
    }


def test_grid_and_fraction_above_match_a_hand_computation():
    from metapbt.analysis.compare import seed_average

    avg = seed_average(lunar_results())
    _, values = context_axes(features(avg["task"].unique()))["lunar_lander"]
    grid = context_grid(avg, values, "pb2")
    assert list(grid.columns) == list(LEGS)
    # step 50k, leg 1.6: -100 + 16 + mean(seed 0, 1) = -83.5
    assert grid.loc[50_000, 1.6] == pytest.approx(-83.5)
    frac = fraction_above(avg, values, 0.0).set_index(["method", "step"])["fraction"]
    # pb2 at 50k: -83.5, -67.5, -19.5 -> none above 0; at 100k: -23.5, -7.5, 40.5 -> 1 of 3
    assert frac[("pb2", 50_000)] == 0.0
    assert frac[("pb2", 100_000)] == pytest.approx(1 / 3)
    # meta at 50k: -33.5, -17.5, 30.5 -> 1 of 3
    assert frac[("meta", 50_000)] == pytest.approx(1 / 3)
    first = first_above(avg, values, 0.0, ["pb2", "meta"])
    # pb2 at 150k on leg 1.6: -100 + 120 + 16 + 0.5 = 36.5 (100k: -23.5); meta: 100k (26.5).
    assert first.loc[1.6, "pb2"] == 150_000 and first.loc[1.6, "meta"] == 100_000
    assert first.loc[8.0, "meta"] == 50_000
    rows = first_above_table(first, "leg_height")
    assert rows[2] == "| 1.6 | 150k | **100k** |"
    never = first_above(avg, values, 1000.0, ["pb2"])
    assert never["pb2"].isna().all() and "| 1.6 | — |" in first_above_table(never, "leg")


def test_the_report_draws_the_context_section(tmp_path):
    results = lunar_results()
    path = build_report(results, tmp_path, features=features(results["task"]), above=0.0)
    text = path.read_text()
    assert "## Contexts" in text and "above 0" in text
    assert (tmp_path / "contexts" / "lunar_lander_heatmap.png").stat().st_size > 0
    assert (tmp_path / "contexts" / "lunar_lander_above.png").stat().st_size > 0
    plain = build_report(results, tmp_path / "plain", features=features(results["task"]))
    assert "## Contexts" in plain.read_text()
    assert not (tmp_path / "plain" / "contexts" / "lunar_lander_above.png").exists()
    assert "## Contexts" not in build_report(results, tmp_path / "none").read_text()


def test_the_heat_maps_keep_three_panels_to_a_row_to_read_at_page_width(tmp_path):
    from PIL import Image

    from metapbt.analysis.compare import seed_average

    results = lunar_results()
    more = [results.assign(method=results["method"] + f"-{k}") for k in range(2)]
    avg = seed_average(pd.concat(more))  # 4 methods: a row of 3, a row of 1
    _, values = context_axes(features(avg["task"].unique()))["lunar_lander"]
    order = sorted(avg["method"].unique())
    plot_heatmaps(avg, values, "leg_height", order, tmp_path / "four.png")
    plot_heatmaps(avg, values, "leg_height", order[:3], tmp_path / "three.png")
    four, three = (Image.open(tmp_path / f"{n}.png").size for n in ("four", "three"))
    assert four[0] == three[0] <= 850  # no wider than a row of 3 (a page is ~700 px)
    assert four[1] > 1.8 * three[1]  # the 4th panel went to a second row
