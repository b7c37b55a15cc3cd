"""Where a run's start-up time goes, process vs ray backend: seconds from `backend.start()` to
Ray up (ray backend), the parameter server answering, and the first env step of every worker.

    .venv/bin/python benchmarks/records/ray-overhead-2026-12-01/startup.py [--env CartPole-v1] [--rounds 3]

Each round builds the trainer's shared state as `train` does, starts the backend, polls as the
trainer polls until every worker has counted steps, then stops it. The ray backend starts a
private Ray each round (as `train --backend ray` without --ray-address).
"""

from __future__ import annotations

import argparse
import os
import time


def one(env_id: str, backend_name: str) -> dict[str, float]:
    from asyncdqn.backends import make_backend
    from asyncdqn.backends.base import TRAINER_POLL_S
    from asyncdqn.backends.shared import build_shared
    from asyncdqn.config import resolve_config
    from asyncdqn.envs import inspect_env

    cfg = resolve_config({"env_id": env_id, "workers": 2, "max_steps": 10**12, "progress": False,
                          "backend": backend_name})
    t0 = time.perf_counter()
    spec = inspect_env(cfg.env_id, cfg.max_episode_steps, cfg.env_kwargs)
    shared = build_shared(cfg, spec)
    shared.target.sync_from(shared.model, 0)
    backend = make_backend(cfg, shared)
    marks: dict[str, float] = {"shared state built": time.perf_counter() - t0}
    if backend_name == "ray":
        init = type(backend)._init_ray

        def timed_init(self: object) -> None:
            init(self)  # type: ignore[arg-type]
            marks["ray.init returned"] = time.perf_counter() - t0
        type(backend)._init_ray = timed_init  # type: ignore[method-assign]
    backend.start()
    marks["backend.start returned (server answered)" if backend_name == "ray" else "backend.start returned"] = (
        time.perf_counter() - t0)
    try:
        while min(shared.counter.per_worker()) == 0:
            backend.poll(timeout=TRAINER_POLL_S)
            if shared.counter.value and "first step counted" not in marks:
                marks["first step counted"] = time.perf_counter() - t0
        marks.setdefault("first step counted", time.perf_counter() - t0)
        marks["every worker counted"] = time.perf_counter() - t0
    finally:
        backend.stop()
        if backend_name == "ray":
            type(backend)._init_ray = init  # type: ignore[method-assign]
    return marks


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--env", default="CartPole-v1")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    for r in range(args.rounds):
        for name in ("process", "ray"):
            marks = one(args.env, name)
            print(f"round {r} {name:7s} " + "; ".join(f"{k} {v:.2f} s" for k, v in marks.items()), flush=True)


if __name__ == "__main__":
    main()
