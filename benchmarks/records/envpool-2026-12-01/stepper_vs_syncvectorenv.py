"""Steps per wall-second and per CPU-second: GymnasiumStepper vs SyncVectorEnv(SAME_STEP), LunarLander-v3, 8 envs, random actions."""
import time, numpy as np, warnings
warnings.filterwarnings("ignore")
from asyncdqn.envs.vector import GymnasiumStepper
from asyncdqn.envs import make_vector_env
K=8
for r in range(3):
    for name in ("sync","lean"):
        if name=="sync":
            v=make_vector_env("LunarLander-v3",K); v.reset(seed=list(range(K))); st=v.step
        else:
            v=GymnasiumStepper("LunarLander-v3", list(range(K))); v.reset(); st=v.step
        rng=np.random.default_rng(0); n=0; t0=time.perf_counter(); c0=time.process_time()
        while time.perf_counter()-t0<2:
            for _ in range(20): st(rng.integers(0,4,K))
            n+=20*K
        print(r,name, "%.0f steps/s cpu-normalised %.0f" % (n/(time.perf_counter()-t0), n/(time.process_time()-c0)))
