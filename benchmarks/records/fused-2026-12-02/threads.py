"""Per-thread CPU of ceiling and trainer (2 workers, envpool), to see where CPU goes."""
import os, sys, time, threading
from pathlib import Path
import asyncdqn.bench.throughput as tp
from asyncdqn.config import resolve_config

def snapshot(root):
    ticks = os.sysconf("SC_CLK_TCK")
    parent, out = {}, {}
    for e in Path("/proc").iterdir():
        if not e.name.isdigit(): continue
        try: st = (e / "stat").read_text()
        except OSError: continue
        parent[int(e.name)] = int(st[st.rindex(")") + 2:].split()[1])
    kids = {}
    for p, pp in parent.items(): kids.setdefault(pp, []).append(p)
    todo, procs = [root], []
    while todo:
        p = todo.pop(); procs.append(p); todo.extend(kids.get(p, []))
    for p in procs:
        for t in Path(f"/proc/{p}/task").iterdir():
            try: st = (t / "stat").read_text()
            except OSError: continue
            comm = st[st.index("(") + 1:st.rindex(")")]
            f = st[st.rindex(")") + 2:].split()
            ctx = {}
            try:
                for line in (t / "status").read_text().splitlines():
                    if "ctxt_switches" in line: k, v = line.split(":"); ctx[k] = int(v)
            except OSError: pass
            out[(p, int(t.name))] = (comm, (int(f[11]) + int(f[12])) / ticks, ctx.get("voluntary_ctxt_switches", 0), ctx.get("nonvoluntary_ctxt_switches", 0))
    return out

def report(name, a, b, steps, secs):
    print(f"== {name}: {steps/secs:,.0f} steps/s")
    tot = 0
    for k, (comm, c1, v1, n1) in sorted(b.items()):
        if k not in a: continue
        comm0, c0, v0, n0 = a[k]
        d = c1 - c0; tot += d
        if d > 0.05 or (v1 - v0) > 1000:
            print(f"  pid {k[0]} tid {k[1]} {comm:16s} cpu {d:6.2f}s  {d/steps*1e6*secs/secs:6.2f} us/step  vol {(v1-v0)/secs:8.0f}/s invol {(n1-n0)/secs:6.0f}/s")
    print(f"  total cpu {tot:.2f}s = {tot/steps*1e6:.2f} us/step")

SECS = float(sys.argv[1]) if len(sys.argv) > 1 else 8
VEC = sys.argv[2] if len(sys.argv) > 2 else "envpool"
if __name__ == "__main__":
    # ceiling
    orig_sleep = time.sleep
    holder = {}
    def sleep_hook(s):
        if s == SECS:
            holder["a"] = snapshot(os.getpid()); holder["t0"] = time.perf_counter()
            orig_sleep(s)
            holder["b"] = snapshot(os.getpid()); holder["t1"] = time.perf_counter()
        else:
            orig_sleep(s)
    tp.time.sleep = sleep_hook
    cfg = resolve_config({"env_id": "LunarLander-v3", "workers": 2, "max_steps": 10**12, "progress": False, "vector": VEC})
    m = tp.measure_ceiling("LunarLander-v3", 2, cfg.envs_per_worker, SECS, vector=VEC)
    report("ceiling", holder["a"], holder["b"], m.steps, m.seconds)
    tp.time.sleep = orig_sleep
    with tp.settled_backend(cfg) as (shared, backend):
        s0, a, t0 = shared.counter.value, snapshot(os.getpid()), time.perf_counter()
        while time.perf_counter() - t0 < SECS:
            backend.poll(timeout=tp.TRAINER_POLL_S)
        s1, b, t1 = shared.counter.value, snapshot(os.getpid()), time.perf_counter()
    report("trainer", a, b, s1 - s0, t1 - t0)
