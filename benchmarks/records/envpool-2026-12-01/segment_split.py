"""CPU time of one worker segment split into env stepping, learning (_learn) and the rest (acting,
buffers), in-process with denormals flushed as in a process worker. Usage: python segment_split.py [gymnasium|envpool]"""
import os, time, warnings
warnings.filterwarnings("ignore")
import torch, numpy as np
torch.set_num_threads(1); torch.set_flush_denormal(True)
from asyncdqn.config import resolve_config
from asyncdqn.envs import inspect_env
from asyncdqn.backends.shared import build_shared
from asyncdqn.backends.base import ListSink
from asyncdqn.learners.async_q import ActorLearner
import sys
cfg = resolve_config({'env_id':'LunarLander-v3','workers':1,'max_steps':10**9,'progress':False, 'vector': sys.argv[1] if len(sys.argv)>1 else 'gymnasium'})
sh = build_shared(cfg, inspect_env(cfg.env_id)); sh.target.sync_from(sh.model,0)
w = ActorLearner(cfg,0,sh.model,sh.optimizer,sh.target,sh.counter,ListSink())
for _ in range(50): w.run_segment()
inner = w.envs.step
acc = [0.0]
def timed(a):
    c = time.process_time(); r = inner(a); acc[0] += time.process_time() - c; return r
w.envs.step = timed
lacc=[0.0]; il = w._learn
def tl(g):
    c = time.process_time(); il(g); lacc[0] += time.process_time() - c
w._learn = tl
c0 = time.process_time()
for _ in range(400): w.run_segment()
tot = time.process_time() - c0
print(f"{cfg.vector}: per segment total {tot/400*1e6:.0f} us, env {acc[0]/400*1e6:.0f} us, learn {lacc[0]/400*1e6:.0f} us, rest {(tot-acc[0]-lacc[0])/400*1e6:.0f} us; env share {acc[0]/tot:.1%}")
