"""EnvPool vs Gymnasium: the same fixed heuristic policy (asyncdqn.envs.equivalence.HEURISTICS) on both
steppers, N episodes each (8 envs per stepper, worker-style seeds), return and length
distributions compared (KS two-sample test, Welch z of the means).

Usage: python equivalence.py [--episodes 300] [--epsilon 0.0] [--out equivalence.json]
"""
import argparse, json, time, warnings
warnings.filterwarnings("ignore")
import numpy as np
from asyncdqn.envs import env_seeds
from asyncdqn.envs.equivalence import HEURISTICS, episode_returns, ks_2samp, welch_z
from asyncdqn.envs.vector import ENVPOOL_IDS, make_stepper

ap = argparse.ArgumentParser()
ap.add_argument("--episodes", type=int, default=300)
ap.add_argument("--epsilon", type=float, default=0.0)
ap.add_argument("--envs", nargs="+", default=list(ENVPOOL_IDS))
ap.add_argument("--out", default=None)
a = ap.parse_args()
rows = []
for env_id in a.envs:
    res = {}
    for vector in ("gymnasium", "envpool"):
        t0 = time.perf_counter()
        st = make_stepper(vector, env_id, env_seeds(2026, 1, 8))
        r, l = episode_returns(st, HEURISTICS[env_id], a.episodes, a.epsilon, np.random.default_rng(5))
        st.close()
        res[vector] = (r, l)
        print(f"{env_id:15s} {vector:9s} return {r.mean():8.2f} ± {r.std(ddof=1):6.2f} (sem {r.std(ddof=1)/np.sqrt(len(r)):.2f})"
              f"  length {l.mean():7.1f}  [{time.perf_counter() - t0:.1f} s]", flush=True)
    (rg, lg), (re, le) = res["gymnasium"], res["envpool"]
    d, p = ks_2samp(rg, re)
    dl, pl = ks_2samp(lg, le)
    z = welch_z(rg, re)
    print(f"{env_id:15s} returns KS D={d:.3f} p={p:.3f}  Welch z={z:+.2f};  lengths KS D={dl:.3f} p={pl:.3f}", flush=True)
    rows.append({"env_id": env_id, "episodes": a.episodes, "epsilon": a.epsilon,
                 "gymnasium": {"mean": rg.mean(), "std": rg.std(ddof=1), "mean_length": lg.mean()},
                 "envpool": {"mean": re.mean(), "std": re.std(ddof=1), "mean_length": le.mean()},
                 "ks_returns": [d, p], "ks_lengths": [dl, pl], "welch_z": z})
if a.out:
    json.dump(rows, open(a.out, "w"), indent=1, default=float)
