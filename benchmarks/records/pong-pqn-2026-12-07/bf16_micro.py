"""--precision bf16 against fp32, per call: the Nature net with LayerNorm (Pong's preset net), one
thread, 5 interleaved rounds, medians. An update is the forward, TD loss and backward on 128 rows
(one minibatch of the preset); acting is the no-grad forward on 8 rows (a worker's envs).

    python benchmarks/records/pong-pqn-2026-12-07/bf16_micro.py   # alone on the cores

Output on the 2-core AMD EPYC VM (2026-12-07, 21:49 UTC, alone): bf16_micro.log."""
import time, torch, numpy as np
from asyncdqn.model import build_network
torch.set_num_threads(1)
net = build_network("nature", (4, 84, 84), 6, (), 0, layer_norm=True)
x128 = torch.from_numpy(np.random.default_rng(0).integers(0, 255, (128, 4, 84, 84), dtype=np.uint8))
x8 = x128[:8]
a = torch.randint(0, 6, (128, 1)); y = torch.randn(128)
def train_step(bf16):
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        q = net(x128).gather(1, a).squeeze(1)
    loss = torch.nn.functional.smooth_l1_loss(q.float(), y)
    net.zero_grad(); loss.backward()
def act(bf16):
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        net(x8)
def t(fn, n):
    t0 = time.perf_counter()
    for _ in range(n): fn()
    return (time.perf_counter() - t0) / n
for bf16 in (False, True):
    train_step(bf16); act(bf16)
res = {False: [], True: []}; resa = {False: [], True: []}
for r in range(5):
    for bf16 in (False, True):
        res[bf16].append(t(lambda: train_step(bf16), 5)); resa[bf16].append(t(lambda: act(bf16), 20))
for bf16 in (False, True):
    print("bf16" if bf16 else "fp32", "train128 ms %.1f" % (1e3 * np.median(res[bf16])), "act8 ms %.2f" % (1e3 * np.median(resa[bf16])))
