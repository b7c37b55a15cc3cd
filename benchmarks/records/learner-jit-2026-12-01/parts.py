"""CPU time of each part of one worker segment, in-process (denormals flushed as in a process worker),
by wrapping the worker's collaborators with timers. The remainder ("run_segment's own code") is the
Python of run_segment itself: buffer copies, flags, the episode book.

Usage: OMP_NUM_THREADS=1 python parts.py [gymnasium|envpool] [jit|nojit] [SEGMENTS]
"""
import sys
import time
import warnings

warnings.filterwarnings("ignore")
import torch  # noqa: E402

torch.set_num_threads(1)
torch.set_flush_denormal(True)
from asyncdqn.backends.base import ListSink  # noqa: E402
from asyncdqn.backends.shared import build_shared  # noqa: E402
from asyncdqn.config import resolve_config  # noqa: E402
from asyncdqn.envs import inspect_env  # noqa: E402
from asyncdqn.learners.async_q import ActorLearner  # noqa: E402

vector = sys.argv[1] if len(sys.argv) > 1 else "gymnasium"
jit = (sys.argv[2] if len(sys.argv) > 2 else "jit") == "jit"
n = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
cfg = resolve_config({"env_id": "LunarLander-v3", "workers": 1, "max_steps": 10**12, "progress": False,
                      "vector": vector, "jit": jit})
sh = build_shared(cfg, inspect_env(cfg.env_id))
sh.target.sync_from(sh.model, 0)
w = ActorLearner(cfg, 0, sh.model, sh.optimizer, sh.target, sh.counter, ListSink())
for _ in range(100):
    w.run_segment()
acc: dict[str, float] = {}


def timed(name, fn):
    def f(*a, **k):
        c = time.process_time()
        r = fn(*a, **k)
        acc[name] = acc.get(name, 0.0) + time.process_time() - c
        return r
    return f


w.envs.step = timed("env step", w.envs.step)
w.engine.act_drawn = timed("acting (forward, eps-greedy)", w.engine.act_drawn)
w.book.step = timed("episode book", w.book.step)
w.book.end = timed("episode book", w.book.end)
w.targets = timed("targets", w.targets)
w.engine.loss_and_grads = timed("loss and gradient", w.engine.loss_and_grads)
w.engine.attach_grads = timed("clip + attach", w.engine.attach_grads)
w.optimizer.step = timed("optimizer step", w.optimizer.step)
w.counter.add = timed("counter", w.counter.add)
c0 = time.process_time()
for _ in range(n):
    w.run_segment()
tot = (time.process_time() - c0) / n * 1e6
print(f"{vector}, {type(w.engine).__name__}: T={cfg.t_max} K={cfg.envs_per_worker} hidden={cfg.hidden_sizes}, us per {cfg.t_max * cfg.envs_per_worker}-step segment")
parts = {k: v / n * 1e6 for k, v in acc.items()}
parts["run_segment's own code"] = tot - sum(parts.values())
for k, v in parts.items():
    print(f"  {k:28s} {v:8.1f}")
print(f"  {'whole segment':28s} {tot:8.1f}   env share {parts['env step'] / tot:.1%}, non-env {tot - parts['env step']:.0f} us")
