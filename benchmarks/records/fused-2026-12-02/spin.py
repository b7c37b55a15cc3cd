import os, sys, time, threading
from pathlib import Path
import numpy as np
from asyncdqn.envs.vector import make_stepper

def thread_cpu():
    out = {}
    for t in Path(f"/proc/self/task").iterdir():
        st = (t / "stat").read_text(); f = st[st.rindex(")") + 2:].split()
        out[int(t.name)] = (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    return out

def busy(us):
    t = time.perf_counter() + us * 1e-6
    while time.perf_counter() < t: pass

k = int(sys.argv[1])
for delay in [0, 20, 50, 100, 200]:
    s = make_stepper("envpool", "LunarLander-v3", list(range(k)))
    s.reset(); rng = np.random.default_rng(0)
    for _ in range(200): s.step(rng.integers(0, 4, size=k))
    a = thread_cpu(); t0 = time.perf_counter(); n = 0
    while time.perf_counter() - t0 < 3:
        for _ in range(50):
            s.step(rng.integers(0, 4, size=k))
            if delay: busy(delay)
        n += 50 * k
    b = thread_cpu(); el = time.perf_counter() - t0
    main = threading.get_native_id()
    per = {tid: (b[tid] - a.get(tid, 0)) / n * 1e6 for tid in b}
    others = sorted(((v, tid) for tid, v in per.items() if tid != main), reverse=True)
    print(f"K={k} delay {delay:4d}us: {n/el:8,.0f} steps/s  main {per[main]:.2f} us/step (delay share {delay/k:.2f})  others " + " ".join(f"{v:.2f}" for v, _ in others[:3]), flush=True)
    s.close()
