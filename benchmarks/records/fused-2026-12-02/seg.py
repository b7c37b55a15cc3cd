"""Wall time of one worker's run_segment in-process (1 worker; EnvPool's thread on the other core),
and its Python thread's CPU per segment: the learner's cost without the 2-worker scheduling noise."""
import sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np, torch
torch.set_num_threads(1); torch.set_flush_denormal(True)
from asyncdqn.backends.base import ListSink
from asyncdqn.backends.shared import build_shared
from asyncdqn.config import resolve_config
from asyncdqn.envs import inspect_env
from asyncdqn.learners.async_q import ActorLearner
vec, n = sys.argv[1], int(sys.argv[2])
cfg = resolve_config({"env_id": "LunarLander-v3", "workers": 1, "max_steps": 10**12, "progress": False, "vector": vec})
sh = build_shared(cfg, inspect_env(cfg.env_id)); sh.target.sync_from(sh.model, 0)
w = ActorLearner(cfg, 0, sh.model, sh.optimizer, sh.target, sh.counter, ListSink())
for _ in range(300): w.run_segment()
t0, c0 = time.perf_counter(), time.thread_time()
for _ in range(n): w.run_segment()
print(f"RESULT {(time.perf_counter()-t0)/n*1e6:.1f} {(time.thread_time()-c0)/n*1e6:.1f}")
