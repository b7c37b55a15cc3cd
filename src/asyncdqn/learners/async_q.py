"""One actor-learner: steps K environments, learns from T-step segments.

Shared state reaches it through the interfaces of `learners/common.py`.

One segment (paper Alg. 1 / 3 with a batch of K environments):
  for t in 0..T-1: act epsilon-greedily on all K envs with one forward, step them;
  then one batched target forward, T*K targets, one forward/backward on the shared
  model, gradient clipping, one shared-optimizer step; then bump the global counter
  and, if this segment crossed a multiple of `target_update_steps`, sync the target
  (exactly one worker crosses each multiple, so exactly one owner per sync).
Options from PQN (docs/algorithms.md): Q(lambda) targets (--returns lambda), no target network
(--target-update-steps 0: bootstrap from the live shared weights), and --epochs passes of
--minibatches shuffled minibatches over the segment (one optimizer step each, targets computed once).
The network engine (`learners/engines.py`) does the forwards and the gradient: compiled kernels
(`algo/mlp_kernels.py`, the default for MLPs) or numpy with hand-written backprop (`algo/mlp_grad.py`,
--no-jit), numpy or torch autograd for conv nets.
"""

from __future__ import annotations

import math

import numpy as np
from torch import nn

from asyncdqn.algo.exploration import epsilon_greedy, epsilon_greedy_drawn
from asyncdqn.algo.targets import (
    double_q_values,
    greedy_values,
    lambda_targets,
    n_step_targets,
    one_step_targets,
    sarsa_values,
)
from asyncdqn.config import Config
from asyncdqn.envs.normalize import NormalizingStepper, ObsNormalizer, ObsStats
from asyncdqn.envs.vector import VectorStepper, make_stepper
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
from asyncdqn.learners.engines import JitMLPEngine, make_engine


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
        obs_stats: ObsStats | None = None,
    ) -> None:
        """`generation` counts restarts of worker `index`: each restart gets fresh env seeds.
        `obs_stats`: the run's shared observation statistics (--normalize-obs), None for raw observations."""
        self.cfg, self.index = cfg, index
        self.model, self.optimizer = model, optimizer
        self.target, self.counter, self.sink = target, counter, sink
        K, T = cfg.envs_per_worker, cfg.t_max
        self.K, self.T = K, T

        seeds = worker_env_seeds(cfg.seed, index, K, cfg.resume_count, generation)
        self.envs: VectorStepper = make_stepper(cfg.vector, cfg.env_id, seeds, cfg.max_episode_steps,
                                                cfg.env_kwargs)
        if obs_stats is not None:
            self.envs = NormalizingStepper(self.envs, ObsNormalizer(obs_stats))
        obs = self.envs.reset()
        eps_rng, self.rng = learner_rngs(cfg.seed, index, cfg.resume_count, generation)
        self.n_actions = self.envs.n_actions

        # The network engine (learners/engines.py): compiled kernels (--jit, the default) or numpy
        # forward + hand-written backprop for MLPs, numpy for the MinAtar conv net, torch autograd
        # for the Atari net; acting reads the shared weights in place.
        self.engine = make_engine(model, jit=cfg.jit, bf16=cfg.precision == "bf16")
        self.online = self.engine.online
        # --target-update-steps 0: no target network, the targets bootstrap from the live shared weights
        self.no_target = cfg.target_update_steps == 0
        self.target_net = self.engine.online if self.no_target else self.engine.target
        self._target_arrays = self.engine.target_arrays  # filled by TargetStore.read_into
        self._gamma32 = np.float32(cfg.gamma)
        # Recording a step and the n-step returns: compiled kernels (the same results as the numpy
        # methods, tested) unless --no-jit.
        self._n_step_returns = self._numpy_n_step_returns
        self._record = self._numpy_record
        if cfg.jit:
            from asyncdqn.algo import mlp_kernels  # numba: imported only by the workers that use it

            self._kernels = mlp_kernels
            self._compiled_returns, self._compiled_record = mlp_kernels.n_step_returns, mlp_kernels.record_step
            self._n_step_returns, self._record = self._jit_n_step_returns, self._jit_record
        self._lambda_returns = self._jit_lambda_returns if cfg.jit else self._numpy_lambda_returns
        self._fused_targets = (isinstance(self.engine, JitMLPEngine) and cfg.algo == "n-step-q"
                               and obs.ndim == 2 and obs.dtype == np.float32)
        # --lambda-values act: max_a Q(s_t+1) kept from acting on s_t+1 (v_acted[t]), not recomputed at learning
        self._values_acted = cfg.lambda_values == "act"
        self.v_acted = np.zeros((T, K), dtype=np.float32)
        # The fused path of that case (the default's: an MLP on vector observations): one compiled call
        # per env step (record it, then act) and one per update (targets, gradient, clip). Same results
        # as the step-by-step calls (tested bit for bit); False selects those.
        self.fused = self._fused_targets and cfg.loss in ("huber", "mse") and not self._values_acted
        # Updates per segment (--epochs x --minibatches): the fused path's one-call update only for one
        # update of n-step returns; else the targets once, then each update's gradient (`_learn`).
        self._updates = cfg.epochs * cfg.minibatches
        self._fused_learn = cfg.returns == "nstep" and self._updates == 1
        # Shuffles the rows into minibatches: a stream of its own, so exploration does not depend on it
        self._batch_rng = np.random.default_rng([cfg.seed, 104_729, index, cfg.resume_count, generation])
        # --grad-reduce sum: the rows' summed gradient (the paper's accumulation), else their mean
        self._grad_scale = float(T * K) if cfg.grad_reduce == "sum" else 1.0
        self.runaway = RunawayCheck(cfg, f"worker {index}")
        self._target_version = -1

        self.book = EpisodeBook(cfg, index, K, eps_rng, sink)  # draws the final epsilons
        if cfg.eps_schedule == "episode-decay" and index < len(cfg.resume_epsilons):
            self.book.eps[:] = cfg.resume_epsilons[index]  # resumed: continue the decay where it was

        # Segment buffers, reused every segment. Observations keep the environment's kind
        # (uint8 images stay uint8 until the network) and are stored once: obs_seq[t] is
        # s_t and obs_seq[t+1] its successor, except where the episode ended at step t,
        # whose true final observation is in final_obs[t] (the next row holds the reset).
        shape = obs.shape[1:]
        self.obs_dtype = np.uint8 if obs.dtype == np.uint8 else np.float32
        self.obs_seq: np.ndarray = np.zeros((T + 1, K, *shape), dtype=self.obs_dtype)
        self.final_obs: np.ndarray = np.zeros((T, K, *shape), dtype=self.obs_dtype)
        self.act_buf = np.zeros((T, K), dtype=np.int64)
        self.next_act_buf = np.zeros((T, K), dtype=np.int64)  # a' for Sarsa
        self.rew_buf = np.zeros((T, K), dtype=np.float32)
        self.term_buf = np.zeros((T, K), dtype=bool)
        self.done_buf = np.zeros((T, K), dtype=bool)

        self.obs_seq[0] = obs
        self._current = 0  # row of obs_seq holding the current observations
        self.steps_done = 0  # this worker's env steps
        self.last_loss = float("nan")
        self.book.update_epsilon(counter.value)
        self.actions = self._act(self.obs)

    @property
    def obs(self) -> np.ndarray:
        """The K current observations (the first row of the next segment)."""
        row: np.ndarray = self.obs_seq[self._current]
        return row

    @property
    def obs_buf(self) -> np.ndarray:
        """(T, K, ...) s_t of the last segment."""
        return self.obs_seq[:-1]

    @property
    def next_obs_buf(self) -> np.ndarray:
        """(T, K, ...) the true next state of each step of the last segment (a copy)."""
        nxt = self.obs_seq[1:].copy()
        nxt[self.done_buf] = self.final_obs[self.done_buf]
        return nxt

    # ------------------------------------------------------------------ acting
    def _act(self, obs: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
        """Epsilon-greedy actions for all envs' observations, or for the envs `idx`."""
        eps = self.book.eps if idx is None else self.book.eps[idx]
        return epsilon_greedy(self.online(obs), eps, self.rng)

    def _act_drawn(self, obs: np.ndarray, t: int) -> np.ndarray:
        """Epsilon-greedy actions for all envs after step t of the segment, from the segment's
        pre-drawn randomness (one rng call per segment instead of two per step). --lambda-values act:
        their greedy values are kept as step t's bootstrap values (v_acted[t])."""
        if self._values_acted:
            q = self.online(obs)
            self.v_acted[t] = greedy_values(q)
            return epsilon_greedy_drawn(q, self.book.eps, self._uniforms[t], self._random_actions[t])
        return self.engine.act_drawn(obs, self.book.eps, self._uniforms[t], self._random_actions[t])

    def epsilon(self) -> float:
        """Mean current epsilon over this worker's environments (for progress display)."""
        return self.book.mean_epsilon()

    # --------------------------------------------------------------- a segment
    def run_segment(self) -> int:
        """Act T steps in K envs, learn once. Returns the env steps taken (T*K)."""
        cfg, T, K = self.cfg, self.T, self.K
        if not self.no_target and self.target.version != self._target_version:
            self._target_version = self.target.read_into(self._target_arrays)
        base_step = self.counter.value
        self.book.update_epsilon(base_step)
        sarsa = cfg.algo == "one-step-sarsa"
        # The segment's exploration randomness in one draw: u[0] decides exploring, u[1] picks the
        # random action (floor(u * n) is uniform on 0..n-1; Generator.integers costs 4x more per call).
        u = self.rng.random((2, T, K))
        self._uniforms = u[0]
        self._random_actions = (u[1] * self.n_actions).astype(np.int64)

        if self._current:  # the previous segment's last observation starts this one
            self.obs_seq[0] = self.obs_seq[self._current]
            self._current = 0
        if self.fused:
            self._fused_segment(base_step)
            return self._end_segment(base_step)
        for t in range(T):
            a = self.actions
            obs, rew, term, trunc, final_obs = self.envs.step(a)
            self._record(t, a, obs, rew, term, trunc)
            if final_obs is not None:
                self._close_episodes(t, final_obs, base_step)
            self.actions = self._act_drawn(self.obs_seq[t + 1], t)
            if sarsa:
                self.next_act_buf[t] = self.actions
                cut = np.flatnonzero(trunc & ~term)
                if cut.size:  # truncated: a' is the policy's action in the final state
                    self.next_act_buf[t, cut] = self._act(self.final_obs[t, cut], cut)
        self._current = T
        self._learn(base_step)
        return self._end_segment(base_step)

    def _end_segment(self, base_step: int) -> int:
        """Count the segment's steps (and sync the target net if they crossed a multiple of its period)."""
        cfg, T, K = self.cfg, self.T, self.K
        self.steps_done += T * K
        old, new = self.counter.add(self.index, T * K)
        if not self.no_target and new // cfg.target_update_steps > old // cfg.target_update_steps:
            self.target.sync_from(self.model, new)
        return T * K

    def _close_episodes(self, t: int, final_obs: np.ndarray, base_step: int) -> None:
        """Keep the true final observations of the episodes that ended at step t (the next state to
        bootstrap from, not the first observation of the next episode: auto-reset) and report them."""
        done = self.done_buf[t]
        self.final_obs[t, np.flatnonzero(done)] = final_obs
        self.book.end(done, base_step + (t + 1) * self.K)

    def _fused_segment(self, base_step: int) -> None:
        """run_segment's steps and learning for the fused case: the same operations in the same order
        as the step-by-step path, in one compiled call per env step and one per update."""
        T, book, engine = self.T, self.book, self.engine
        assert isinstance(engine, JitMLPEngine)
        step, record_and_act = self.envs.step, self._kernels.record_and_act
        flat, sizes, eps = engine.flat, engine.sizes, book.eps
        uniforms, random_actions = self._uniforms, self._random_actions
        a = self.actions
        for t in range(T):
            obs, rew, term, trunc, final_obs = step(a)
            n_ended, a = record_and_act(t, a, obs, rew, term, trunc, self.act_buf, self.obs_seq, self.rew_buf,
                                        self.term_buf, self.done_buf, book.ep_return, book.ep_len, flat, sizes, eps,
                                        uniforms[t], random_actions[t])
            if n_ended:  # close the episodes first (episode-decay epsilons change there), then act
                assert final_obs is not None  # the stepper returns them whenever an episode ended
                self._close_episodes(t, final_obs, base_step)
                eps = book.eps
                a = self._act_drawn(self.obs_seq[t + 1], t)
        self.actions = a
        self._current = T

        cfg = self.cfg
        if not self._fused_learn:  # Q(lambda) returns or several updates: targets, then each update
            self._learn(base_step)
            return
        loss_value, max_abs_reward = self._kernels.n_step_q_learn(
            flat if self.no_target else engine.target_flat, flat, sizes,
            self.obs_seq, self.final_obs, self.act_buf, self.rew_buf, self.term_buf,
            self.done_buf, self._gamma32, cfg.double_q, cfg.loss == "huber", engine.grad_flat,
            np.float32(self._grad_scale), np.inf if cfg.grad_clip is None else float(cfg.grad_clip))
        self._check_loss(loss_value)
        self.runaway.check(loss_value, max_abs_reward)
        engine.hand_over_grads()
        self._apply_update(loss_value, base_step)

    def _numpy_record(self, t: int, a: np.ndarray, obs: np.ndarray, rew: np.ndarray, term: np.ndarray,
                      trunc: np.ndarray) -> None:
        """Step t into the segment buffers and the episode book."""
        self.act_buf[t] = a
        self.rew_buf[t] = rew
        self.term_buf[t] = term
        self.done_buf[t] = term | trunc
        self.obs_seq[t + 1] = obs
        self.book.step(rew)

    def _jit_record(self, t: int, a: np.ndarray, obs: np.ndarray, rew: np.ndarray, term: np.ndarray,
                    trunc: np.ndarray) -> None:
        """`_numpy_record` in one compiled call."""
        self._compiled_record(t, a, obs, rew, term, trunc, self.act_buf, self.obs_seq, self.rew_buf, self.term_buf,
                              self.done_buf, self.book.ep_return, self.book.ep_len)

    # --------------------------------------------------------------- learning
    def targets(self) -> np.ndarray:
        """(T, K) TD targets of the current segment buffers, from the local target net (the live shared
        weights with --target-update-steps 0)."""
        cfg, T, K = self.cfg, self.T, self.K
        if cfg.algo == "n-step-q":
            return self._lambda_targets() if cfg.returns == "lambda" else self._n_step_targets()
        flat_next = self.obs_seq[1:].reshape(T * K, *self.obs_seq.shape[2:])  # a view: no copy
        q_next = self.target_net(flat_next).reshape(T, K, -1)
        ended = self.done_buf
        finals = self.final_obs[ended] if ended.any() else None  # true next states of ended episodes
        if finals is not None:
            q_next[ended] = self.target_net(finals)
        if cfg.algo == "one-step-sarsa":
            v_next = sarsa_values(q_next, self.next_act_buf)
        elif cfg.double_q:
            q_online = self.online(flat_next).reshape(T, K, -1)
            if finals is not None:
                q_online[ended] = self.online(finals)
            v_next = double_q_values(q_next, q_online)
        else:
            v_next = greedy_values(q_next)
        v_next = v_next.astype(np.float32)
        return one_step_targets(self.rew_buf, self.term_buf, v_next, cfg.gamma)

    def _n_step_targets(self) -> np.ndarray:
        """n-step returns read V(s') only at the segment's last step and at truncated episode
        ends (their final observation): the networks run on those rows alone (about K of T*K);
        the other values are never read (zero here)."""
        cfg, T, K = self.cfg, self.T, self.K
        if self._fused_targets:  # the same in one compiled call (vector observations, JitMLPEngine)
            assert isinstance(self.engine, JitMLPEngine)
            return self.engine.n_step_targets(self.final_obs, self.obs_seq[T], self.rew_buf, self.term_buf,
                                              self.done_buf, self._gamma32, cfg.double_q, online=self.no_target)
        truncated = self.done_buf & ~self.term_buf  # bootstrap from the final observation
        tail = ~self.done_buf[T - 1]  # the segment's end, mid-episode: bootstrap from s_T
        rows = np.concatenate([self.final_obs[truncated], self.obs_seq[T][tail]])
        v_next = np.zeros((T, K), dtype=np.float32)
        if len(rows):
            q_rows = self.target_net(rows)
            v = double_q_values(q_rows, self.online(rows)) if cfg.double_q else greedy_values(q_rows)
            n_trunc = int(truncated.sum())
            v_next[truncated] = v[:n_trunc]
            v_next[T - 1, tail] = v[n_trunc:]
        return self._n_step_returns(v_next)

    def _lambda_targets(self) -> np.ndarray:
        """Q(lambda) returns read V(s') at every step that did not terminate: the networks run on
        those next states (the true final observation where an episode was truncated)."""
        cfg = self.cfg
        if self._values_acted:
            return self._lambda_returns(self._acted_values())
        if self._fused_targets:  # the same in one compiled call (vector observations, JitMLPEngine)
            assert isinstance(self.engine, JitMLPEngine)
            return self.engine.lambda_targets(self.final_obs, self.obs_seq, self.rew_buf, self.term_buf,
                                              self.done_buf, cfg.gamma, cfg.lam, cfg.double_q, online=self.no_target)
        going_on = ~self.term_buf
        rows = self.next_obs_buf[going_on]
        v_next = np.zeros(self.rew_buf.shape, dtype=np.float32)
        if len(rows):
            q_rows = self.target_net(rows)
            v_next[going_on] = double_q_values(q_rows, self.online(rows)) if cfg.double_q else greedy_values(q_rows)
        return self._lambda_returns(v_next)

    def _acted_values(self) -> np.ndarray:
        """--lambda-values act: V(s_t+1) as recorded while acting, except where the episode ended at
        step t: 0 if it terminated, and if it was truncated the value of its true final observation
        (the acted row is the next episode's first), computed now."""
        v_next = self.v_acted.copy()
        v_next[self.term_buf] = 0.0
        truncated = self.done_buf & ~self.term_buf
        if truncated.any():
            v_next[truncated] = greedy_values(self.online(self.final_obs[truncated]))
        return v_next

    def _numpy_lambda_returns(self, v_next: np.ndarray) -> np.ndarray:
        return lambda_targets(self.rew_buf, self.term_buf, self.done_buf, v_next, self.cfg.gamma, self.cfg.lam)

    def _jit_lambda_returns(self, v_next: np.ndarray) -> np.ndarray:
        returns: np.ndarray = self._kernels.lambda_returns(self.rew_buf, self.term_buf, self.done_buf, v_next,
                                                       self.cfg.gamma, self.cfg.lam)
        return returns

    def _numpy_n_step_returns(self, v_next: np.ndarray) -> np.ndarray:
        return n_step_targets(self.rew_buf, self.term_buf, self.done_buf, v_next, self.cfg.gamma)

    def _jit_n_step_returns(self, v_next: np.ndarray) -> np.ndarray:
        returns: np.ndarray = self._compiled_returns(self.rew_buf, self.term_buf, self.done_buf, v_next,
                                                     self._gamma32)
        return returns

    def _learn(self, global_step: int) -> None:
        """The segment's targets (once, from the weights before any of its updates), then --epochs passes
        over its T*K rows in --minibatches shuffled minibatches, one shared-optimizer step each. The
        default (1, 1) is one update on all rows in their order."""
        cfg, T, K = self.cfg, self.T, self.K
        y = self.targets().reshape(T * K)
        obs = self.obs_seq[:T].reshape(T * K, *self.obs_seq.shape[2:])
        actions = self.act_buf.reshape(T * K)
        for _ in range(cfg.epochs):
            if cfg.minibatches == 1:
                self._update(obs, actions, y, self._grad_scale, global_step)
                continue
            for rows in np.array_split(self._batch_rng.permutation(T * K), cfg.minibatches):
                scale = float(len(rows)) if cfg.grad_reduce == "sum" else 1.0
                self._update(obs[rows], actions[rows], y[rows], scale, global_step)

    def _update(self, obs: np.ndarray, actions: np.ndarray, y: np.ndarray, scale: float, global_step: int) -> None:
        """Loss of Q(s, a) on the shared weights against the targets y, its gradient (scaled, clipped) and
        one shared-optimizer step."""
        cfg = self.cfg
        loss_value = self.engine.loss_and_grads(obs, actions, y, cfg.loss)
        self._check_loss(loss_value)
        self.runaway(loss_value, self.rew_buf)
        self.engine.attach_grads(cfg.grad_clip, scale)  # scaled, clipped, set as p.grad
        self._apply_update(loss_value, global_step)

    def _check_loss(self, loss_value: float) -> None:
        """TrainingError naming the source (environment or divergence) if the TD loss is not finite."""
        if not math.isfinite(loss_value):
            raise self._non_finite_error()

    def _apply_update(self, loss_value: float, global_step: int) -> None:
        """The shared optimizer's step from the attached gradient; the loss is kept for the episode reports."""
        self.optimizer.step(self.cfg.lr_at(global_step))
        self.last_loss = loss_value
        self.book.add_loss(loss_value)

    def _non_finite_error(self) -> TrainingError:
        return non_finite_error(f"worker {self.index}", (self.obs_buf, self.next_obs_buf), self.rew_buf,
                                self.model.parameters())

    def close(self) -> None:
        self.envs.close()

