"""Observation spaces the Q-networks take: a 1-D float Box, or a uint8 image Box.

Every other space a Gymnasium env may bring (Discrete, MultiDiscrete, MultiBinary, an
n-D Box that is not an image, and Tuple/Dict of these) is turned into a float32 1-D
Box at env creation (`make_env`) by `FlatObservation`, with Gymnasium's own space
utilities: `flatten_space` for the space and `flatten` for each observation. So Discrete
and MultiDiscrete values arrive one-hot, MultiBinary as its 0/1 bits, a Box as its values
in C order, a Tuple/Dict as its parts' flattenings side by side (Dict: sorted by key, as
Gymnasium orders them). Learners, vector steppers, evaluation, render, checkpoints and
`load_policy` all see only the flat Box.

Refused with a one-line reason: images inside a Tuple/Dict (the conv nets take one image
Box; flattening would feed raw pixels to an MLP) and spaces without a fixed size
(Text, Sequence, Graph).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.spaces.utils import flatten, flatten_space

from asyncdqn.errors import EnvError

_FLATTENABLE = (gym.spaces.Box, gym.spaces.Discrete, gym.spaces.MultiDiscrete, gym.spaces.MultiBinary,
                gym.spaces.Tuple, gym.spaces.Dict)


def is_image(space: gym.Space[Any]) -> bool:
    """A uint8 Box of rank 3 (H x W x C or C x H x W): the conv nets' input."""
    return isinstance(space, gym.spaces.Box) and len(space.shape) == 3 and space.dtype == np.uint8


def is_flat(space: gym.Space[Any]) -> bool:
    """A 1-D Box: taken as it is (cast to float32 by the steppers)."""
    return isinstance(space, gym.spaces.Box) and len(space.shape) == 1


def needs_flattening(space: gym.Space[Any]) -> bool:
    return not (is_flat(space) or is_image(space))


def _check_flattenable(space: gym.Space[Any], where: str) -> None:
    if not isinstance(space, _FLATTENABLE):
        raise EnvError(f"{where}{type(space).__name__} has no fixed size; asyncdqn takes Box, Discrete, "
                       "MultiDiscrete, MultiBinary, and Tuple/Dict of these")
    if isinstance(space, (gym.spaces.Tuple, gym.spaces.Dict)):
        items = space.spaces.items() if isinstance(space, gym.spaces.Dict) else enumerate(space.spaces)
        for key, sub in items:
            name = f"{where}[{key!r}] "
            if is_image(sub):
                raise EnvError(f"{name}is an image inside a {type(space).__name__}: the conv nets take one "
                               "image Box observation, and flattening would feed raw pixels to an MLP")
            _check_flattenable(sub, name)


def flat_space(space: gym.Space[Any]) -> gym.spaces.Box:
    """The float32 1-D Box `FlatObservation` turns `space` into (EnvError if it cannot)."""
    _check_flattenable(space, "observation space ")
    box = flatten_space(space)
    assert isinstance(box, gym.spaces.Box)  # every space _check_flattenable accepts flattens to a Box
    return gym.spaces.Box(box.low.astype(np.float32), box.high.astype(np.float32), dtype=np.float32)


class FlatObservation(gym.ObservationWrapper[np.ndarray, Any, Any]):
    """Observations of `env` flattened (gymnasium.spaces.utils.flatten) to a float32 vector."""

    def __init__(self, env: gym.Env[Any, Any]) -> None:
        super().__init__(env)
        self.raw_space = env.observation_space
        self.observation_space = flat_space(self.raw_space)

    def observation(self, observation: Any) -> np.ndarray:
        return np.asarray(flatten(self.raw_space, observation), dtype=np.float32)


def flat_observation(space: gym.Space[Any], observation: Any) -> np.ndarray:
    """One observation of `space` as the networks see it (float32 1-D when `space` is flattened)."""
    if needs_flattening(space):
        return np.asarray(flatten(space, observation), dtype=np.float32)
    return np.asarray(observation)
