"""Ray backend: parameter-server math, learning CartPole-v1, surviving a killed
actor-learner, and stopping cleanly (final checkpoint kept) when the server is lost.

One local Ray for the whole module: 2 CPUs, no dashboard, bound to loopback.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from asyncdqn import train
from asyncdqn.backends.ray import ParameterServer, RayBackend, _arrays
from asyncdqn.backends.shared import build_shared
from asyncdqn.config import Config, resolve_config
from asyncdqn.envs import inspect_env
from asyncdqn.errors import TrainingError
from asyncdqn.model import build_model
from asyncdqn.rundir.checkpoint import load_checkpoint

ray = pytest.importorskip("ray")


@contextlib.contextmanager
def socket_closed_port() -> Any:
    """A loopback port nothing listens on (bound then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    yield port


@pytest.fixture(scope="module")
def local_ray() -> Any:
    owns = not ray.is_initialized()
    if owns:
        ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
                 log_to_driver=False, logging_level="WARNING")
    yield ray
    if owns:
        ray.shutdown()


def _cfg(**kw: Any) -> Config:
    base: dict[str, Any] = {"env_id": "CartPole-v1", "backend": "ray", "workers": 2, "progress": False,
                            "max_seconds": None, "solve_score": None, "eval_every_steps": None,
                            "eval_episodes": 3}
    base.update(kw)
    return resolve_config(base)


# ------------------------------------------------------------- server math (no Ray)
def _server(cfg: Config) -> tuple[ParameterServer, torch.nn.Module]:
    model = build_model(4, 2, cfg.hidden_sizes, seed=3)
    shared = build_shared(cfg, inspect_env(cfg.env_id))
    init = {"model": _arrays(model), "target": _arrays(model),
            "optim": {k: v.numpy() for k, v in shared.optimizer.state_tensors().items()},
            "total": 0, "per_worker": [0, 0]}
    return ParameterServer(cfg, 4, 2, init), model


def test_pushed_gradients_are_applied_like_torch_adam() -> None:
    cfg = _cfg(max_steps=1000, lr=1e-2, target_update_steps=30)
    server, model = _server(cfg)
    reference = copy.deepcopy(model)
    adam = torch.optim.Adam(reference.parameters(), lr=1e-2, eps=cfg.adam_eps)
    rng = np.random.default_rng(0)
    for i in range(3):
        grads = [rng.standard_normal(p.shape).astype(np.float32) for p in model.parameters()]
        reply = server.push(i % 2, grads, based_on=0, steps=20, episodes=[], lr=None)
        for p, g in zip(reference.parameters(), grads, strict=True):
            p.grad = torch.from_numpy(g)
        adam.step()
        for got, want in zip(reply["weights"], reference.parameters(), strict=True):
            np.testing.assert_allclose(got, want.detach().numpy(), rtol=1e-5, atol=1e-6)
        assert reply["version"] == i + 1 and reply["t"] == i + 1 and reply["step"] == 20 * (i + 1)
    # every push claimed version 0: staleness 0, 1, 2
    stats = server.stats()
    assert stats["updates"] == 3 and stats["staleness_max"] == 2 and stats["staleness_mean"] == pytest.approx(1.0)
    # steps 20, 40, 60 cross 30 and 60: two target syncs, the target equals the online net now
    assert stats["target_syncs"] == 2 and reply["target_version"] == 2
    version, target = server.target_weights()
    assert version == 2
    for t, w in zip(target, reply["weights"], strict=True):
        np.testing.assert_array_equal(t, w)
    state = server.state()
    assert state["per_worker"] == [40, 20] and state["total"] == 60
    assert int(state["optim"]["step"][0]) == 3


def test_server_says_stop_at_the_step_budget_or_on_request() -> None:
    server, model = _server(_cfg(max_steps=50))
    zeros = [np.zeros(p.shape, np.float32) for p in model.parameters()]
    assert not server.push(0, zeros, 0, 40, [], None)["stop"]
    assert server.push(0, zeros, 1, 40, [], None)["stop"]  # 80 >= 50
    server2, _ = _server(_cfg(max_steps=10_000))
    server2.request_stop()
    assert server2.push(0, zeros, 0, 40, [], None)["stop"]


# --------------------------------------------------------------------- with Ray
@pytest.mark.slow
def test_ray_backend_learns_cartpole(local_ray: Any, tmp_path: Path) -> None:
    result = train({"env_id": "CartPole-v1", "backend": "ray", "workers": 2, "max_seconds": 120.0,
                    "eval_episodes": 20, "progress": False, "run_dir": str(tmp_path / "run")})
    assert result.solved, result.final_eval
    assert result.solve_eval is not None and result.solve_eval["mean"] >= 475.0
    report = json.loads((tmp_path / "run" / "eval.json").read_text())
    stats = report["backend_stats"]
    assert stats["updates"] > 1000 and stats["restarts"] == 0
    assert 0.0 <= stats["staleness_mean"] <= stats["staleness_max"]
    tensors, meta = load_checkpoint(tmp_path / "run" / "checkpoints" / "final.safetensors")
    assert meta["step"] == result.total_steps > 0
    assert int(tensors["optim.step"][0]) == stats["updates"]  # optimizer state came back from the server


def _poll_until(backend: RayBackend, predicate: Any, limit_s: float) -> None:
    end = time.monotonic() + limit_s
    while not predicate():
        assert time.monotonic() < end, "timed out"
        backend.poll(timeout=0.2)


def test_killed_actor_learner_is_restarted_and_training_continues(local_ray: Any) -> None:
    cfg = _cfg(max_steps=10**9, max_restarts=2)
    shared = build_shared(cfg, inspect_env(cfg.env_id))
    backend = RayBackend(cfg, shared)
    backend.start()
    try:
        c = shared.counter
        _poll_until(backend, lambda: min(c.per_worker()) >= 2000, 90)
        local_ray.kill(backend.actors[0], no_restart=False)  # Ray restarts it (max_restarts)
        killed_at, total_at = c.per_worker()[0], c.value
        # the restarted actor-learner trains again (the other one never stopped)
        _poll_until(backend, lambda: c.per_worker()[0] >= killed_at + 2000, 120)
        assert backend.restarts == [1, 0]
        assert backend.stats()["restarts"] == 1
        assert c.value >= total_at + 2000 and not backend.finished()
    finally:
        backend.stop()


def test_losing_the_parameter_server_stops_the_run_and_keeps_the_checkpoint(local_ray: Any,
                                                                          tmp_path: Path) -> None:
    before = set(local_ray.util.list_named_actors())

    def kill_server() -> None:
        end = time.monotonic() + 60
        while time.monotonic() < end:
            new = [n for n in local_ray.util.list_named_actors() if n not in before and n.startswith("asyncdqn-ps-")]
            if new:
                server = local_ray.get_actor(new[0])
                while local_ray.get(server.stats.remote())["updates"] < 300 and time.monotonic() < end:
                    time.sleep(0.2)  # let it train (and the driver pull) a little
                time.sleep(1.0)
                local_ray.kill(server)
                return
            time.sleep(0.1)

    killer = threading.Thread(target=kill_server, daemon=True)
    killer.start()
    run = tmp_path / "run"
    with pytest.raises(TrainingError, match="parameter server lost"):
        train(_cfg(max_steps=10**9, run_dir=str(run)))
    killer.join(timeout=5)
    tensors, meta = load_checkpoint(run / "checkpoints" / "final.safetensors")
    assert meta["step"] > 0  # the weights last pulled from the server, with their counters
    assert int(tensors["optim.step"][0]) > 0


def test_bench_throughput_measures_ray_beside_process(local_ray: Any) -> None:
    from asyncdqn.bench.throughput import format_table, run_throughput

    report = run_throughput("CartPole-v1", ("n-step-q",), 1, 0.5, log=lambda m: None, backends=("process", "ray"))
    rows = [(r["backend"], r["kind"]) for r in report["rows"]]
    assert rows == [("-", "ceiling"), ("process", "n-step-q"), ("ray", "n-step-q")]
    assert all(r["steps"] > 0 for r in report["rows"])
    assert " ray " in format_table(report)


def test_unreachable_ray_address_is_a_clear_error(tmp_path: Path) -> None:
    with socket_closed_port() as port:
        proc = subprocess.run(
            [sys.executable, "-m", "asyncdqn.cli", "train", "--env", "CartPole-v1", "--backend", "ray",
             "--ray-address", f"127.0.0.1:{port}", "--max-steps", "1000", "--no-progress",
             "--run-dir", str(tmp_path / "run")],
            capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert proc.returncode == 2, proc.stderr
    assert "asyncdqn: error: ray_address: cannot reach Ray at 127.0.0.1:" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_ray_package_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from asyncdqn.backends.ray import import_ray
    from asyncdqn.errors import ConfigError

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(ConfigError, match=r"asyncdqn\[ray\]"):
        import_ray()
