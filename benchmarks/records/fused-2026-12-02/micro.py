import sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np, torch
torch.set_num_threads(1); torch.set_flush_denormal(True)
from asyncdqn.backends.base import ListSink
from asyncdqn.backends.shared import build_shared
from asyncdqn.config import resolve_config
from asyncdqn.envs import inspect_env
from asyncdqn.learners.async_q import ActorLearner
vec = sys.argv[1] if len(sys.argv) > 1 else "envpool"
cfg = resolve_config({"env_id": "LunarLander-v3", "workers": 1, "max_steps": 10**12, "progress": False, "vector": vec})
sh = build_shared(cfg, inspect_env(cfg.env_id)); sh.target.sync_from(sh.model, 0)
w = ActorLearner(cfg, 0, sh.model, sh.optimizer, sh.target, sh.counter, ListSink())
for _ in range(200): w.run_segment()
def t(name, fn, n=20000):
    fn()
    c = time.perf_counter_ns()
    for _ in range(n): fn()
    print(f"{name:40s} {(time.perf_counter_ns()-c)/n/1000:8.2f} us")
a = w.actions; obs = w.obs_seq[1].copy(); rew = np.zeros(8, np.float32); term = np.zeros(8, bool); trunc = term.copy()
t("record (jit)", lambda: w._record(0, a, obs, rew, term, trunc))
w._uniforms = np.random.random((5, 8)); w._random_actions = np.zeros((5, 8), np.int64)
t("act_drawn", lambda: w._act_drawn(w.obs_seq[1], 0))
t("engine.act_drawn direct", lambda: w.engine.act_drawn(obs, w.book.eps, w._uniforms[0], w._random_actions[0]))
t("target.version", lambda: w.target.version)
t("counter.value", lambda: w.counter.value)
t("counter.add", lambda: w.counter.add(0, 0))
t("update_epsilon", lambda: w.book.update_epsilon(1000))
t("rng draw", lambda: (w.rng.random((2, 5, 8))[1] * 4).astype(np.int64))
t("book.end(none)", lambda: w.book.end(np.zeros(8, bool), 0))
t("targets", lambda: w.targets())
y = w.targets().reshape(40)
t("loss_and_grads", lambda: w.engine.loss_and_grads(w.obs_seq[:5].reshape(40, 8), w.act_buf.reshape(40), y, "huber"))
t("attach", lambda: w.engine.attach_grads(cfg.grad_clip, 1.0))
t("optimizer.step", lambda: w.optimizer.step(cfg.lr_at(0)), 5000)
t("lr_at", lambda: cfg.lr_at(1000))
t("runaway", lambda: w.runaway(0.5, w.rew_buf))
t("isfinite", lambda: np.isfinite(0.5))
t("add_loss", lambda: w.book.add_loss(0.5))
rng = np.random.default_rng(0)
t("env step (random)", lambda: w.envs.step(rng.integers(0, 4, size=8)), 5000)
t("run_segment", lambda: w.run_segment(), 2000)
