"""Typed, validated run configuration.

`Config` is a frozen dataclass; every field carries its help text in its
metadata, and the CLI builds its options from those, so `--help` and the code
cannot disagree. Values are resolved in this order (later wins):

    defaults  <  environment preset  <  (environment, algo) preset  <  named preset (--preset)
              <  explicit options

`resolve_config` applies that order and validates the result; any invalid value
raises `ConfigError` naming the field.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from asyncdqn.errors import ConfigError

ASYNC_ALGOS = ("one-step-q", "n-step-q", "one-step-sarsa")  # the Hogwild actor-learners
ALGOS = (*ASYNC_ALGOS, "dqn")  # dqn: the replay-buffer baseline (one learner, in-process)


def _opt(default: Any, help: str, **kw: Any) -> Any:
    """A dataclass field with its help text (used by the CLI)."""
    return field(default=default, metadata={"help": help, **kw})


@dataclass(frozen=True)
class Config:
    """Everything that defines a training run. Field docs live in `help` metadata."""

    # --- problem -------------------------------------------------------------
    env_id: str = _opt("LunarLander-v3", "Gymnasium environment id (Discrete actions; Box, image, Discrete, MultiDiscrete, MultiBinary or Tuple/Dict observations, the non-image ones flattened to one vector).")
    algo: Literal["one-step-q", "n-step-q", "one-step-sarsa", "dqn"] = _opt(
        "n-step-q", "Algorithm: one-step-q, n-step-q (paper Alg. 3), one-step-sarsa, or dqn "
        "(replay-buffer baseline: one in-process learner).")
    preset: str | None = _opt(None, "Named preset applied over the environment preset (e.g. seed-compat).")
    seed: int = _opt(0, "Base random seed: network init, every worker's envs and exploration.")
    max_episode_steps: int | None = _opt(None, "Override the environment's time limit (steps per episode; for ALE images agent steps of 4 frames).")
    env_kwargs: dict[str, Any] | None = _opt(  # noqa: RUF009 (the default is None, not a shared dict)
        None, "Keyword arguments for gym.make as a JSON object, e.g. '{\"obs_type\": \"ram\"}' (training, evaluation and render).")
    normalize_obs: Literal["none", "bounds", "running"] = _opt(
        "none", "Observation normalization (vector observations): none; bounds: map the space's finite bounds onto [-1, 1]; running: subtract the running mean and divide by the running std of every observation seen, statistics shared by all workers of a machine and saved in checkpoints (not with --backend ray).")

    # --- execution -----------------------------------------------------------
    backend: Literal["process", "serial", "ray"] = _opt(
        "process", "process: one spawn-started process per worker (Hogwild); serial: same workers in-process, deterministic; ray: on each Ray node a Hogwild group of process workers, groups exchanging weight deltas with a parameter-server actor. --algo dqn always runs its one learner in-process (serial).")
    workers: int = _opt(0, "Number of actor-learners; 0 means one per CPU core.")
    ray_address: str | None = _opt(
        None, "--backend ray: cluster to join (auto, or HOST:PORT of the head's GCS); none starts a local Ray bound to 127.0.0.1.")
    ray_sync_seconds: float = _opt(
        0.1, "--backend ray: each node's group of workers exchanges weight deltas with the parameter server at least this often (and whenever its count crosses a multiple of --target-update-steps); a run's only group, with no other group to mix with, every max(this, 0.5) seconds.")
    ray_compress: Literal["none", "bf16"] = _opt(
        "none", "--backend ray: how the weights travel in the exchanges: none (float32, 4 bytes a parameter each way) or bf16 (bfloat16, 2 bytes: a group's delta up and the master's difference from what the group holds down, each side carrying its rounding error into the next exchange, so no error accumulates; a group's first weights, targets and optimizer moments stay float32).")
    envs_per_worker: int = _opt(8, "Environments each worker steps together (one batched forward per step).")
    vector: Literal["gymnasium", "envpool"] = _opt(
        "gymnasium", "How a worker steps its environments: gymnasium (a list of Gymnasium envs) or envpool (one EnvPool instance of C++ envs; needs the envpool extra; LunarLander-v3, CartPole-v1, Acrobot-v1, MountainCar-v0). Evaluation always uses Gymnasium.")
    jit: bool = _opt(
        True, "Workers use compiled kernels (numba, algo/mlp_kernels.py) for the MLP's acting and TD gradient and for n-step returns; the first run after an install compiles them (a few seconds, then cached). --no-jit: the numpy reference path, same math.")
    start_timeout: float = _opt(
        120.0, "Seconds a worker process may take to start (spawn, imports, its environments) before the run "
        "stops with an error; the workers are then stopped.")
    max_restarts: int = _opt(3, "Restart a worker that crashed (exception from its environment, killed) at most this many times per run, all workers together (ray: a lost node group counts as one restart too); past that the run stops. Non-finite values never restart.")

    # --- network and learning ------------------------------------------------
    network: Literal["auto", "mlp", "atari", "nature", "minatar"] = _opt(
        "auto", "Q-network: mlp (vector observations), atari (the paper's conv net: 16 8x8/4, 32 4x4/2, fc 256), "
        "nature (Nature DQN's: 32 8x8/4, 64 4x4/2, 64 3x3/1, fc 512), minatar (16 3x3/1, fc 128); auto picks "
        "mlp, atari or minatar from the observation shape.")
    layer_norm: bool = _opt(
        False, "LayerNorm (learnable gain and bias) after every conv and hidden dense layer, before its ReLU "
        "(PQN's networks), for every network, engine and backend.")
    eval_epsilon: float = _opt(
        0.0, "Epsilon of every evaluation (trainer's and `asyncdqn evaluate`'s): each action is uniformly random "
        "with this probability; returns are still raw scores of whole games. 0: greedy.")
    hidden_sizes: tuple[int, ...] = _opt((128, 128), "Hidden layer widths of the MLP Q-network.", nargs="+")
    gamma: float = _opt(0.99, "Discount factor in [0, 1].")
    t_max: int = _opt(5, "Steps per environment between updates; the n of n-step-q.")
    optimizer: Literal["adam", "rmsprop", "radam"] = _opt("adam", "Shared optimizer: adam, rmsprop (paper's shared RMSProp) or radam (rectified Adam, as PQN; uses --adam-eps).")
    lr: float = _opt(5e-4, "Learning rate.")
    lr_anneal: bool = _opt(False, "Anneal the learning rate linearly to --lr-end over --max-steps (needs --max-steps).")
    lr_anneal_steps: int | None = _opt(None, "Anneal the learning rate linearly from --lr to --lr-end over this many global env steps, constant after (overrides --lr-anneal's horizon).")
    lr_end: float = _opt(0.0, "Learning rate at the end of the annealing (--lr-anneal / --lr-anneal-steps).")
    adam_eps: float = _opt(1e-8, "Adam epsilon.")
    rms_alpha: float = _opt(0.99, "RMSProp smoothing constant alpha.")
    rms_eps: float = _opt(0.1, "RMSProp epsilon.")
    loss: Literal["huber", "mse"] = _opt("huber", "TD loss: huber (delta 1) or mse.")
    grad_reduce: Literal["mean", "sum"] = _opt(
        "mean", "How an update combines its rows' TD-loss gradients (t_max x envs rows, or a dqn batch): mean, or sum as the paper accumulated them over t_max steps (with RMSProp's eps 0.1 only the sum keeps the paper's step per env step).")
    grad_clip: float | None = _opt(10.0, "Clip the gradient's global L2 norm to this value (after --grad-reduce); none to disable.")
    runaway_check: bool = _opt(True, "Stop as diverged when the TD loss implies Q-values 1000x beyond any return the rewards seen allow (max|r|/(1-gamma)), even while finite.")
    average_steps: int | None = _opt(None, "Evaluate and return a Polyak average of the online weights: an exponential moving average with this time constant in global env steps; none: the raw weights.")
    double_q: bool = _opt(False, "Double-Q bootstrap: target net evaluates the online net's argmax.")
    target_update_steps: int = _opt(4000, "Copy the online network into the target network every N global env steps; 0: no target network, the asynchronous learners bootstrap from the online network (as PQN).")
    # --- PQN's recipe for the asynchronous learners (docs/algorithms.md) -----
    returns: Literal["nstep", "lambda"] = _opt(
        "nstep", "n-step-q targets: nstep (paper Alg. 3's forward view over t_max steps) or lambda (Peng's Q(lambda) over the segment, as PQN computes it: bootstraps from max_a Q at every step, weighted by --lam).")
    lam: float = _opt(0.65, "--returns lambda: lambda in [0, 1] (1: the n-step returns, 0: one-step targets).")
    precision: Literal["fp32", "bf16"] = _opt(
        "fp32", "The Atari nets' convolutions and hidden dense layer (the torch engine): fp32, or bf16 through torch.autocast on the CPU (weights, gradients' accumulation, optimizer, Q-values and targets stay float32): about 2x faster updates on CPUs with AVX512-BF16 or AMX, slower on others.")
    lambda_values: Literal["learn", "act"] = _opt(
        "learn", "--returns lambda with no target network: the max-Q values the returns bootstrap from, computed when the segment is learned (one more forward pass over its next states) or recorded while acting (as PQN: no extra pass; each value from the weights of its step).")
    epochs: int = _opt(1, "Asynchronous learners: passes over each segment's t_max x envs rows (targets computed once per segment, before the first pass).")
    minibatches: int = _opt(1, "Asynchronous learners: minibatches per epoch (rows shuffled each epoch), one shared-optimizer step each.")

    # --- replay-buffer DQN (--algo dqn only) --------------------------------
    buffer_size: int = _opt(100_000, "dqn: replay buffer capacity in transitions.")
    batch_size: int = _opt(64, "dqn: transitions per gradient step.")
    learning_starts: int = _opt(1_000, "dqn: env steps collected before the first gradient step.")
    train_freq: int = _opt(1, "dqn: vector-env steps (each one step of every env) between training phases.")
    gradient_steps: int = _opt(1, "dqn: gradient steps per training phase.")
    n_step: int = _opt(1, "dqn: n of the n-step return sampled from the buffer (1 = classic DQN).")

    # --- exploration ---------------------------------------------------------
    eps_schedule: Literal["linear", "episode-decay"] = _opt(
        "linear", "linear: anneal from --eps-start to a sampled final epsilon over env steps; episode-decay: the notebook's multiply-per-episode.")
    eps_start: float = _opt(1.0, "Initial exploration rate.")
    eps_anneal_steps: int = _opt(100_000, "Global env steps over which epsilon anneals linearly.")
    final_epsilons: tuple[float, ...] = _opt((0.1, 0.01, 0.5), "Final epsilon values to draw from (paper: 0.1 0.01 0.5).", nargs="+")
    final_epsilon_probs: tuple[float, ...] = _opt((0.4, 0.3, 0.3), "Probabilities of the final epsilon values.", nargs="+")
    eps_draw: Literal["worker", "env"] = _opt("worker", "Draw the final epsilon once per worker (paper) or per environment.")
    eps_decay: float = _opt(0.999, "episode-decay: factor applied to epsilon after each episode.")
    eps_min: float = _opt(0.01, "episode-decay: lower bound of epsilon.")

    # --- stop rules and evaluation ------------------------------------------
    max_steps: int | None = _opt(None, "Stop after this many global environment steps.")
    max_seconds: float | None = _opt(None, "Stop after this many seconds of training.")
    solve_score: float | None = _opt(None, "Stop once a greedy evaluation's mean return reaches this score.")
    eval_episodes: int = _opt(100, "Episodes of each full greedy evaluation (fresh seeds, no exploration).")
    screen_episodes: int = _opt(10, "A periodic evaluation first plays this many episodes and only continues to --eval-episodes if their mean reaches --solve-score.")
    eval_every_steps: int | None = _opt(100_000, "Run a greedy evaluation every N global env steps; none to only evaluate on the training-mean trigger.")
    eval_every_seconds: float | None = _opt(None, "Also run a greedy evaluation every N seconds of wall time (bench solve checks every contender this way).")
    solve_window: int = _opt(100, "Training episodes averaged for the evaluation trigger (mean >= --solve-score).")
    eval_trigger: bool = _opt(True, "Evaluate as soon as the training mean over --solve-window episodes reaches --solve-score.")
    final_eval_seconds: float | None = _opt(None, "Time bound of the final evaluation (after training stops); none: proportionate, half the run's training time but at least 30 s. An evaluation cut short is marked \"complete\": false in eval.json.")
    eval_episode_seconds: float | None = _opt(120.0, "Time bound of one greedy evaluation episode (a policy that never ends one): an evaluation with an episode past it stops and is marked incomplete; none: no bound.")

    # --- output --------------------------------------------------------------
    run_dir: str | None = _opt(None, "Run directory; default runs/<env>-<algo>-<time>.")
    runs_root: str = _opt("runs", "Parent of the default run directory.")
    label: str | None = _opt(None, "Label for plots; default the run directory name.")
    progress: bool = _opt(True, "Show a live progress bar.")
    checkpoint_every: int | None = _opt(
        250_000, "Write a full training checkpoint (for --resume) every N global env steps, and on exit; none: only on exit.")
    keep_checkpoints: int = _opt(3, "Number of the newest training checkpoints kept in RUN_DIR/checkpoints.")
    resume_count: int = _opt(
        0, "How many times this run was resumed (set by --resume; offsets the workers' env and exploration seeds).",
        internal=True)
    resume_epsilons: tuple[float, ...] = _opt(
        (), "episode-decay schedule: each worker's epsilon when the run was checkpointed (set by --resume).",
        internal=True)
    tensorboard: bool = _opt(False, "Also log scalars to a TensorBoard log in RUN_DIR/tensorboard (needs the tensorboard extra).")

    # ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        return d

    def replace(self, **changes: Any) -> Config:
        return from_dict({**self.to_dict(), **changes})

    def lr_at(self, step: int) -> float | None:
        """The annealed learning rate at global env step `step`; None: constant --lr."""
        horizon = self.lr_anneal_steps or (self.max_steps if self.lr_anneal else None)
        if horizon is None:
            return None
        frac = min(max(step, 0) / horizon, 1.0)
        return self.lr + frac * (self.lr_end - self.lr)

    def resolved_workers(self) -> int:
        if self.algo == "dqn":
            return 1  # one replay learner (validate() rejects workers > 1)
        return self.workers if self.workers > 0 else max(1, os.cpu_count() or 1)


# Options of earlier versions that no longer exist, with the value they always had in a
# fingerprint: config.json files that hold them still load (the key is ignored).
RETIRED: dict[str, Any] = {"ray_pipeline": True}  # the per-worker ray mode (replaced by node groups)

FIELDS: dict[str, dataclasses.Field[Any]] = {f.name: f for f in dataclasses.fields(Config)}
FIELD_TYPES = typing.get_type_hints(Config)  # field name -> its resolved annotation


def _coerce(name: str, value: Any) -> Any:
    """Check `value` against the annotation of field `name`; convert lists to tuples."""
    hint = FIELD_TYPES[name]
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    optional = origin in (typing.Union, types.UnionType) and type(None) in args
    if optional:
        if value is None:
            return None
        hint = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{name}: {value!r} is not one of {', '.join(map(str, args))}")
        return value
    if origin is dict:
        return _json_object(name, value)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name}: expected a list, got {type(value).__name__}")
        return tuple(_scalar(name, v, args[0]) for v in value)
    return _scalar(name, value, hint)


def _json_object(name: str, value: Any) -> dict[str, Any]:
    """A dict, or a JSON text of an object (the command line's form)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{name}: not valid JSON ({exc.msg} at character {exc.pos}): {value!r}") from None
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ConfigError(f"{name}: must be a JSON object such as '{{\"obs_type\": \"ram\"}}', got {value!r}")
    return dict(value)


def _scalar(name: str, value: Any, kind: Any) -> Any:
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name}: expected true/false, got {value!r}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{name}: expected an integer, got {value!r}")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name}: expected a number, got {value!r}")
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise ConfigError(f"{name}: must be finite, got {value!r}")
        return number
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"{name}: expected a string, got {value!r}")
        return value
    raise TypeError(f"unsupported annotation for {name}: {kind}")  # pragma: no cover


def from_dict(d: dict[str, Any]) -> Config:
    """Build and validate a Config from a plain dict (e.g. config.json)."""
    if not isinstance(d, dict):
        raise ConfigError(f"configuration must be a mapping, got {type(d).__name__}")
    d = {k: v for k, v in d.items() if k not in RETIRED}  # config.json of an older version
    unknown = sorted(set(d) - set(FIELDS))
    if unknown:
        raise ConfigError(f"unknown configuration key(s): {', '.join(unknown)}")
    cfg = Config(**{k: _coerce(k, v) for k, v in d.items()})
    validate(cfg)
    return cfg


def _check(ok: bool, name: str, msg: str) -> None:
    if not ok:
        raise ConfigError(f"{name}: {msg}")


def validate(c: Config) -> None:
    """Range and consistency checks; raises ConfigError naming the field."""
    _check(bool(c.env_id.strip()), "env_id", "must not be empty")
    _check(c.seed >= 0, "seed", f"must be >= 0, got {c.seed}")
    _check(c.workers >= 0, "workers", f"must be >= 1 (or 0 for one per core), got {c.workers}")
    _check(c.start_timeout > 0, "start_timeout", f"must be > 0, got {c.start_timeout}")
    _check(c.max_restarts >= 0, "max_restarts", f"must be >= 0, got {c.max_restarts}")
    _check(c.ray_address is None or bool(c.ray_address.strip()), "ray_address", "must not be empty")
    _check(c.ray_sync_seconds > 0, "ray_sync_seconds", f"must be > 0, got {c.ray_sync_seconds}")
    _check(c.ray_compress in ("none", "bf16"), "ray_compress", f"must be none or bf16, got {c.ray_compress!r}")
    _check(c.envs_per_worker >= 1, "envs_per_worker", f"must be >= 1, got {c.envs_per_worker}")
    _check(len(c.hidden_sizes) >= 1 and all(h >= 1 for h in c.hidden_sizes), "hidden_sizes",
           f"needs at least one positive width, got {list(c.hidden_sizes)}")
    _check(0.0 <= c.gamma <= 1.0, "gamma", f"must be in [0, 1], got {c.gamma}")
    _check(0.0 <= c.eval_epsilon <= 1.0, "eval_epsilon", f"must be in [0, 1], got {c.eval_epsilon}")
    _check(c.t_max >= 1, "t_max", f"must be >= 1, got {c.t_max}")
    _check(c.lr > 0, "lr", f"must be > 0, got {c.lr}")
    _check(0.0 <= c.lr_end <= c.lr, "lr_end", f"must be in [0, lr={c.lr}], got {c.lr_end}")
    _check(c.lr_anneal_steps is None or c.lr_anneal_steps >= 1, "lr_anneal_steps",
           f"must be >= 1 or none, got {c.lr_anneal_steps}")
    _check(c.average_steps is None or c.average_steps >= 1, "average_steps",
           f"must be >= 1 or none, got {c.average_steps}")
    _check(c.adam_eps > 0, "adam_eps", f"must be > 0, got {c.adam_eps}")
    _check(0.0 <= c.rms_alpha < 1.0, "rms_alpha", f"must be in [0, 1), got {c.rms_alpha}")
    _check(c.rms_eps > 0, "rms_eps", f"must be > 0, got {c.rms_eps}")
    _check(c.grad_clip is None or c.grad_clip > 0, "grad_clip", f"must be > 0 or none, got {c.grad_clip}")
    _check(c.target_update_steps >= 0, "target_update_steps", f"must be >= 1 (or 0: no target network), got {c.target_update_steps}")
    _check(c.target_update_steps >= 1 or c.algo != "dqn", "target_update_steps",
           "0 (no target network) is for the asynchronous algorithms; dqn needs a period >= 1")
    _check(c.returns == "nstep" or c.algo == "n-step-q", "returns",
           f"lambda returns are n-step-q's targets (over its segment), not {c.algo}'s")
    _check(0.0 <= c.lam <= 1.0, "lam", f"must be in [0, 1], got {c.lam}")
    _check(c.lambda_values == "learn" or (c.returns == "lambda" and c.target_update_steps == 0), "lambda_values",
           "act records the bootstrap values of --returns lambda with no target network (--target-update-steps 0); "
           "a target network's values are not the acting weights'")
    _check(c.epochs >= 1, "epochs", f"must be >= 1, got {c.epochs}")
    _check(c.minibatches >= 1, "minibatches", f"must be >= 1, got {c.minibatches}")
    _check(c.minibatches <= c.t_max * c.envs_per_worker, "minibatches",
           f"a segment has t_max x envs = {c.t_max * c.envs_per_worker} rows: at most that many minibatches, "
           f"got {c.minibatches}")
    _check((c.epochs, c.minibatches) == (1, 1) or c.algo != "dqn", "epochs",
           "epochs and minibatches split the asynchronous learners' segments; dqn uses --gradient-steps and "
           "--batch-size")
    _check(0.0 <= c.eps_start <= 1.0, "eps_start", f"must be in [0, 1], got {c.eps_start}")
    _check(c.eps_anneal_steps >= 1, "eps_anneal_steps", f"must be >= 1, got {c.eps_anneal_steps}")
    _check(len(c.final_epsilons) >= 1 and all(0.0 <= e <= 1.0 for e in c.final_epsilons), "final_epsilons",
           f"values must be in [0, 1], got {list(c.final_epsilons)}")
    _check(len(c.final_epsilon_probs) == len(c.final_epsilons), "final_epsilon_probs",
           f"needs one probability per final epsilon ({len(c.final_epsilons)}), got {len(c.final_epsilon_probs)}")
    _check(all(p >= 0 for p in c.final_epsilon_probs) and abs(sum(c.final_epsilon_probs) - 1.0) < 1e-6,
           "final_epsilon_probs", f"must be non-negative and sum to 1, got {list(c.final_epsilon_probs)}")
    _check(0.0 < c.eps_decay <= 1.0, "eps_decay", f"must be in (0, 1], got {c.eps_decay}")
    _check(0.0 <= c.eps_min <= 1.0, "eps_min", f"must be in [0, 1], got {c.eps_min}")
    _check(c.max_steps is None or c.max_steps >= 1, "max_steps", f"must be >= 1, got {c.max_steps}")
    _check(c.max_seconds is None or c.max_seconds > 0, "max_seconds", f"must be > 0, got {c.max_seconds}")
    _check(c.eval_episodes >= 1, "eval_episodes", f"must be >= 1, got {c.eval_episodes}")
    _check(c.screen_episodes >= 1, "screen_episodes", f"must be >= 1, got {c.screen_episodes}")
    _check(c.eval_every_steps is None or c.eval_every_steps >= 1, "eval_every_steps",
           f"must be >= 1 or none, got {c.eval_every_steps}")
    _check(c.eval_every_seconds is None or c.eval_every_seconds > 0, "eval_every_seconds",
           f"must be > 0 or none, got {c.eval_every_seconds}")
    _check(c.final_eval_seconds is None or c.final_eval_seconds > 0, "final_eval_seconds",
           f"must be > 0 or none, got {c.final_eval_seconds}")
    _check(c.eval_episode_seconds is None or c.eval_episode_seconds > 0, "eval_episode_seconds",
           f"must be > 0 or none, got {c.eval_episode_seconds}")
    _check(c.checkpoint_every is None or c.checkpoint_every >= 1, "checkpoint_every",
           f"must be >= 1 or none, got {c.checkpoint_every}")
    _check(c.keep_checkpoints >= 1, "keep_checkpoints", f"must be >= 1, got {c.keep_checkpoints}")
    _check(all(0.0 <= e <= 1.0 for e in c.resume_epsilons), "resume_epsilons",
           f"values must be in [0, 1], got {list(c.resume_epsilons)}")
    _check(c.resume_count >= 0, "resume_count", f"must be >= 0, got {c.resume_count}")
    _check(c.solve_window >= 1, "solve_window", f"must be >= 1, got {c.solve_window}")
    _check(c.max_episode_steps is None or c.max_episode_steps >= 1, "max_episode_steps",
           f"must be >= 1, got {c.max_episode_steps}")
    _check(not (c.double_q and c.algo == "one-step-sarsa"), "double_q",
           "has no meaning for one-step-sarsa (its target uses the action taken, not a max)")
    _check(c.buffer_size >= 1, "buffer_size", f"must be >= 1, got {c.buffer_size}")
    _check(c.batch_size >= 1, "batch_size", f"must be >= 1, got {c.batch_size}")
    _check(c.learning_starts >= 0, "learning_starts", f"must be >= 0, got {c.learning_starts}")
    _check(c.train_freq >= 1, "train_freq", f"must be >= 1, got {c.train_freq}")
    _check(c.gradient_steps >= 1, "gradient_steps", f"must be >= 1, got {c.gradient_steps}")
    _check(c.n_step >= 1, "n_step", f"must be >= 1, got {c.n_step}")
    _check(not (c.vector == "envpool" and c.algo == "dqn"), "vector",
           "envpool serves the asynchronous workers; --algo dqn steps Gymnasium envs (use --vector gymnasium)")
    if c.algo == "dqn":
        _check(c.backend != "ray", "backend",
               "dqn runs one replay learner in this process; --backend ray is for the asynchronous algorithms")
        _check(c.workers <= 1, "workers",
               f"dqn runs one replay learner in-process; use --workers 1 (or 0), got {c.workers}")
        _check(c.buffer_size // c.envs_per_worker >= c.n_step, "buffer_size",
               f"must hold at least n_step={c.n_step} steps of each of the {c.envs_per_worker} envs")
    _check(not (c.normalize_obs == "running" and c.backend == "ray"), "normalize_obs",
           "running statistics are shared in one machine's memory; with --backend ray use none or bounds")
    _check(not c.lr_anneal or c.max_steps is not None, "lr_anneal", "needs --max-steps (the annealing horizon)")
    _check(c.max_steps is not None or c.max_seconds is not None or c.solve_score is not None, "max_steps",
           "the run would never stop: set --max-steps, --max-seconds or --solve-score")


def resolve_config(overrides: dict[str, Any] | None = None) -> Config:
    """Apply defaults < env preset < named preset < overrides, then validate.

    `overrides` holds only the options the user set explicitly.
    """
    from asyncdqn.presets import algo_preset, env_preset, named_preset

    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(FIELDS))
    if unknown:
        raise ConfigError(f"unknown configuration key(s): {', '.join(unknown)}")
    named = named_preset(overrides["preset"]) if overrides.get("preset") is not None else {}
    env_id = overrides.get("env_id", named.get("env_id", Config.env_id))
    env_kwargs = overrides.get("env_kwargs", named.get("env_kwargs"))
    env_settings = env_preset(env_id, None if env_kwargs is None else _json_object("env_kwargs", env_kwargs))
    algo = overrides.get("algo", named.get("algo", env_settings.get("algo", Config.algo)))
    # An (env, algo) preset (e.g. LunarLander-v3 + dqn) refines the env preset.
    merged: dict[str, Any] = {**env_settings, **algo_preset(env_id, algo), **named, **overrides}
    # Values recorded while acting (MinAtar's preset) stand only beside Q(lambda) with no target network:
    # when the user's options or a named preset bring a target network back, the preset's choice gives way.
    if "lambda_values" not in overrides and "lambda_values" not in named and (
            merged.get("target_update_steps", Config.target_update_steps) != 0
            or merged.get("returns", Config.returns) != "lambda"):
        merged.pop("lambda_values", None)
    base = Config().to_dict()
    base.update(merged)
    return from_dict(base)
