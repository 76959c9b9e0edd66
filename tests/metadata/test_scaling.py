import numpy as np
import pytest

from metapbt.metadata.scaling import MetaNormaliser, window_scaling


def task(seed=0):
    rng = np.random.default_rng(seed)
    time = np.repeat(np.arange(1, 11) * 1000.0, 4)
    reward = time / 100 + rng.standard_normal(40)
    y = np.sin(time / 3000) + 0.1 * rng.standard_normal(40)
    return time, reward, y


def test_round_trip_is_the_identity():
    time, reward, y = task()
    norm = MetaNormaliser.fit(time, reward, y)
    scaling = window_scaling(norm, time, reward, y, 3000, 6000)
    x = np.random.default_rng(1).uniform(size=(5, 5))
    np.testing.assert_allclose(scaling.to_target(scaling.to_meta(x)), x, atol=1e-8)
    np.testing.assert_array_equal(scaling.to_meta(x)[:, 2:], x[:, 2:])


def test_window_edges_map_onto_the_meta_window():
    time, reward, y = task()
    norm = MetaNormaliser.fit(time, reward, y)
    scaling = window_scaling(norm, time, reward, y, 3000, 6000)
    ends = scaling.to_meta(np.array([[0.0, 0.0, 0.5], [1.0, 1.0, 0.5]]))
    full = norm.inputs(np.array([3000.0, 6000.0]), np.zeros(2), np.zeros((2, 1)))
    np.testing.assert_allclose(ends[:, 0], full[:, 0], atol=1e-6)


def test_output_scaling_gives_the_z_score_of_the_matching_window():
    time, reward, y = task()
    norm = MetaNormaliser.fit(time, reward, y)
    scaling = window_scaling(norm, time, reward, y, 3000, 6000)
    inside = (time >= 3000) & (time <= 6000)
    raw = y[inside][:3]
    meta_z = (raw - norm.y_mean) / norm.y_std
    expected = (raw - y[inside].mean()) / (y[inside].std() + 1e-8)
    np.testing.assert_allclose(scaling.output(meta_z), expected, rtol=1e-6)
    _, var = scaling.output(meta_z, np.ones(3))
    assert var[0] == pytest.approx(scaling.output_scale**2)


def test_empty_window_uses_the_nearest_meta_time_instead_of_failing():
    time, reward, y = task()
    norm = MetaNormaliser.fit(time, reward, y)
    late = window_scaling(norm, time, reward, y, 50_000, 60_000)
    last = window_scaling(norm, time, reward, y, 10_000, 10_000)
    np.testing.assert_array_equal(late.input_scale, last.input_scale)
    np.testing.assert_array_equal(late.input_offset, last.input_offset)
    assert late.output_offset == last.output_offset
