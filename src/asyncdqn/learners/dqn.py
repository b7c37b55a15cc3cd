"""Vanilla DQN with a replay buffer: the baseline the asynchronous methods are compared to.

One learner, in-process, with the same pieces as an ActorLearner (worker.py): a
vector env of `envs_per_worker` environments acted on with one numpy forward per
step, the same epsilon schedules, the shared Q-network, shared optimizer, shared
target network (synced every `target_update_steps` global env steps) and the same
EpisodeRecord stream, so the Trainer's evaluation, stop rules, metrics, run
directory and checkpoints apply unchanged.

One call of `run_segment` (a "training phase"):
  for `train_freq` vector steps: act epsilon-greedily in all K envs, store the K
  transitions (true next state, terminated, done) in the replay buffer;
  then, once `learning_starts` env steps have been collected, `gradient_steps`
  times: sample `batch_size` n-step windows uniformly, bootstrap them from the
  target network (double-Q optional) with `n_step_returns`, one Huber/MSE
  forward/backward on the shared model, gradient clipping, one optimizer step.
"""

from __future__ import annotations

import numpy as np
from torch import nn

from asyncdqn.algo.exploration import epsilon_greedy
from asyncdqn.algo.replay import ReplayBatch, ReplayBuffer, n_step_returns
from asyncdqn.algo.targets import double_q_values, greedy_values
from asyncdqn.config import Config
from asyncdqn.envs import make_vector_env
from asyncdqn.envs.normalize import ObsNormalizer, ObsStats
from asyncdqn.learners.common import (
    EpisodeBook,
    EpisodeSink,
    Optimizer,
    RunawayCheck,
    StepCounter,
    TargetStore,
    learner_rngs,
    non_finite_error,
    worker_env_seeds,
)
from asyncdqn.learners.engines import make_engine


class DQNLearner:
    """Replay-buffer DQN over K environments. Same interface as ActorLearner.run_segment."""

    def __init__(self, cfg: Config, model: nn.Module, optimizer: Optimizer, target: TargetStore,
                 counter: StepCounter, sink: EpisodeSink, index: int = 0, generation: int = 0,
                 obs_stats: ObsStats | None = None) -> None:
        """`generation` counts restarts of this learner: each restart gets fresh env seeds.
        `obs_stats`: the run's observation statistics (--normalize-obs); the buffer keeps observations
        normalized as they were when seen."""
        self.cfg, self.index = cfg, index
        self.model, self.optimizer = model, optimizer
        self.target, self.counter, self.sink = target, counter, sink
        K = self.K = cfg.envs_per_worker

        self.envs = make_vector_env(cfg.env_id, K, cfg.max_episode_steps, cfg.env_kwargs)
        seeds: list[int | None] = list(worker_env_seeds(cfg.seed, index, K, cfg.resume_count, generation))
        obs, _ = self.envs.reset(seed=seeds)
        self.norm = None if obs_stats is None else ObsNormalizer(obs_stats)
        if self.norm is not None:
            self.norm.observe(obs)
            self.norm.flush()
            obs = self.norm(obs)
        eps_rng, self.rng = learner_rngs(cfg.seed, index, cfg.resume_count, generation)
        self.obs_dtype = np.uint8 if obs.dtype == np.uint8 else np.float32  # images stay uint8
        self.obs = obs.astype(self.obs_dtype)
        self.buffer = ReplayBuffer(cfg.buffer_size, K, tuple(obs.shape[1:]), cfg.n_step, self.obs_dtype)
        self.runaway = RunawayCheck(cfg, "dqn")

        # Forwards through the network engine (numpy for MLPs and the MinAtar net, torch for the
        # Atari net): acting and the double-Q argmax read the live weights, targets a local copy,
        # and the TD loss's gradient comes from the same engine as the asynchronous learners'.
        self.engine = make_engine(model, jit=cfg.jit, bf16=cfg.precision == "bf16")
        self.online = self.engine.online
        self._target_arrays = self.engine.target_arrays
        self.target_net = self.engine.target
        self._target_version = -1

        self.book = EpisodeBook(cfg, index, K, eps_rng, sink)  # epsilons, episodes, mean loss
        self.steps_done = 0
        self.updates = 0
        self.last_loss = float("nan")

    def epsilon(self) -> float:
        return self.book.mean_epsilon()

    def run_segment(self) -> int:
        """`train_freq` vector steps into the buffer, then `gradient_steps` updates. Returns env steps."""
        cfg, K = self.cfg, self.K
        if self.target.version != self._target_version:
            self._target_version = self.target.read_into(self._target_arrays)
        base_step = self.counter.value
        for t in range(cfg.train_freq):
            self.book.update_epsilon(base_step + t * K)
            actions = epsilon_greedy(self.online(self.obs), self.book.eps, self.rng)
            obs, rew, term, trunc, info = self.envs.step(actions)
            if self.norm is not None:
                self.norm.observe(obs)
                obs = self.norm(obs)
            done = term | trunc
            next_obs = obs.astype(self.obs_dtype, copy=True)
            self.book.step(rew)
            if done.any():  # the true next state of an ended episode is its final observation
                idx = np.flatnonzero(done)
                finals = np.stack(info["final_obs"][idx])
                next_obs[idx] = finals if self.norm is None else self.norm(finals)
                self.book.end(done, base_step + (t + 1) * K)
            self.buffer.add(self.obs, actions, rew, next_obs, term, done)
            self.obs = obs.astype(self.obs_dtype, copy=False)

        steps = cfg.train_freq * K
        self.steps_done += steps
        old, new = self.counter.add(self.index, steps)
        if new >= cfg.learning_starts and self.buffer.valid_starts() > 0:
            for _ in range(cfg.gradient_steps):
                self._learn(self.buffer.sample(cfg.batch_size, self.rng), new)
        if new // cfg.target_update_steps > old // cfg.target_update_steps:
            self.target.sync_from(self.model, new)
        return steps

    # --------------------------------------------------------------- learning
    def targets(self, batch: ReplayBatch) -> np.ndarray:
        """(B,) n-step TD targets of a sampled batch from the local target network."""
        n, B = batch.rewards.shape
        rows, cols = batch.bootstrap_index(), np.arange(B)
        boot_obs = batch.next_obs[rows, cols]  # (B, *obs_shape): the only next states that matter
        q_next = self.target_net(boot_obs)
        if self.cfg.double_q:
            v = double_q_values(q_next, self.online(boot_obs))
        else:
            v = greedy_values(q_next)
        next_values = np.zeros((n, B), dtype=np.float32)  # other rows are never read by the return
        next_values[rows, cols] = v
        return n_step_returns(batch, next_values, self.cfg.gamma)

    def _learn(self, batch: ReplayBatch, global_step: int) -> None:
        cfg = self.cfg
        y = self.targets(batch)
        # Loss of Q(s, a) on the shared weights and its gradient (the engine's: numpy for MLPs and
        # the MinAtar net, autograd otherwise), clipped and handed to the shared optimizer.
        loss_value = self.engine.loss_and_grads(batch.obs, batch.actions, y, cfg.loss)
        if not np.isfinite(loss_value):
            b = self.buffer
            raise non_finite_error("dqn", (b.obs, b.next_obs), b.rewards, self.model.parameters())
        self.runaway(loss_value, batch.rewards)
        self.engine.attach_grads(cfg.grad_clip, float(len(y)) if cfg.grad_reduce == "sum" else 1.0)
        self.optimizer.step(cfg.lr_at(global_step))
        self.updates += 1
        self.last_loss = loss_value
        self.book.add_loss(loss_value)

    def close(self) -> None:
        self.envs.close()
