"""Polyak (exponential moving) averaging of network weights over env steps.

Hogwild updates keep the online weights moving: a greedy policy read at one
instant carries the noise of the last few thousand updates. An exponential
moving average of the weights, with a time constant measured in env steps,
smooths that noise; the trainer evaluates (and returns) the averaged weights
when `--average-steps` is set.

The average is updated whenever the trainer looks at the weights, after an
arbitrary number of steps; the weight of the new sample, 1 - exp(-dt / tau),
makes the result independent of how often that happens (for weights that do
not change in between, two updates of dt/2 equal one of dt).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch


def average_weight(steps: int, time_constant: float) -> float:
    """Weight of the current weights in an update after `steps` env steps."""
    if steps <= 0:
        return 0.0
    return 1.0 - math.exp(-steps / time_constant)


class WeightAverage:
    """Exponential moving average of a state dict, with a time constant in env steps."""

    def __init__(self, state: Mapping[str, torch.Tensor], time_constant: float, step: int) -> None:
        if time_constant <= 0:
            raise ValueError(f"time constant must be > 0, got {time_constant}")
        self.time_constant = float(time_constant)
        self.step = int(step)
        self.state = {k: v.detach().to(torch.float64).clone() for k, v in state.items()}

    def update(self, state: Mapping[str, torch.Tensor], step: int) -> None:
        """Move the average towards `state`, as seen at global env step `step`."""
        alpha = average_weight(step - self.step, self.time_constant)
        if alpha == 0.0:
            return
        for k, avg in self.state.items():
            avg.lerp_(state[k].detach().to(torch.float64), alpha)
        self.step = int(step)

    def weights(self, like: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The average as a state dict with the dtypes of `like` (a copy)."""
        return {k: self.state[k].to(like[k].dtype).clone() for k in like}
