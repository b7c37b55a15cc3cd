"""One actor-learner: steps K environments, learns from T-step segments.

Shared state reaches it through the interfaces of `learners/common.py`.

One segment (paper Alg. 1 / 3 with a batch of K environments):
  for t in 0..T-1: act epsilon-greedily on all K envs with one numpy forward, step them;
  then one batched target forward, T*K targets, one forward/backward on the shared
  model (hand-written numpy backprop, `algo/mlp_grad.py`), gradient clipping, one
  shared-optimizer step; then bump the global counter
  and, if this segment crossed a multiple of `target_update_steps`, sync the target
  (exactly one worker crosses each multiple, so exactly one owner per sync).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from asyncdqn.algo.exploration import epsilon_greedy, epsilon_greedy_drawn
from asyncdqn.algo.mlp_grad import clip_grad_norm, td_loss_and_grads
from asyncdqn.algo.targets import (
    double_q_values,
    greedy_values,
    n_step_targets,
    one_step_targets,
    sarsa_values,
)
from asyncdqn.config import Config
from asyncdqn.errors import TrainingError
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
from asyncdqn.model import NumpyMLP
from asyncdqn.vector import VectorStepper, make_stepper


class ActorLearner:
    """A worker's environments, exploration state and learning step."""

    def __init__(
        self,
        cfg: Config,
        index: int,
        model: nn.Module,
        optimizer: Optimizer,
        target: TargetStore,
        counter: StepCounter,
        sink: EpisodeSink,
        generation: int = 0,
    ) -> None:
        """`generation` counts restarts of worker `index`: each restart gets fresh env seeds."""
        self.cfg, self.index = cfg, index
        self.model, self.optimizer = model, optimizer
        self.target, self.counter, self.sink = target, counter, sink
        K, T = cfg.envs_per_worker, cfg.t_max
        self.K, self.T = K, T

        seeds = worker_env_seeds(cfg.seed, index, K, cfg.resume_count, generation)
        self.envs: VectorStepper = make_stepper(cfg.vector, cfg.env_id, seeds, cfg.max_episode_steps)
        obs = self.envs.reset()
        eps_rng, self.rng = learner_rngs(cfg.seed, index, cfg.resume_count, generation)
        self.n_actions = self.envs.n_actions
        d = int(obs.shape[1])

        self.online = NumpyMLP.view_of(model)  # acting reads the shared weights in place
        # Learning by hand-written backprop in numpy (algo/mlp_grad.py): ~4x cheaper than
        # autograd at these sizes. Weights are views of the shared parameters; gradients
        # live in this worker's own tensors, handed to the optimizer as p.grad.
        self._params = list(model.parameters())
        self._weights = [p.detach().numpy() for p in self._params[0::2]]
        self._biases = [p.detach().numpy() for p in self._params[1::2]]
        # One flat gradient buffer (views per parameter): clipped with one dot product, and
        # with flat parameters the optimizer updates everything in one pass.
        self._grad_flat = torch.zeros(sum(p.numel() for p in self._params), dtype=self._params[0].dtype)
        self._grad_tensors = [self._grad_flat[o - p.numel():o].view(p.shape)
                              for p, o in zip(self._params, np.cumsum([p.numel() for p in self._params]),
                                              strict=True)]
        self._grad_arrays = [g.numpy() for g in self._grad_tensors]
        self._grad_flat_np = self._grad_flat.numpy()
        self.runaway = RunawayCheck(cfg, f"worker {index}")
        self._target_arrays = [p.detach().numpy().copy() for p in model.parameters()]
        self.target_net = NumpyMLP(self._target_arrays)
        self._target_version = -1

        self.book = EpisodeBook(cfg, index, K, eps_rng, sink)  # draws the final epsilons
        if cfg.eps_schedule == "episode-decay" and index < len(cfg.resume_epsilons):
            self.book.eps[:] = cfg.resume_epsilons[index]  # resumed: continue the decay where it was

        # Segment buffers, reused every segment.
        self.obs_buf = np.zeros((T, K, d), dtype=np.float32)
        self.next_obs_buf = np.zeros((T, K, d), dtype=np.float32)
        self.act_buf = np.zeros((T, K), dtype=np.int64)
        self.next_act_buf = np.zeros((T, K), dtype=np.int64)  # a' for Sarsa
        self.rew_buf = np.zeros((T, K), dtype=np.float32)
        self.term_buf = np.zeros((T, K), dtype=bool)
        self.done_buf = np.zeros((T, K), dtype=bool)

        self.obs = obs.astype(np.float32)
        self.steps_done = 0  # this worker's env steps
        self.last_loss = float("nan")
        self.book.update_epsilon(counter.value)
        self.actions = self._act(self.obs)

    # ------------------------------------------------------------------ acting
    def _act(self, obs: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
        """Epsilon-greedy actions for all envs' observations, or for the envs `idx`."""
        eps = self.book.eps if idx is None else self.book.eps[idx]
        return epsilon_greedy(self.online(obs), eps, self.rng)

    def _act_drawn(self, obs: np.ndarray, t: int) -> np.ndarray:
        """Epsilon-greedy actions for all envs after step t of the segment, from the segment's
        pre-drawn randomness (one rng call per segment instead of two per step)."""
        return epsilon_greedy_drawn(self.online(obs), self.book.eps, self._uniforms[t], self._random_actions[t])

    def epsilon(self) -> float:
        """Mean current epsilon over this worker's environments (for progress display)."""
        return self.book.mean_epsilon()

    # --------------------------------------------------------------- a segment
    def run_segment(self) -> int:
        """Act T steps in K envs, learn once. Returns the env steps taken (T*K)."""
        cfg, T, K = self.cfg, self.T, self.K
        if self.target.version != self._target_version:
            self._target_version = self.target.read_into(self._target_arrays)
        base_step = self.counter.value
        self.book.update_epsilon(base_step)
        sarsa = cfg.algo == "one-step-sarsa"
        self._uniforms = self.rng.random((T, K))
        self._random_actions = self.rng.integers(0, self.n_actions, size=(T, K))

        for t in range(T):
            a = self.actions
            self.obs_buf[t] = self.obs
            self.act_buf[t] = a
            obs, rew, term, trunc, final_obs = self.envs.step(a)
            done = term | trunc
            self.rew_buf[t] = rew
            self.term_buf[t] = term
            self.done_buf[t] = done
            self.next_obs_buf[t] = obs
            self.book.step(rew)
            if final_obs is not None:
                # The true next state of an ended episode is its final observation,
                # not the first observation of the next one (auto-reset).
                self.next_obs_buf[t, np.flatnonzero(done)] = final_obs
                self.book.end(done, base_step + (t + 1) * K)
            self.obs = obs
            self.actions = self._act_drawn(obs, t)
            if sarsa:
                self.next_act_buf[t] = self.actions
                cut = np.flatnonzero(trunc & ~term)
                if cut.size:  # truncated: a' is the policy's action in the final state
                    self.next_act_buf[t, cut] = self._act(self.next_obs_buf[t, cut], cut)

        self._learn(base_step)
        self.steps_done += T * K
        old, new = self.counter.add(self.index, T * K)
        if new // cfg.target_update_steps > old // cfg.target_update_steps:
            self.target.sync_from(self.model, new)
        return T * K

    # --------------------------------------------------------------- learning
    def targets(self) -> np.ndarray:
        """(T, K) TD targets of the current segment buffers, from the local target net."""
        cfg, T, K = self.cfg, self.T, self.K
        flat_next = self.next_obs_buf.reshape(T * K, -1)
        if cfg.algo == "n-step-q":
            # n-step returns bootstrap only from the segment's last states and from the final
            # states of truncated episodes: evaluate the networks on those rows alone (K of
            # T*K, plus a few); the other values are never read (zero here).
            need = self.done_buf & ~self.term_buf
            need[T - 1] = True
            rows = np.flatnonzero(need)
            obs_rows = flat_next[rows]
            q_rows = self.target_net(obs_rows)
            v_rows = (double_q_values(q_rows, self.online(obs_rows)) if cfg.double_q else greedy_values(q_rows))
            v_next = np.zeros(T * K, dtype=np.float32)
            v_next[rows] = v_rows
            return n_step_targets(self.rew_buf, self.term_buf, self.done_buf, v_next.reshape(T, K), cfg.gamma)
        q_next = self.target_net(flat_next).reshape(T, K, -1)
        if cfg.algo == "one-step-sarsa":
            v_next = sarsa_values(q_next, self.next_act_buf)
        elif cfg.double_q:
            v_next = double_q_values(q_next, self.online(flat_next).reshape(T, K, -1))
        else:
            v_next = greedy_values(q_next)
        return one_step_targets(self.rew_buf, self.term_buf, v_next.astype(np.float32), cfg.gamma)

    def _learn(self, global_step: int) -> None:
        cfg, T, K = self.cfg, self.T, self.K
        y = self.targets().reshape(T * K)
        # Loss of Q(s_t, a_t) on the shared weights and its gradient, one batch of T*K samples.
        loss_value = td_loss_and_grads(
            self._weights, self._biases, self.obs_buf.reshape(T * K, -1), self.act_buf.reshape(T * K), y,
            cfg.loss, self._grad_arrays[0::2], self._grad_arrays[1::2])
        if not math.isfinite(loss_value):
            raise self._non_finite_error()
        self.runaway(loss_value, self.rew_buf)
        if cfg.grad_clip is not None:
            clip_grad_norm([self._grad_flat_np], cfg.grad_clip)
        for p, g in zip(self._params, self._grad_tensors, strict=True):
            if p.grad is not g:  # set once (assigning .grad costs a few us of checks)
                p.grad = g
        self.optimizer.step(cfg.lr_at(global_step))
        self.last_loss = loss_value
        self.book.add_loss(loss_value)

    def _non_finite_error(self) -> TrainingError:
        return non_finite_error(f"worker {self.index}", (self.obs_buf, self.next_obs_buf), self.rew_buf,
                                self.model.parameters())

    def close(self) -> None:
        self.envs.close()

