"""Hyper-parameter presets, in typed code (nothing is loaded from disk).

Environment presets apply automatically to their environment id; named presets
are chosen with `--preset NAME` and applied over the environment preset.
"""

from __future__ import annotations

import re
from typing import Any

from asyncdqn.errors import ConfigError

# Each preset holds only what differs from the layers below it (Config defaults, then the
# environment preset); docs/presets.md gives the measurement behind every entry.
ENV_PRESETS: dict[str, dict[str, Any]] = {
    # n-step Q solves 5/5 seeds in 600 s (docs/presets.md).
    "CartPole-v1": {
        "hidden_sizes": (64, 64),
        "lr": 1e-3,
        "envs_per_worker": 4,
        "target_update_steps": 2000,
        "eps_anneal_steps": 20_000,
        "final_epsilons": (0.1, 0.01, 0.05),
        "solve_score": 475.0,
        "max_seconds": 600.0,
        "eval_every_steps": 20_000,
    },
    # n-step Q solves 5/5 seeds in 600 s (docs/presets.md).
    "Acrobot-v1": {
        "hidden_sizes": (64, 64),
        "lr": 1e-3,
        "target_update_steps": 2000,
        "eps_anneal_steps": 30_000,
        "solve_score": -100.0,
        "max_seconds": 600.0,
        "eval_every_steps": 50_000,
    },
    # Trains with --algo dqn (ALGO_REASONS); the rest is for an explicit asynchronous --algo (docs/presets.md).
    # dqn with its defaults: n-step Q stayed at a greedy -200 for 1M+ steps. Gymnasium's threshold of 8
    # is above the optimal policy's 7.93 (value iteration): the score is the one an optimal policy's
    # 100-episode mean reaches 95 % of the time (docs/presets.md).
    "Taxi-v4": {
        "algo": "dqn",
        "solve_score": 7.5,
        "max_steps": 1_000_000,
        "eval_every_steps": 50_000,
    },
    "MountainCar-v0": {
        "algo": "dqn",
        "hidden_sizes": (64, 64),
        "t_max": 20,
        "lr": 1e-3,
        "envs_per_worker": 16,
        "target_update_steps": 5000,
        "eps_anneal_steps": 200_000,
        "max_seconds": 900.0,
    },
    # Slippery 4x4, one-hot cells; n-step Q solves 5/5 seeds, 0.70 is Gymnasium's reward_threshold (docs/presets.md).
    "FrozenLake-v1": {
        "hidden_sizes": (64, 64),
        "t_max": 10,
        "lr": 1e-3,
        "eps_anneal_steps": 50_000,
        "solve_score": 0.70,
        "max_steps": 1_000_000,
        "eval_every_steps": 25_000,
    },
    # The sweep of benchmarks/README.md; the n-step-q entry below refines it (docs/presets.md).
    "LunarLander-v3": {
        "gamma": 0.995,
        "lr": 1e-3,
        "grad_clip": 1.0,
        "average_steps": 300_000,
        "eps_draw": "env",
        "final_epsilons": (0.05, 0.01, 0.1),
        "solve_score": 200.0,
        "max_seconds": 600.0,
    },
}

# Pixel games: the paper's linearly annealed lr and epsilon mix (drawn per environment), budgets
# in agent steps, no solve score (docs/pixels.md, docs/presets.md).
_PIXELS: dict[str, Any] = {
    "lr_anneal": True,
    "eps_draw": "env",
    "eval_every_steps": 250_000,
    "checkpoint_every": 1_000_000,
}
# Every ALE/<Game>-v5 id takes this family preset (env_preset); a game refined by measurement
# gets its own entry in ENV_PRESETS. PQN's recipe on the asynchronous learner: the Nature net with
# LayerNorm, RAdam, epsilon to 0.01 over 1.6M frames; evaluations of 10 games act with DQN's
# epsilon 0.05 (docs/presets.md, docs/pixels.md). The rest of the recipe is n-step-q's (below).
ATARI_PRESET: dict[str, Any] = {
    **_PIXELS,
    "network": "nature",
    "layer_norm": True,
    "optimizer": "radam",
    "lr": 2.5e-4,
    "adam_eps": 1e-5,
    "eps_anneal_steps": 400_000,  # 1.6M frames
    "final_epsilons": (0.01,),
    "final_epsilon_probs": (1.0,),
    "max_steps": 10_000_000,  # 40M frames: a budget, not a measured solve time
    "eval_episodes": 10,
    "eval_epsilon": 0.05,
}
# The part of the recipe measured with n-step-q only (the default algorithm): Q(lambda) over 32-step
# segments, no target network, 2 epochs of 8 minibatches. algo_preset gives it to every Atari id,
# so --algo one-step-q or dqn on an Atari game keeps the family's net and optimizer with its own targets.
ATARI_NSTEP_PRESET: dict[str, Any] = {
    "returns": "lambda",
    "target_update_steps": 0,
    "t_max": 32,
    "epochs": 2,
    # 8 minibatches of 32 rows, not 2 of 128: the same rows, 4x the optimizer steps. Pong (sticky
    # actions) at ~28 minutes: +5.5 and +7.6 on seeds 100 and 103 against -6.1 and -14.5 on seeds
    # 100 and 101 with 2 (benchmarks/records/pong-minibatches-2026-12-08), at ~15 % fewer steps/s.
    "minibatches": 8,
}
for _game in ("Pong", "Breakout"):
    ENV_PRESETS[f"ALE/{_game}-v5"] = dict(ATARI_PRESET)
ATARI_ID = re.compile(r"ALE/[A-Za-z0-9]+-v5")  # the ids the Atari family preset applies to
MINATAR_GAMES = ("Asterix", "Breakout", "Freeway", "Seaquest", "SpaceInvaders")
for _game in MINATAR_GAMES:
    # Adam, not the paper's RMSProp (1M-step probes, docs/presets.md); epsilon anneals over 5 % of the budget.
    # LayerNorm: Breakout at 5M on seeds 0-2, final 25.1 with against 12.9 without (docs/presets.md).
    ENV_PRESETS[f"MinAtar/{_game}-v1"] = {
        **_PIXELS,
        "layer_norm": True,
        "envs_per_worker": 16,
        "eps_anneal_steps": 250_000,
        "target_update_steps": 40_000,  # the paper's 40k frames (MinAtar has no frame skip)
        "max_steps": 5_000_000,
        "eval_episodes": 20,
        "screen_episodes": 20,
    }

# (environment, algorithm) presets, applied over the environment preset when --algo matches
# (config.resolve_config).
ALGO_PRESETS: dict[tuple[str, str], dict[str, Any]] = {
    # Env steps to solve 1.7M -> 0.8M on seeds 20-26 (preset-search-2026-12-02); n-step-q only (docs/presets.md).
    ("LunarLander-v3", "n-step-q"): {
        "lr": 2e-3,
        "double_q": True,
        "average_steps": 30_000,
        # PQN's options, the same protocol (benchmarks/records/qlambda-2026-12-07): no target network
        # and 2 epochs of 2 minibatches over each segment took the median env steps to solve from 807k
        # to 300k over seeds 20-26 and 30-34 (all 12 at or below 400k; the preset above: 600k-1.18M).
        # Each step costs more (four gradient passes of 20 rows and four optimizer steps per segment):
        # ~40 % fewer steps/s, still ~2x less wall time to solve (measured under load, provisional).
        # No target network alone: 550k; Q(lambda) over 5-step segments 700k and RAdam 801k (7 seeds).
        "target_update_steps": 0,
        "epochs": 2,
        "minibatches": 2,
    },
    # Replay DQN: 5/5 seeds solved in 600 s (docs/presets.md).
    ("CartPole-v1", "dqn"): {
        "buffer_size": 50_000,
        "n_step": 3,
        "double_q": True,
        "target_update_steps": 1_000,
        "final_epsilons": (0.02,),
        "final_epsilon_probs": (1.0,),
    },
    # RL-Baselines3-Zoo's tuned MountainCar-v0 DQN under a step budget (docs/presets.md).
    ("MountainCar-v0", "dqn"): {
        "hidden_sizes": (256, 256),
        "envs_per_worker": 1,
        "lr": 4e-3,
        "buffer_size": 10_000,
        "batch_size": 128,
        "gamma": 0.98,
        "train_freq": 16,
        "gradient_steps": 8,
        "target_update_steps": 600,
        "eps_anneal_steps": 24_000,
        "final_epsilons": (0.07,),
        "final_epsilon_probs": (1.0,),
        "solve_score": -110.0,
        "max_steps": 150_000,
        "max_seconds": None,
        "eval_every_steps": 10_000,
    },
    # Solved 2 of 3 seeds, never verified over 5: no solve score (docs/presets.md).
    ("LunarLander-v3", "dqn"): {
        "lr": 6.3e-4,
        "batch_size": 128,
        "learning_starts": 5_000,
        "n_step": 3,
        "double_q": True,
        "target_update_steps": 1_000,
        "eps_anneal_steps": 50_000,
        "final_epsilons": (0.05,),
        "final_epsilon_probs": (1.0,),
        "grad_clip": 10.0,
        "max_seconds": 900.0,
        "eval_every_steps": 50_000,
        "average_steps": None,  # the env preset's 300k-step average would lag minutes at ~1k steps/s
        "solve_score": None,
    },
}

# PQN's MinAtar settings (mttga/purejaxql pqn_minatar) for the default algorithm: Q(lambda) over 32-step
# segments with the values recorded while acting, no target network, 2 epochs of 4 minibatches (128 rows
# of the 16 envs x 32 steps), epsilon to 0.05 over 10 % of the budget. Seaquest on tuning seeds 0-1:
# final 56.5 and 45.1 against 10.3 and 8.9; the five games on fresh seeds: docs/presets.md.
MINATAR_NSTEP_PRESET: dict[str, Any] = {
    "returns": "lambda",
    "lambda_values": "act",
    "target_update_steps": 0,
    "t_max": 32,
    "epochs": 2,
    "minibatches": 4,
    "eps_anneal_steps": 500_000,
    "final_epsilons": (0.05,),
    "final_epsilon_probs": (1.0,),
}
for _game in MINATAR_GAMES:
    ALGO_PRESETS[(f"MinAtar/{_game}-v1", "n-step-q")] = dict(MINATAR_NSTEP_PRESET)
    # MinAtar's own DQN settings (Young & Tian 2019), one update per vector step of 8 envs (docs/presets.md).
    ALGO_PRESETS[(f"MinAtar/{_game}-v1", "dqn")] = {
        "layer_norm": False,  # MinAtar's own DQN net, as measured
        "envs_per_worker": 8,
        "optimizer": "rmsprop",
        "lr": 2.5e-4,
        "lr_anneal": False,
        "rms_alpha": 0.95,
        "rms_eps": 0.01,
        "batch_size": 32,
        "learning_starts": 5_000,
        "target_update_steps": 8_000,
        "eps_anneal_steps": 100_000,
        "final_epsilons": (0.1,),
        "final_epsilon_probs": (1.0,),
    }

# Named presets, chosen with --preset.
NAMED_PRESETS: dict[str, dict[str, Any]] = {
    # The seed notebook's algorithm and settings, its defects fixed (docs/presets.md).
    "seed-compat": {
        "algo": "one-step-q",
        "hidden_sizes": (128, 128),
        "lr": 5e-4,
        "gamma": 0.995,
        "t_max": 10,
        "target_update_steps": 50,
        "workers": 8,
        "envs_per_worker": 1,
        "eps_schedule": "episode-decay",
        "loss": "mse",
        "grad_clip": None,
        "double_q": False,
        "average_steps": None,  # the notebook evaluated its raw weights
        "solve_score": 200.0,
    },
}


# Why an environment preset picks an algorithm other than Config's default (printed by `train`).
ALGO_REASONS: dict[str, str] = {
    "Taxi-v4": "n-step Q stayed at a greedy -200 (no delivery) for 1M+ steps on two runs; dqn's replay "
               "buffer keeps the rare deliveries (docs/presets.md; --algo n-step-q to override)",
    "MountainCar-v0": "the asynchronous learners never held a greedy solve (-110) in 1.5M steps, even with "
                      "--normalize-obs bounds; dqn's replay buffer keeps the rare flag-reaching episodes "
                      "(docs/presets.md; --algo n-step-q to override)",
}


def preset_algo_note(env_id: str, overrides: dict[str, Any]) -> str | None:
    """When the environment preset, not the user, picks the algorithm: which one and why (the
    comment of its "algo" entry, kept in ALGO_REASONS); None otherwise."""
    named = named_preset(overrides["preset"]) if overrides.get("preset") is not None else {}
    algo = ENV_PRESETS.get(env_id, {}).get("algo")
    if algo is None or "algo" in overrides or "algo" in named:
        return None
    return f"the {env_id} preset trains with --algo {algo}: {ALGO_REASONS.get(env_id, 'tuned for it')}"


def env_preset(env_id: str, env_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """The tuned settings for `env_id` (any ALE/<Game>-v5: the Atari family's, unless the game has its
    own), or {} for environments without a preset. An Atari game played from its RAM
    (env_kwargs obs_type "ram") keeps the family's settings but not its conv net (auto: an MLP)."""
    if env_id not in ENV_PRESETS and ATARI_ID.fullmatch(env_id):
        settings = dict(ATARI_PRESET)
    else:
        settings = dict(ENV_PRESETS.get(env_id, {}))
    if ATARI_ID.fullmatch(env_id) and (env_kwargs or {}).get("obs_type") == "ram":
        settings.pop("network", None)
    return settings


def algo_preset(env_id: str, algo: str) -> dict[str, Any]:
    """Settings for `algo` on `env_id` applied over the environment preset, or {} (every Atari id
    with n-step-q: the rest of PQN's recipe, unless the table has an entry for it)."""
    if (env_id, algo) not in ALGO_PRESETS and algo == "n-step-q" and ATARI_ID.fullmatch(env_id):
        return dict(ATARI_NSTEP_PRESET)
    return dict(ALGO_PRESETS.get((env_id, algo), {}))


def named_preset(name: str) -> dict[str, Any]:
    try:
        return dict(NAMED_PRESETS[name])
    except KeyError:
        raise ConfigError(f"preset: unknown preset {name!r}; known: {', '.join(sorted(NAMED_PRESETS))}") from None
