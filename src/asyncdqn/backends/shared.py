"""The state every learner shares, built once per run: the online Q-network and its target
copy in shared memory, the shared optimizer (its moments in shared memory too), and the
global step counter (and the observation statistics of --normalize-obs). Every backend and benchmark builds it here."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch

from asyncdqn.algo.optim import SharedAdam, SharedRAdam, SharedRMSprop
from asyncdqn.backends.base import (
    OwnedLock,
    SharedCounter,
    SharedObsStats,
    SharedTarget,
    SharedTraining,
)
from asyncdqn.config import Config
from asyncdqn.envs import EnvSpec
from asyncdqn.envs.normalize import initial_stats
from asyncdqn.errors import ConfigError
from asyncdqn.model import build_network, flatten_parameters


def make_optimizer(cfg: Config, model: torch.nn.Module, lock: Any = None) -> SharedAdam | SharedRMSprop:
    if cfg.optimizer == "rmsprop":
        return SharedRMSprop(model.parameters(), lr=cfg.lr, alpha=cfg.rms_alpha, eps=cfg.rms_eps, lock=lock)
    if cfg.optimizer == "radam":
        return SharedRAdam(model.parameters(), lr=cfg.lr, eps=cfg.adam_eps, lock=lock)
    return SharedAdam(model.parameters(), lr=cfg.lr, eps=cfg.adam_eps, lock=lock)


def build_shared(cfg: Config, spec: EnvSpec) -> SharedTraining:
    """The online network, its target copy and the shared optimizer, all in shared memory."""
    try:
        model = build_network(cfg.network, spec.shape, spec.n_actions, cfg.hidden_sizes, cfg.seed, cfg.layer_norm)
    except ValueError as exc:
        raise ConfigError(f"network: {exc}") from None
    shared = share_training(cfg, model)
    shared.obs_stats = make_obs_stats(cfg)
    return shared


def make_obs_stats(cfg: Config) -> SharedObsStats | None:
    """The shared observation statistics of --normalize-obs (None for none); ConfigError if the
    environment's observations cannot be normalized that way."""
    try:
        init = initial_stats(cfg.normalize_obs, cfg.env_id, cfg.max_episode_steps, cfg.env_kwargs)
    except ValueError as exc:
        raise ConfigError(f"normalize_obs: {exc}") from None
    return None if init is None else SharedObsStats(*init)


def share_training(cfg: Config, model: torch.nn.Module,
                   make_target: Callable[[torch.nn.Module], SharedTarget] = SharedTarget) -> SharedTraining:
    """Put `model` (the online network), a target copy of it, the shared optimizer and the step counter
    in shared memory, in the layout every backend's workers expect: the online parameters are views of
    one flat buffer, so the shared optimizer updates all of them in one pass (a ray node group builds
    its local state here too)."""
    target_model = copy.deepcopy(model)
    for p in target_model.parameters():
        p.requires_grad_(False)
    flatten_parameters(model)  # one buffer: the shared optimizer updates it in one pass
    model.share_memory()
    target_model.share_memory()
    optimizer_lock = OwnedLock()  # its step count's lock: breakable if a worker dies holding it
    return SharedTraining(
        model=model,
        optimizer=make_optimizer(cfg, model, optimizer_lock),
        optimizer_lock=optimizer_lock,
        target=make_target(target_model),
        counter=SharedCounter(cfg.resolved_workers()),
    )
