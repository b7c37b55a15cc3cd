"""CPU time of one shared Adam step over the preset network's 18,180 flat float32 parameters: torch's fused
CPU kernel (what SharedAdam's flat path now calls) against the 13 numpy ufuncs it replaced.
Usage: OMP_NUM_THREADS=1 python adam_fused.py"""
import time

import numpy as np
import torch

torch.set_num_threads(1)
n = 18180
p, g = torch.randn(n), torch.randn(n) * 1e-2
m, v, step = torch.zeros(n), torch.zeros(n), torch.tensor(10.0)
P, G, M, V, buf = p.numpy(), g.numpy(), m.numpy(), v.numpy(), np.empty(n, np.float32)


def fused() -> None:
    torch._fused_adam_([p], [g], [m], [v], [], [step], lr=1e-3, beta1=0.9, beta2=0.999, weight_decay=0.0,
                       eps=1e-8, amsgrad=False, maximize=False)


def ufuncs() -> None:
    np.subtract(G, M, out=buf); np.multiply(buf, 0.1, out=buf); np.add(M, buf, out=M); np.multiply(V, 0.999, out=V)
    np.multiply(G, G, out=buf); np.multiply(buf, 0.001, out=buf); np.add(V, buf, out=V); np.sqrt(V, out=buf)
    np.divide(buf, 0.9, out=buf); np.add(buf, 1e-8, out=buf); np.divide(M, buf, out=buf)
    np.multiply(buf, -1e-3, out=buf); np.add(P, buf, out=P)


def cpu_us(f, n_calls: int = 5000) -> float:
    f()
    t = time.process_time()
    for _ in range(n_calls):
        f()
    return (time.process_time() - t) / n_calls * 1e6


for _ in range(3):
    print(f"fused {cpu_us(fused):.1f} us, numpy ufuncs {cpu_us(ufuncs):.1f} us")
