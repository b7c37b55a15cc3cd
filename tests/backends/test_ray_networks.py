"""The ray backend for every network (no Ray needed): the trainer's state, the parameter server and a
node group agree on one flat float32 vector for the MLP, the MinAtar and the Atari conv nets (with
--layer-norm too) and for a network with layers the backend has never heard of; a group's workers
get the engine a local run's would (compiled, numpy conv, torch); a network with buffers is refused."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from asyncdqn.algo.bf16 import from_bf16
from asyncdqn.algo.optim import flat_of
from asyncdqn.backends.ray_group import GroupLink, build_group_state, network_template
from asyncdqn.backends.ray_server import ParameterServer, ServerInit, flatten
from asyncdqn.backends.shared import share_training
from asyncdqn.config import Config, resolve_config
from asyncdqn.errors import ConfigError
from asyncdqn.learners.engines import JitLayerNormMLPEngine, JitMLPEngine, NumpyConvEngine, TorchEngine, make_engine
from asyncdqn.model import build_network

# (network, --layer-norm, observation shape, actions, the engine a local run's workers use, parameters by hand)
NETWORKS = [
    # 4*128+128 + 128*128+128 + 128*2+2
    ("mlp", False, (4,), 2, JitMLPEngine, 640 + 16_512 + 258),
    # and a gain and a shift per hidden unit
    ("mlp", True, (4,), 2, JitLayerNormMLPEngine, 640 + 16_512 + 258 + 2 * (128 + 128)),
    # conv 16x4x3x3+16; 16*8*8=1024 -> 128: 1024*128+128; 128*6+6
    ("minatar", False, (4, 10, 10), 6, NumpyConvEngine, 592 + 131_200 + 774),
    # and LayerNorm over the conv output (16x8x8) and the 128 hidden units
    ("minatar", True, (4, 10, 10), 6, NumpyConvEngine, 592 + 131_200 + 774 + 2 * (1024 + 128)),
    # conv 16x4x8x8+16 (84->20); 32x16x4x4+32 (20->9); 32*9*9=2592 -> 256; 256*6+6
    ("atari", False, (4, 84, 84), 6, TorchEngine, 4_112 + 8_224 + 663_808 + 1_542),
]


def _cfg(**kw: Any) -> Config:
    return resolve_config({"env_id": "CartPole-v1", "backend": "ray", "workers": 2, "progress": False,
                           "target_update_steps": 100, **kw})


def _second_bias_moved(shared: Any, hello: dict[str, Any], target_update_steps: int,
                       size: int) -> tuple[GroupLink, dict[str, Any], np.ndarray]:
    """A group's workers move the second layer's bias by 0.5 over 10 steps: the group's link, its next
    exchange message, and the flat delta it must carry (0.5 in that slot of the vector, 0 elsewhere)."""
    group = list(shared.model.parameters())
    link = GroupLink(shared, range(0, 1), hello, target_update_steps)
    with torch.no_grad():
        group[1] += 0.5
    shared.counter.add(0, 10)
    at = group[0].numel()
    expected = np.zeros(size, np.float32)
    expected[at:at + group[1].numel()] = 0.5
    return link, link.message([], [], final=False), expected


def _server(cfg: Config, model: nn.Module, groups: int) -> ParameterServer:
    """A server holding the state the driver would start it from (RayBackend.start)."""
    s = share_training(cfg, model)
    params = [p.detach().numpy() for p in s.model.parameters()]
    init = ServerInit(weights=flatten(params), target=flatten(params), target_syncs=1, last_sync_step=0,
                      optim={k: v.numpy() for k, v in s.optimizer.state_tensors().items()}, total=0,
                      per_worker=[0, 0])
    return ParameterServer(cfg, init, groups)


@pytest.mark.parametrize(("kind", "layer_norm", "shape", "actions", "engine", "size"), NETWORKS,
                         ids=[n[0] + ("-layer-norm" if n[1] else "") for n in NETWORKS])
def test_every_network_travels_as_one_flat_float32_vector(kind: str, layer_norm: bool, shape: tuple[int, ...],
                                                          actions: int, engine: type, size: int) -> None:
    cfg = _cfg(layer_norm=layer_norm)
    driver = build_network(kind, shape, actions, (128, 128), seed=3, layer_norm=layer_norm)
    server = _server(cfg, driver, groups=2)
    assert server.master.dtype == np.float32 and server.master.shape == (size,)
    hello = server.hello(0, 0, 0, 1)
    template = network_template(driver)
    # shapes without values: small enough for Ray to pass inline (its limit: 100 KiB), whatever the net
    assert len(pickle.dumps(template)) < 16_384
    shared = build_group_state(cfg, template, hello)
    group = list(shared.model.parameters())
    assert type(shared.model) is type(driver)
    for g, d in zip(group, driver.parameters(), strict=True):  # the driver's weights, layer by layer
        np.testing.assert_array_equal(g.detach().numpy(), d.detach().numpy())
    flat = flat_of(group)  # one shared buffer, as in a local run: the optimizer's one-pass update
    assert flat is not None and flat.size == size
    assert isinstance(make_engine(shared.model, jit=True), engine)  # the engine a local run's workers get
    # the workers move the second layer's bias by 0.5: the delta is exactly that, in that slot of the vector
    link, msg, expected = _second_bias_moved(shared, hello, cfg.target_update_steps, size)
    delta = msg["delta"]
    assert isinstance(delta, np.ndarray) and delta.dtype == np.float32 and delta.shape == (size,)
    np.testing.assert_allclose(delta, expected, atol=1e-6)
    w0 = server.master.copy()
    reply = server.exchange(0, 0, msg)
    np.testing.assert_allclose(server.master, w0 + expected, atol=1e-6)
    assert server.total == 10
    # a plain exchange (no target, no moments) moves 4 bytes per parameter each way
    stats = server.stats()
    assert stats["bytes_in"] == stats["bytes_out"] == 4 * size
    # another group's delta arrives at the server; applying the reply brings it into this group
    other = np.zeros(size, np.float32)
    other[-1] = -2.0
    server.master += other
    reply["weights"] = server.master.copy()
    link.apply(reply)
    np.testing.assert_allclose(flatten([p.detach().numpy() for p in group]), server.master, atol=1e-6)


class LayerNormQ(nn.Module):
    """A network with layers the ray backend has no code for (LayerNorm's gain and bias)."""

    def __init__(self) -> None:
        super().__init__()
        self.q = nn.Sequential(nn.Linear(4, 16), nn.LayerNorm(16), nn.ReLU(), nn.Linear(16, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.q(x)
        return out


def test_new_layers_need_no_ray_change() -> None:
    cfg = _cfg()
    torch.manual_seed(0)
    driver = LayerNormQ()
    with torch.no_grad():
        driver.q[1].weight.uniform_(0.5, 1.5)  # not LayerNorm's initial ones: the values must really travel
    server = _server(cfg, driver, groups=1)
    assert server.master.size == 4 * 16 + 16 + 16 + 16 + 16 * 2 + 2
    shared = build_group_state(cfg, network_template(driver), server.hello(0, 0, 0, 2))
    x = torch.randn(5, 4)
    with torch.no_grad():
        torch.testing.assert_close(shared.model(x), driver(x))
        torch.testing.assert_close(shared.target.model(x), driver(x))


def test_a_network_with_buffers_is_refused() -> None:
    """Buffers (batch norm's running statistics) change without being parameters: no exchange carries them."""
    net = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))
    with pytest.raises(ConfigError, match="parameters only.*running_mean.*--backend process"):
        network_template(net)


def test_a_group_refuses_a_master_of_another_network() -> None:
    cfg = _cfg()
    server = _server(cfg, build_network("mlp", (4,), 2, (8,), seed=0), groups=1)
    with pytest.raises(Exception, match="the network has 2362 parameters, the server's master 58"):
        build_group_state(cfg, network_template(build_network("mlp", (4,), 2, (16, 120), seed=0)),
                          server.hello(0, 0, 0, 2))


@pytest.mark.parametrize(("kind", "layer_norm", "shape", "actions", "engine", "size"),
                         [n for n in NETWORKS if n[0] in ("mlp", "minatar") and not n[1]], ids=["mlp", "minatar"])
def test_every_network_travels_as_bf16_with_ray_compress(kind: str, layer_norm: bool, shape: tuple[int, ...],
                                                         actions: int, engine: type, size: int) -> None:
    """--ray-compress bf16: the hello is the float32 master; then a delta up and the master's difference from
    what the group holds down travel as one uint16 vector each, 2 bytes a parameter, and what one rounding
    leaves out arrives with the next exchange."""
    cfg = _cfg(ray_compress="bf16")
    driver = build_network(kind, shape, actions, (128, 128), seed=3)
    server = _server(cfg, driver, groups=2)
    hello = server.hello(0, 0, 0, 1)
    assert hello["compress"] == "bf16" and hello["weights"].dtype == np.float32  # the first weights: exact
    shared = build_group_state(cfg, network_template(driver), hello)
    group = list(shared.model.parameters())
    for g, d in zip(group, driver.parameters(), strict=True):
        np.testing.assert_array_equal(g.detach().numpy(), d.detach().numpy())
    link, msg, expected = _second_bias_moved(shared, hello, cfg.target_update_steps, size)
    up = msg["delta_bf16"]
    assert "delta" not in msg and up.dtype == np.uint16 and up.shape == (size,)
    np.testing.assert_array_equal(from_bf16(up), expected)  # 0.5 (and 0) are bf16 values: exact
    w0 = server.master.copy()
    reply = server.exchange(0, 0, msg)
    np.testing.assert_allclose(server.master, w0 + expected, atol=1e-6)
    assert "weights" not in reply and reply["update_bf16"].dtype == np.uint16
    # a plain exchange (no target, no moments) moves 2 bytes per parameter each way
    stats = server.stats()
    assert stats["bytes_in"] == stats["bytes_out"] == 2 * size
    link.apply(reply)

    def weights() -> np.ndarray:
        return flatten([p.detach().numpy() for p in group])

    np.testing.assert_allclose(weights(), server.master, atol=1e-6)
    # other groups' deltas reach the master: -2.0 is a bf16 value, 1e-3 is not (1.024 * 2^-10: the nearest is
    # 131/128 * 2^-10 = 9.9945068e-4)
    other = np.zeros(size, np.float32)
    other[-1], other[0] = -2.0, 1e-3
    server.master += other
    link.apply(server.exchange(0, 0, link.message([], [], final=False)))
    off = weights() - server.master
    assert abs(off[0] - (9.9945068e-4 - 1e-3)) < 1e-7  # one rounding off the master, by that rounding
    np.testing.assert_allclose(off[1:], 0.0, atol=1e-6)
    link.apply(server.exchange(0, 0, link.message([], [], final=False)))  # the next exchange brings the rest
    np.testing.assert_allclose(weights(), server.master, atol=1e-6)
    assert abs(weights()[0] - server.master[0]) < 1e-7
