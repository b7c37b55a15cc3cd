"""What a user sees when a node dies and when the head dies: a 2-node cluster on this machine
(ray.cluster_utils.Cluster, one CPU each, the head with the driver), `asyncdqn train` on
MinAtar/Breakout-v1 joining it with 2 workers (one node group per node); after 20 s the
worker node (`node`) or the head node (`head`) is removed (its raylet and every process on it killed).
Prints the run's exit code, the time it took to exit after the removal and its stderr.

    PYTHONPATH=src OMP_NUM_THREADS=1 nice -n 5 python benchmarks/records/ray-pixels-2026-12-07/node_death.py node
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ray.cluster_utils import Cluster


def main(which: str) -> None:
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    worker = c.add_node(num_cpus=1)
    c.wait_for_nodes()
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "asyncdqn.cli", "train", "--env", "MinAtar/Breakout-v1", "--backend", "ray",
               "--ray-address", c.address, "--workers", "2", "--max-steps", "100000000", "--max-seconds", "240",
               "--checkpoint-every", "50000", "--no-progress", "--run-dir", str(Path(tmp) / "run")]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ)
        time.sleep(20)
        t0 = time.monotonic()
        if which == "node":
            c.remove_node(worker)
        else:
            c.remove_node(c.head_node)
        try:
            out, err = proc.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            print("(killed after 300 s: still running)")
        print(f"exit code {proc.returncode}, {time.monotonic() - t0:.0f} s after the removal")
        print("stdout:", out[-2000:])
        print("stderr:", "\n".join(line for line in err.splitlines() if "WARNING" not in line)[-3000:])
        ckpts = sorted(p.name for p in (Path(tmp) / "run" / "checkpoints").glob("*.safetensors"))
        print("checkpoints:", ckpts)
    try:
        c.shutdown()
    except Exception as exc:  # the head is gone
        print("cluster shutdown:", type(exc).__name__)


if __name__ == "__main__":
    main(sys.argv[1])
