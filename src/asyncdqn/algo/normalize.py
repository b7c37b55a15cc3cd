"""Observation normalization math: x' = clip((x - mean) / sqrt(var + EPS), -CLIP, CLIP).

Two ways to choose (mean, var), per observation dimension:

- bounds: from the space's finite bounds, mean = (low + high) / 2 and var = ((high - low) / 2)^2,
  so that the box maps onto [-1, 1] (a dimension with low == high keeps var 1: it is constant);
- running: the mean and (population) variance of every observation seen so far. Batches are
  combined with the parallel formula of Chan, Golub and LeVeque (1979): for parts A and B
  with n_A, n_B samples, delta = mean_B - mean_A, n = n_A + n_B,

      mean = mean_A + delta * n_B / n
      M2   = M2_A + M2_B + delta^2 * n_A * n_B / n      (M2 = var * count)

  which is exact whatever order the batches come in, so workers may merge their own
  batches into shared statistics one after another.

The state is (count, mean, var), float64; count 0 means "no data yet" (mean 0, var 1: the
identity). EPS and CLIP are those of Stable-Baselines3's VecNormalize.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-8
CLIP = 10.0


def merge(count_a: float, mean_a: np.ndarray, var_a: np.ndarray, count_b: float, mean_b: np.ndarray,
          var_b: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """(count, mean, var) of the union of two sample sets given each one's (count, mean, population var)."""
    if count_b <= 0:
        return count_a, np.array(mean_a, dtype=np.float64), np.array(var_a, dtype=np.float64)
    if count_a <= 0:
        return count_b, np.array(mean_b, dtype=np.float64), np.array(var_b, dtype=np.float64)
    n = count_a + count_b
    delta = np.asarray(mean_b, dtype=np.float64) - mean_a
    mean = mean_a + delta * (count_b / n)
    m2 = var_a * count_a + var_b * count_b + delta * delta * (count_a * count_b / n)
    return n, mean, m2 / n


def batch_moments(x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """(count, mean, population var) of the rows of x (N, D)."""
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    return float(len(x)), x.mean(axis=0), x.var(axis=0)


class RunningMeanVar:
    """Mean and variance of a stream of row batches, merged batch by batch (`merge`)."""

    def __init__(self, dim: int) -> None:
        self.count = 0.0
        self.mean = np.zeros(dim, dtype=np.float64)
        self.var = np.ones(dim, dtype=np.float64)

    def update(self, x: np.ndarray) -> None:
        self.count, self.mean, self.var = merge(self.count, self.mean, self.var, *batch_moments(x))

    def reset(self) -> None:
        self.count = 0.0
        self.mean[:] = 0.0
        self.var[:] = 1.0


def bounds_moments(low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, var) that map the box [low, high] onto [-1, 1]; ValueError naming any infinite bound."""
    low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    bad = np.flatnonzero(~(np.isfinite(low) & np.isfinite(high)))
    if bad.size:
        shown = ", ".join(f"{i} [{low[i]}, {high[i]}]" for i in bad[:4]) + (" ..." if bad.size > 4 else "")
        raise ValueError(f"{bad.size} of {low.size} observation dimensions have infinite bounds ({shown})")
    half = (high - low) / 2.0
    var = np.where(half > 0, half * half, 1.0)
    return (low + high) / 2.0, var


def scale_of(var: np.ndarray) -> np.ndarray:
    return np.sqrt(np.asarray(var, dtype=np.float64) + EPS)


def normalize(x: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """clip((x - mean) / scale, -CLIP, CLIP) as float32; x is (..., D)."""
    out = (np.asarray(x, dtype=np.float32) - mean.astype(np.float32)) / scale.astype(np.float32)
    return np.clip(out, -CLIP, CLIP, out=out)
