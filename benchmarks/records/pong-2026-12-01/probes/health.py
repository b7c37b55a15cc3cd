"""Is a Pong run's network alive? For every checkpoint of the run directories given: the fraction
of first-conv and second-conv units active (> 0) over 20 frames of random play, and the spread of
the Q-values over those frames (0 = the network ignores its input: its features died).

    .venv/bin/python benchmarks/records/pong-2026-12-01/probes/health.py RUN_DIR [RUN_DIR ...]
"""
import sys
from pathlib import Path

import numpy as np
import torch

from asyncdqn.envs import make_env
from asyncdqn.policy import load_policy

env = make_env("ALE/Pong-v5", learning=True)
obs, _ = env.reset(seed=1)
frames = []
rng = np.random.default_rng(0)
for i in range(200):
    obs, *_ = env.step(int(rng.integers(env.action_space.n)))
    frames.append(obs)
x = torch.from_numpy(np.stack(frames[::10]))
for run in sys.argv[1:]:
    for ckpt in sorted((Path(run) / "checkpoints").glob("*.safetensors")):
        pol = load_policy(run, which=ckpt.name)
        m = pol.network
        with torch.no_grad():
            xf = x.float() / 255.0
            c1 = m.features[0](xf)
            c2 = m.features[:4](xf)
            q = m(x)
        print(f"{run} {ckpt.name:32s} step {pol.step}: conv1 active {float((c1 > 0).float().mean()):.3f}, "
              f"conv2 active {float((c2 > 0).float().mean()):.3f}, Q spread over frames {float(q.std(0).mean()):.4f}, "
              f"Q mean {float(q.mean()):.3f}")
