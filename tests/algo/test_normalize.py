"""Observation normalization math (algo/normalize.py): hand-computed values and numpy's moments."""

from __future__ import annotations

import numpy as np
import pytest

from asyncdqn.algo.normalize import (
    CLIP,
    EPS,
    RunningMeanVar,
    batch_moments,
    bounds_moments,
    merge,
    normalize,
    scale_of,
)


def test_merge_of_two_hand_computed_parts() -> None:
    # {1, 3} (mean 2, var 1) and {5} (mean 5, var 0): the union {1, 3, 5} has mean 3, var 8/3
    n, mean, var = merge(2.0, np.array([2.0]), np.array([1.0]), 1.0, np.array([5.0]), np.array([0.0]))
    assert n == 3.0
    assert mean[0] == pytest.approx(3.0) and var[0] == pytest.approx(8.0 / 3.0)


def test_merge_with_nothing_is_the_other_part() -> None:
    n, mean, var = merge(0.0, np.zeros(2), np.ones(2), 4.0, np.array([1.0, 2.0]), np.array([0.5, 0.25]))
    assert n == 4.0 and mean.tolist() == [1.0, 2.0] and var.tolist() == [0.5, 0.25]
    n, mean, var = merge(4.0, np.array([1.0, 2.0]), np.array([0.5, 0.25]), 0.0, np.zeros(2), np.ones(2))
    assert n == 4.0 and mean.tolist() == [1.0, 2.0] and var.tolist() == [0.5, 0.25]


def test_a_stream_of_batches_matches_numpy_in_any_order() -> None:
    rng = np.random.default_rng(0)
    batches = [rng.normal(loc=[-0.5, 0.0, 100.0], scale=[0.1, 0.01, 30.0], size=(int(k), 3))
               for k in rng.integers(1, 40, size=25)]
    data = np.concatenate(batches)
    for order in (range(len(batches)), reversed(range(len(batches)))):
        rmv = RunningMeanVar(3)
        for i in order:
            rmv.update(batches[i])
        assert rmv.count == len(data)
        np.testing.assert_allclose(rmv.mean, data.mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(rmv.var, data.var(axis=0), rtol=1e-10)


def test_merging_two_workers_partial_statistics_equals_one_stream() -> None:
    """The parallel formula: worker A's and worker B's statistics merged = statistics of all rows."""
    rng = np.random.default_rng(1)
    a, b = rng.normal(3.0, 2.0, size=(50, 2)), rng.normal(-1.0, 0.5, size=(7, 2))
    n, mean, var = merge(*batch_moments(a), *batch_moments(b))
    both = np.concatenate([a, b])
    assert n == 57
    np.testing.assert_allclose(mean, both.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(var, both.var(axis=0), rtol=1e-12)


def test_bounds_map_the_box_onto_minus_one_one() -> None:
    low, high = np.array([-1.2, -0.07, 2.0]), np.array([0.6, 0.07, 2.0])  # MountainCar + a constant dim
    mean, var = bounds_moments(low, high)
    np.testing.assert_allclose(mean, [-0.3, 0.0, 2.0])
    np.testing.assert_allclose(var, [0.81, 0.0049, 1.0])  # a constant dimension keeps var 1
    x = np.stack([low, high, (low + high) / 2])
    out = normalize(x, mean, scale_of(var))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[-1, -1, 0], [1, 1, 0], [0, 0, 0]], atol=1e-5)


def test_bounds_name_the_infinite_dimensions() -> None:
    with pytest.raises(ValueError, match=r"2 of 4 observation dimensions have infinite bounds \(1 \[-inf, inf\], 3"):
        bounds_moments(np.array([-4.8, -np.inf, -0.4, -np.inf]), np.array([4.8, np.inf, 0.4, np.inf]))


def test_normalize_is_the_formula_and_clips() -> None:
    mean, var = np.array([1.0, -2.0]), np.array([4.0, 0.0])
    x = np.array([[3.0, -2.0], [1.0, 5.0]])
    out = normalize(x, mean, scale_of(var))
    assert out[0, 0] == pytest.approx(2.0 / np.sqrt(4.0 + EPS))
    assert out[0, 1] == 0.0
    assert out[1, 1] == CLIP  # 7 / 1e-4 is clipped
