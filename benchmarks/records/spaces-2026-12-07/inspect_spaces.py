"""What asyncdqn makes of the observation spaces of Gymnasium's own environments that are not a
1-D Box: the raw space, the flat float32 Box every learner sees, and one observation of each.

    cd REPO && PYTHONPATH=src python benchmarks/records/spaces-2026-12-07/inspect_spaces.py \
        > benchmarks/records/spaces-2026-12-07/spaces.json
"""

from __future__ import annotations

import json

import numpy as np

from asyncdqn.envs import inspect_env, make_env, raw_observation_space
from asyncdqn.errors import EnvError

IDS = ("FrozenLake-v1", "FrozenLake8x8-v1", "Taxi-v4", "CliffWalking-v1", "Blackjack-v1", "Taxi-v3")


def main() -> None:
    out = []
    for env_id in IDS:
        try:
            spec = inspect_env(env_id)
        except EnvError as exc:
            out.append({"env_id": env_id, "refused": str(exc)})
            continue
        env = make_env(env_id)
        obs, _ = env.reset(seed=0)
        env.close()
        out.append({"env_id": env_id, "raw_space": str(raw_observation_space(env_id)), "flat_dim": spec.obs_dim,
                    "n_actions": spec.n_actions, "max_episode_steps": spec.max_episode_steps,
                    "first_obs_nonzero": np.flatnonzero(obs).tolist(), "dtype": str(obs.dtype)})
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
