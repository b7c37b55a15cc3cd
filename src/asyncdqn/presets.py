"""Hyper-parameter presets, in typed code (nothing is loaded from disk).

Environment presets apply automatically to their environment id; named presets
are chosen with `--preset NAME` and applied over the environment preset.
"""

from __future__ import annotations

import re
from typing import Any

from asyncdqn.errors import ConfigError

# Per-environment tuned settings (see benchmarks/README.md for how they were found).
ENV_PRESETS: dict[str, dict[str, Any]] = {
    "CartPole-v1": {
        "hidden_sizes": (64, 64),
        "gamma": 0.99,
        "t_max": 5,
        "lr": 1e-3,
        "envs_per_worker": 4,
        "target_update_steps": 2000,
        "eps_anneal_steps": 20_000,
        "final_epsilons": (0.1, 0.01, 0.05),
        "final_epsilon_probs": (0.4, 0.3, 0.3),
        "solve_score": 475.0,
        "max_seconds": 600.0,
        "eval_every_steps": 20_000,
    },
    "Acrobot-v1": {
        "hidden_sizes": (64, 64),
        "gamma": 0.99,
        "t_max": 5,
        "lr": 1e-3,
        "envs_per_worker": 8,
        "target_update_steps": 2000,
        "eps_anneal_steps": 30_000,
        "solve_score": -100.0,
        "max_seconds": 600.0,
        "eval_every_steps": 50_000,
    },
    "MountainCar-v0": {
        # No solve score for the asynchronous learners: with these settings every greedy evaluation
        # stayed at -200 (11.9M env steps in 240 s, issue 14), and a DQN-like variant (gamma 0.98,
        # lr 2e-3, epsilon to {0.07, 0.01, 0.1} over 20k steps, target every 2000) too over 2M steps
        # (benchmarks/records/presets-2026-12-01/). Nothing is promised; --algo dqn solves it.
        "hidden_sizes": (64, 64),
        "gamma": 0.99,
        "t_max": 20,
        "lr": 1e-3,
        "envs_per_worker": 16,
        "target_update_steps": 5000,
        "eps_anneal_steps": 200_000,
        "final_epsilons": (0.1, 0.01, 0.5),
        "max_seconds": 900.0,
        "eval_every_steps": 100_000,
    },
    "LunarLander-v3": {
        # Found with the sweep recorded in benchmarks/README.md: lr 1e-3 and
        # per-environment final epsilons in {0.05, 0.01, 0.1} solved 3/3 seeds;
        # the paper's {0.1, 0.01, 0.5} per worker did not within 1.5M steps.
        # Clipping the gradient norm at 1 (not 10) damped the occasional blow-ups.
        # gamma 0.995 (not 0.99): `asyncdqn bench solve` median 33 s over seeds 0-4
        # instead of 53 s (chosen on seeds 0-2; fresh seeds 5-9 gave 59.5 s).
        # average_steps 300k: evaluating a Polyak average of the weights instead of the
        # raw Hogwild weights took fresh seeds 10-17 from a median of ~55-60 s to 43.6 s
        # (worst 53.4 s); 100k and 200k gave 48.1 s and 43.5 s with wider spreads.
        "hidden_sizes": (128, 128),
        "gamma": 0.995,
        "t_max": 5,
        "lr": 1e-3,
        "envs_per_worker": 8,
        "target_update_steps": 4000,
        "eps_anneal_steps": 100_000,
        "grad_clip": 1.0,
        "average_steps": 300_000,
        "eps_draw": "env",
        "final_epsilons": (0.05, 0.01, 0.1),
        "final_epsilon_probs": (0.4, 0.3, 0.3),
        "solve_score": 200.0,
        "max_seconds": 600.0,
        "eval_every_steps": 100_000,
    },
}

# Pixel presets (issue 12): the asynchronous-methods paper's hyper-parameters as the start
# (shared RMSProp lr 7e-4 annealed linearly to 0, alpha 0.99, eps 0.1; t_max 5; final epsilons
# {0.1, 0.01, 0.5} w.p. {0.4, 0.3, 0.3}). Every step option counts AGENT steps (env.step calls
# of the preprocessed env): one ALE agent step is 4 emulator frames (AtariPreprocessing's frame
# skip), one MinAtar step is one frame. No solve score is claimed: budgets only (docs/pixels.md).
_PAPER_ASYNC: dict[str, Any] = {
    "network": "auto",
    "optimizer": "rmsprop",
    "lr": 7e-4,
    "lr_anneal": True,
    "rms_alpha": 0.99,
    "rms_eps": 0.1,
    "gamma": 0.99,
    "t_max": 5,
    "final_epsilons": (0.1, 0.01, 0.5),
    "final_epsilon_probs": (0.4, 0.3, 0.3),
    # The paper drew one final epsilon per thread over 16 threads; with a worker per core
    # (2 here) a per-environment draw keeps the paper's mix inside every worker.
    "eps_draw": "env",
    "average_steps": None,
}
# Every ALE/<Game>-v5 id takes this family preset (env_preset); a game refined by measurement gets
# its own entry in ENV_PRESETS. Pong and Breakout are listed with the family's settings: the
# measurements below are theirs.
ATARI_PRESET: dict[str, Any] = {
        **_PAPER_ASYNC,
        # Shared Adam, not the paper's RMSProp. RMSProp's eps of 0.1 sits far above sqrt(E[g^2])
        # here (1e-6..1e-3 per layer on a Pong checkpoint), so its step is ~lr/eps x the gradient
        # and depends on how an update reduces its 5 x 8 rows; summing them (--grad-reduce sum)
        # learned MinAtar Breakout but not Asterix at 1M steps, while Adam learned all five MinAtar
        # games. On Pong, Adam lr 2.5e-4 with eps 1e-8 killed the first conv layer within 250k steps
        # (every unit <= 0 on every frame: Pong's background is a constant gray, so a filter's
        # weights move together, and eps 1e-8 turns its tiny gradients into full lr-sized steps);
        # lr 1e-4 with Rainbow's eps 1.5e-4 kept it alive (55 % of units active at 300k steps).
        # benchmarks/records/pong-2026-12-01/probes/; the Pong curve: benchmarks/pong.sh.
        # Breakout: one 25-minute check (seed 0, 6.2M frames): greedy 0 until the agent served at
        # ~1.25M steps, 2.4 at 1.5M (docs/pixels.md, benchmarks/records/breakout-2026-12-01/).
        "optimizer": "adam",
        "lr": 1e-4,
        "adam_eps": 1.5e-4,
        "envs_per_worker": 8,
        "eps_anneal_steps": 1_000_000,  # 4M frames
        "target_update_steps": 10_000,  # 40k frames
        "max_steps": 10_000_000,  # 40M frames: a budget, not a measured solve time
        "eval_every_steps": 250_000,  # 1M frames
        "eval_episodes": 5,
        "screen_episodes": 5,
        # Evaluate with epsilon 0.05, as DQN's Atari evaluations did (Mnih et al. 2015): a greedy
        # agent can stall a game until ALE's 108k-frame cap (a state it never leaves; FireReset
        # covers only the FIRE to serve), and its scores stay comparable with DQN-style tables.
        "eval_epsilon": 0.05,
        "checkpoint_every": 1_000_000,
}
for _game in ("Pong", "Breakout"):
    ENV_PRESETS[f"ALE/{_game}-v5"] = dict(ATARI_PRESET)
ATARI_ID = re.compile(r"ALE/[A-Za-z0-9]+-v5")  # the ids the Atari family preset applies to
MINATAR_GAMES = ("Asterix", "Breakout", "Freeway", "Seaquest", "SpaceInvaders")
for _game in MINATAR_GAMES:
    ENV_PRESETS[f"MinAtar/{_game}-v1"] = {
        **_PAPER_ASYNC,
        # Adam, not the paper's shared RMSProp (lr 7e-4, eps 0.1): the paper summed gradients over
        # a thread's t_max steps, this learner averages over t_max x envs (80 rows), so RMSProp's
        # eps of 0.1 swamped sqrt(E[g^2]) and the steps were ~100x too small: 1M-step probes on
        # seed 0 (benchmarks/records/minatar-2026-12-01/probes.md) gave Asterix 0.8 with RMSProp
        # (eps 0.1 or 0.01; 0.2 after 5M steps) against 4.9 with Adam lr 5e-4, Breakout 1.9 -> 6.4.
        "optimizer": "adam",
        "lr": 5e-4,
        "envs_per_worker": 16,
        # MinAtar's table is read at 5M frames; the paper's 4M-frame annealing is 5% of its
        # 80M-frame budget, so epsilon anneals over 5% of this one.
        "eps_anneal_steps": 250_000,
        "target_update_steps": 40_000,  # the paper's 40k frames (MinAtar has no frame skip)
        "max_steps": 5_000_000,
        "eval_every_steps": 250_000,
        "eval_episodes": 20,
        "screen_episodes": 20,
        "checkpoint_every": 1_000_000,
    }

# (environment, algorithm) presets, applied over the environment preset when
# --algo matches (see config.resolve_config). The replay-buffer DQN baseline needs
# its own settings: one learner, a buffer, a faster target refresh. LunarLander's n-step-q
# entry holds what a search measured for that algorithm alone.
ALGO_PRESETS: dict[tuple[str, str], dict[str, Any]] = {
    ("LunarLander-v3", "n-step-q"): {
        # Issue 13's search (benchmarks/records/preset-search-2026-12-02): env steps to solve (a
        # greedy evaluation every 100k steps, EnvPool stepping) on seeds 20-26, never the
        # benchmark's 0-4. The env preset alone: a median of 1.7M (seeds 20-22). Double-Q alone 1.4M,
        # lr 2e-3 with double-Q 1.0M, a 30k-step weight average with double-Q 0.94M; all three
        # together 0.8M (seeds 20-26), and a median of 24.7 s in `bench solve` on fresh seeds
        # 30-34 (lr 3e-3: 37.3 s). Measured for n-step-q only, so one-step-q and Sarsa keep the
        # env preset.
        "lr": 2e-3,
        "double_q": True,
        "average_steps": 30_000,
    },
    ("CartPole-v1", "dqn"): {
        "hidden_sizes": (64, 64),
        "envs_per_worker": 4,
        "lr": 1e-3,
        "buffer_size": 50_000,
        "batch_size": 64,
        "learning_starts": 1_000,
        "train_freq": 1,
        "gradient_steps": 1,
        "n_step": 3,
        "double_q": True,
        "target_update_steps": 1_000,
        "eps_anneal_steps": 20_000,
        "final_epsilons": (0.02,),
        "final_epsilon_probs": (1.0,),
        "grad_clip": 10.0,
    },
    ("MountainCar-v0", "dqn"): {
        # RL-Baselines3-Zoo's tuned MountainCar-v0 DQN (hyperparams/dqn.yml; -100.8 +- 9.9 after 120k
        # steps in its benchmark): lr 4e-3, batch 128, buffer 10k, gamma 0.98, target every 600 steps,
        # 8 gradient steps every 16 env steps, epsilon 1 -> 0.07 over 20 % of 120k steps, 256x256.
        # Chosen on seed 10 (solved at 100k steps, -102.9 +- 10.0 over 100 episodes); verified with
        # `asyncdqn bench presets` on seeds 0-4 (docs/presets.md). A step budget, not seconds: the
        # result does not depend on how loaded the machine is.
        "hidden_sizes": (256, 256),
        "envs_per_worker": 1,
        "lr": 4e-3,
        "buffer_size": 10_000,
        "batch_size": 128,
        "learning_starts": 1_000,
        "gamma": 0.98,
        "train_freq": 16,
        "gradient_steps": 8,
        "n_step": 1,
        "double_q": False,
        "target_update_steps": 600,
        "eps_anneal_steps": 24_000,
        "final_epsilons": (0.07,),
        "final_epsilon_probs": (1.0,),
        "grad_clip": 10.0,
        "solve_score": -110.0,
        "max_steps": 150_000,
        "max_seconds": None,
        "eval_every_steps": 10_000,
        "average_steps": None,
    },
    ("LunarLander-v3", "dqn"): {
        # Two short runs (docs/readme-sections/dqn.md): 4 envs, batch 64, lr 5e-4, target every
        # 2000 steps reached 196 (10-episode screen) at 150k steps but not 200 in 480 s on a loaded
        # box; 8 envs (one update per 8 env steps), batch 128, lr 6.3e-4, target every 1000 steps,
        # final epsilon 0.05 solved (228 +- 72 over 100 episodes) at 484k steps in 399 s.
        # Solve promise withdrawn (issue 14): these settings solved 2 of 3 seeds and were never
        # verified over 5 (a run takes ~400 s alone); the run trains for max_seconds and reports
        # its greedy score, but claims no solve score until a 5/5 benchmark supports one.
        "hidden_sizes": (128, 128),
        "envs_per_worker": 8,
        "lr": 6.3e-4,
        "buffer_size": 100_000,
        "batch_size": 128,
        "learning_starts": 5_000,
        "train_freq": 1,
        "gradient_steps": 1,
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

# Replay DQN on MinAtar: MinAtar's own DQN settings (Young & Tian 2019: buffer 100k, batch 32,
# RMSProp lr 2.5e-4 alpha 0.95 eps 0.01, 5k steps before learning, epsilon 1 -> 0.1 over 100k
# steps, target every 1000 updates), except that one update is made per vector step of 8 envs
# (theirs: one per env step), so its target refresh every 1000 updates is 8000 env steps.
for _game in MINATAR_GAMES:
    ALGO_PRESETS[(f"MinAtar/{_game}-v1", "dqn")] = {
        "envs_per_worker": 8,
        "optimizer": "rmsprop",
        "lr": 2.5e-4,
        "lr_anneal": False,
        "rms_alpha": 0.95,
        "rms_eps": 0.01,
        "buffer_size": 100_000,
        "batch_size": 32,
        "learning_starts": 5_000,
        "train_freq": 1,
        "gradient_steps": 1,
        "n_step": 1,
        "double_q": False,
        "target_update_steps": 8_000,
        "eps_anneal_steps": 100_000,
        "final_epsilons": (0.1,),
        "final_epsilon_probs": (1.0,),
    }

# Named presets, chosen with --preset.
NAMED_PRESETS: dict[str, dict[str, Any]] = {
    # The seed notebook's algorithm and settings, its defects fixed: one-step Q,
    # hidden 128, Adam lr 5e-4, gamma 0.995, gradients applied every 10 steps,
    # target copied every 50 global steps, 8 workers with one env each,
    # epsilon 1.0 -> 0.01 decaying x0.999 per episode, MSE loss, no clipping.
    "seed-compat": {
        "env_id": "LunarLander-v3",
        "algo": "one-step-q",
        "hidden_sizes": (128, 128),
        "optimizer": "adam",
        "lr": 5e-4,
        "gamma": 0.995,
        "t_max": 10,
        "target_update_steps": 50,
        "workers": 8,
        "envs_per_worker": 1,
        "eps_schedule": "episode-decay",
        "eps_start": 1.0,
        "eps_decay": 0.999,
        "eps_min": 0.01,
        "loss": "mse",
        "grad_clip": None,
        "double_q": False,
        "average_steps": None,  # the notebook evaluated its raw weights
        "solve_score": 200.0,
    },
}


def env_preset(env_id: str) -> dict[str, Any]:
    """The tuned settings for `env_id` (any ALE/<Game>-v5: the Atari family's, unless the game has its
    own), or {} for environments without a preset."""
    if env_id not in ENV_PRESETS and ATARI_ID.fullmatch(env_id):
        return dict(ATARI_PRESET)
    return dict(ENV_PRESETS.get(env_id, {}))


def algo_preset(env_id: str, algo: str) -> dict[str, Any]:
    """Settings for `algo` on `env_id` applied over the environment preset, or {}."""
    return dict(ALGO_PRESETS.get((env_id, algo), {}))


def named_preset(name: str) -> dict[str, Any]:
    try:
        return dict(NAMED_PRESETS[name])
    except KeyError:
        raise ConfigError(f"preset: unknown preset {name!r}; known: {', '.join(sorted(NAMED_PRESETS))}") from None
