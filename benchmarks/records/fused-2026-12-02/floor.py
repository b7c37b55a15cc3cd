"""Lower bound of the learner's cost: the ceiling loop plus only the unavoidable kernels of a
segment (acting forward + eps-greedy per batch; every T batches: n-step double-Q targets, the TD
gradient, scale/clip, fused Adam), with none of the worker's Python around them."""
import os, sys, time, statistics
import numpy as np
from asyncdqn.backends.base import SPAWN

N_PARAMS = 8 * 128 + 128 + 128 * 128 + 128 + 128 * 4 + 4


def worker(mode, k, seed, counter, stop, shared):
    import warnings; warnings.filterwarnings("ignore")
    import torch
    torch.set_num_threads(1); torch.set_flush_denormal(True)
    from asyncdqn.envs.vector import make_stepper
    from asyncdqn.algo import jit
    s = make_stepper("envpool", "LunarLander-v3", [seed * 1000 + i for i in range(k)])
    obs = s.reset()
    rng = np.random.default_rng(seed)
    T = 5
    sizes = np.array([8, 128, 128, 4], np.int64)
    if shared is not None and mode.endswith("shared"):
        p, m, v = (np.frombuffer(a, dtype=np.float32) for a in shared)
    else:
        p = (rng.standard_normal(N_PARAMS) * 0.05).astype(np.float32); m = np.zeros_like(p); v = np.zeros_like(p)
        if shared is not None:
            p[:] = np.frombuffer(shared[0], dtype=np.float32)
    tgt = p.copy(); grad = np.zeros_like(p)
    tp, tg, tm, tv = (torch.from_numpy(a) for a in (p, grad, m, v))
    step = torch.zeros((), dtype=torch.float32); step_np = step.numpy()
    obs_seq = np.zeros((T + 1, k, 8), np.float32); final_obs = np.zeros((T, k, 8), np.float32)
    act_buf = np.zeros((T, k), np.int64); rew_buf = np.zeros((T, k), np.float32)
    term_buf = np.zeros((T, k), bool); done_buf = np.zeros((T, k), bool)
    ep_ret = np.zeros(k); ep_len = np.zeros(k, np.int64)
    eps = np.full(k, 0.1)
    obs_seq[0] = obs
    actions = rng.integers(0, 4, size=k)
    done_steps, n = 0, 0
    learn = mode.startswith("learn")
    while not stop.is_set():
        for _ in range(10):
            u = rng.random((2, T, k)); ra = (u[1] * 4).astype(np.int64)
            for t in range(T):
                if mode == "ceiling":
                    s.step(rng.integers(0, 4, size=k))
                    continue
                o, r, te, tr, fin = s.step(actions)
                jit.record_step(t, actions, o, r, te, tr, act_buf, obs_seq, rew_buf, term_buf, done_buf, ep_ret, ep_len)
                actions = jit.act_drawn(p, sizes, obs_seq[t + 1], eps, u[0, t], ra[t])
            if learn:
                y = jit.n_step_q_targets(tgt, p, sizes, final_obs, obs_seq[T], rew_buf, term_buf, done_buf,
                                         np.float32(0.99), True)
                jit.td_loss_and_grad(p, sizes, obs_seq[:T].reshape(T * k, 8), act_buf.reshape(T * k),
                                     y.reshape(T * k), True, grad)
                jit.scale_and_clip(grad, np.float32(1.0), 10.0)
                n += 1; step_np[()] = n
                torch._fused_adam_([tp], [tg], [tm], [tv], [], [step], lr=1e-5, beta1=0.9, beta2=0.999,
                                   weight_decay=0.0, eps=1e-8, amsgrad=False, maximize=False)
            obs_seq[0] = obs_seq[T]
        done_steps += 10 * T * k
        counter[seed] = done_steps
    s.close()


def measure(mode, secs, shared):
    counter = SPAWN.Array("q", 2, lock=False); stop = SPAWN.Event()
    procs = [SPAWN.Process(target=worker, args=(mode, 8, i, counter, stop, shared), daemon=True) for i in range(2)]
    for pr in procs: pr.start()
    while min(counter) == 0: time.sleep(0.05)
    time.sleep(1.0)
    s0, t0 = sum(counter), time.perf_counter(); time.sleep(secs); s1, t1 = sum(counter), time.perf_counter()
    stop.set()
    for pr in procs: pr.join(5)
    return (s1 - s0) / (t1 - t0)


if __name__ == "__main__":
    os.environ["OMP_NUM_THREADS"] = "1"
    rounds, secs = int(sys.argv[1]), float(sys.argv[2])
    modes = ["ceiling", "act", "learn-local", "learn-shared"]
    rng = np.random.default_rng(0)
    init = (rng.standard_normal(N_PARAMS) * 0.05).astype(np.float32)
    res = {m: [] for m in modes}
    for r in range(rounds):
        shared = [SPAWN.RawArray("f", N_PARAMS) for _ in range(3)]
        np.frombuffer(shared[0], dtype=np.float32)[:] = init
        rates = {m: measure(m, secs, shared) for m in modes}
        for m in modes: res[m].append(rates[m] / rates["ceiling"])
        print(f"round {r}: " + " | ".join(f"{m} {rates[m]:8,.0f} ({rates[m]/rates['ceiling']:.1%})" for m in modes), flush=True)
    for m in modes[1:]:
        print(f"{m}: median {statistics.median(res[m]):.1%} (min {min(res[m]):.1%}, max {max(res[m]):.1%})")
