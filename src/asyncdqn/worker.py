"""One actor-learner: steps K environments, learns from T-step segments.

It knows nothing of processes. Whatever it shares with other workers comes in
through four small interfaces (see `backends/base.py` for the implementations):

- `StepCounter.add(worker, n) -> (old, new)`: the global env-step count, bumped
  once per segment (never per step);
- `TargetStore`: the target network, copied race-free (a version number and a lock
  taken once per segment at most) into a worker-local numpy copy;
- `EpisodeSink.put(record)`: finished episodes, for the trainer's metrics;
- an optimizer with `step(lr) -> t` over the shared model's parameters.

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
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch
from torch import nn

from asyncdqn.algo.exploration import (
    decay_per_episode,
    epsilon_greedy,
    epsilon_greedy_drawn,
    linear_epsilon,
    sample_final_epsilons,
)
from asyncdqn.algo.mlp_grad import clip_grad_norm, td_loss_and_grads
from asyncdqn.algo.targets import (
    double_q_values,
    greedy_values,
    n_step_targets,
    one_step_targets,
    sarsa_values,
)
from asyncdqn.config import Config
from asyncdqn.envs import env_seeds
from asyncdqn.errors import DivergedError, TrainingError
from asyncdqn.model import NumpyMLP
from asyncdqn.vector import VectorStepper, make_stepper


@dataclass(frozen=True)
class EpisodeRecord:
    worker: int
    step: int  # global env step at which the episode ended (approximate across workers)
    episode_return: float
    length: int
    epsilon: float
    # Mean TD loss over this worker's updates since its previous record (NaN if none);
    # diagnostic only, so records compare equal without it.
    mean_loss: float = field(default=float("nan"), compare=False)


class StepCounter(Protocol):
    @property
    def value(self) -> int: ...
    def add(self, worker: int, n: int) -> tuple[int, int]: ...


class TargetStore(Protocol):
    @property
    def version(self) -> int: ...
    def read_into(self, arrays: list[np.ndarray]) -> int: ...
    def sync_from(self, model: nn.Module, step: int) -> None: ...


class EpisodeSink(Protocol):
    def put(self, record: EpisodeRecord) -> None: ...


class Optimizer(Protocol):
    def step(self, lr: float | None = None) -> int: ...
    def zero_grad(self) -> None: ...


def worker_env_seeds(seed: int, index: int, k: int, resume_count: int = 0, generation: int = 0) -> list[int]:
    """Env seeds of worker `index`; a resumed run (resume_count > 0) or a restarted worker
    (generation > 0) gets fresh ones, so it does not replay episodes already played."""
    if resume_count == 0 and generation == 0:
        return env_seeds(seed, 1 + index, k)
    ss = np.random.SeedSequence([seed, 1 + index, resume_count, *([generation] if generation else [])])
    return [int(s) for s in ss.generate_state(k, dtype=np.uint32)]


class EpisodeBook:
    """A learner's K environments' bookkeeping: exploration rates, running episodes, and the
    mean TD loss reported with each finished episode. Serves ActorLearner and DQNLearner."""

    def __init__(self, cfg: Config, index: int, k: int, rng: np.random.Generator, sink: EpisodeSink) -> None:
        self.cfg, self.index, self.sink = cfg, index, sink
        # Final epsilon per worker (paper) or per environment, drawn from `rng`.
        n_draws = 1 if cfg.eps_draw == "worker" else k
        finals = sample_final_epsilons(rng, n_draws, cfg.final_epsilons, cfg.final_epsilon_probs)
        self.final_eps = np.broadcast_to(finals, (k,)).astype(np.float64)
        self.eps = np.full(k, cfg.eps_start, dtype=np.float64)  # current epsilons
        self.ep_return = np.zeros(k, dtype=np.float64)
        self.ep_len = np.zeros(k, dtype=np.int64)
        self._loss_sum, self._loss_count = 0.0, 0  # updates since the last EpisodeRecord

    def update_epsilon(self, global_step: int) -> None:
        if self.cfg.eps_schedule == "linear":
            self.eps = np.asarray(linear_epsilon(
                global_step, self.cfg.eps_start, self.final_eps, self.cfg.eps_anneal_steps), dtype=np.float64)
        # episode-decay epsilons change only at episode ends (see end)

    def step(self, rewards: np.ndarray) -> None:
        self.ep_return += rewards
        self.ep_len += 1

    def add_loss(self, value: float) -> None:
        self._loss_sum += value
        self._loss_count += 1

    def end(self, ended: np.ndarray, step: int) -> None:
        """Report the episodes of the envs `ended` (at global env step `step`) and reset them."""
        for k in np.flatnonzero(ended):
            mean_loss = self._loss_sum / self._loss_count if self._loss_count else float("nan")
            self._loss_sum, self._loss_count = 0.0, 0
            self.sink.put(EpisodeRecord(self.index, step, float(self.ep_return[k]), int(self.ep_len[k]),
                                        float(self.eps[k]), mean_loss))
            if self.cfg.eps_schedule == "episode-decay":
                self.eps[k] = decay_per_episode(self.eps[k], self.cfg.eps_decay, self.cfg.eps_min)
        self.ep_return[ended] = 0.0
        self.ep_len[ended] = 0

    def mean_epsilon(self) -> float:
        return float(self.eps.mean())


class RunawayCheck:
    """Stops a run whose Q-values left every range the rewards allow, while still finite.

    No return exceeds max|r| / (1 - gamma) in magnitude, so neither can a Q-value that
    learning is converging to. A TD loss implying |Q - y| a thousand times beyond that
    bound (with Adam's bounded steps, e.g. --lr 1e10, weights blow up but stay finite)
    is divergence, not learning; healthy runs stay orders of magnitude below it.
    """

    def __init__(self, cfg: Config, where: str) -> None:
        self.cfg, self.where = cfg, where
        self.max_abs_reward = 0.0  # largest |reward| seen: bounds every plausible Q-value

    def __call__(self, loss_value: float, rewards: np.ndarray) -> None:
        """Check one update's loss; `rewards` are those its targets were built from."""
        gamma = self.cfg.gamma
        if rewards.size:
            self.max_abs_reward = max(self.max_abs_reward, float(np.abs(rewards).max()))
        if gamma >= 1.0 or not self.cfg.runaway_check:
            return
        limit = 1e3 * (self.max_abs_reward / (1.0 - gamma) + 1.0)
        if loss_value > (limit if self.cfg.loss == "huber" else limit * limit):
            raise DivergedError(
                f"{self.where}: the TD loss ({loss_value:.3g}) implies Q-values far beyond any return "
                f"the rewards seen allow (|r| <= {self.max_abs_reward:.3g}, gamma {gamma:g}): "
                "training diverged (lower --lr?)")


def non_finite_error(where: str, observations: Iterable[np.ndarray], rewards: np.ndarray,
                     params: Iterable[torch.Tensor]) -> TrainingError:
    """The error naming the source of a non-finite TD loss: the environment's numbers
    (the weights are still good), or divergence of the shared model (they are not)."""
    if not all(np.isfinite(o).all() for o in observations):
        return TrainingError(f"{where}: the environment returned a non-finite observation (NaN/inf)")
    if not np.isfinite(rewards).all():
        return TrainingError(f"{where}: the environment returned a non-finite reward (NaN/inf)")
    if not all(torch.isfinite(p).all() for p in params):
        return DivergedError(f"{where}: the Q-network's parameters became non-finite: training diverged (lower --lr?)")
    return DivergedError(f"{where}: the TD loss became non-finite: training diverged (lower --lr?)")


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
        # Flush denormal floats to zero in this thread (numpy and torch alike): Adam's second
        # moments of rarely active units decay into the denormal range, where every
        # elementwise op is ~4x slower (measured: the optimizer step 200 -> 50 us). Values
        # below 1.2e-38 become 0; nothing the learning depends on lives there.
        torch.set_flush_denormal(True)
        self.cfg, self.index = cfg, index
        self.model, self.optimizer = model, optimizer
        self.target, self.counter, self.sink = target, counter, sink
        K, T = cfg.envs_per_worker, cfg.t_max
        self.K, self.T = K, T

        seeds = worker_env_seeds(cfg.seed, index, K, cfg.resume_count, generation)
        self.envs: VectorStepper = make_stepper(cfg.vector, cfg.env_id, seeds, cfg.max_episode_steps)
        obs = self.envs.reset()
        self.rng = np.random.default_rng([cfg.seed, 7919, index])
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

        self.book = EpisodeBook(cfg, index, K, self.rng, sink)  # draws the final epsilons from self.rng
        if cfg.eps_schedule == "episode-decay" and index < len(cfg.resume_epsilons):
            self.book.eps[:] = cfg.resume_epsilons[index]  # resumed: continue the decay where it was
        if cfg.resume_count or generation:  # resumed run / restarted worker: same final epsilons,
            # fresh action randomness
            self.rng = np.random.default_rng([cfg.seed, 7919, index, cfg.resume_count, generation])

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

