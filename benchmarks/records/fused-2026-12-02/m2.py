import sys, json
from asyncdqn.bench.throughput import measure_ceiling, measure_trainer
from asyncdqn.config import resolve_config
if __name__ == "__main__":
    what, vec, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
    cfg = resolve_config({"env_id": "LunarLander-v3", "workers": 2, "max_steps": 10**12, "progress": False, "vector": vec})
    m = measure_ceiling("LunarLander-v3", 2, 8, secs, vector=vec) if what == "ceiling" else measure_trainer(cfg, secs)
    print("RESULT", m.steps_per_second, flush=True)
