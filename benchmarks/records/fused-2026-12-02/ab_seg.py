import subprocess, sys, statistics, os
HERE = os.path.dirname(os.path.abspath(__file__))
# "new": this commit; "old": a clone of the repository at 0c09064 with its own venv
PY = {"new": "/work/main/.venv/bin/python", "old": "/work/ci-clone/.venv/bin/python"}
rounds, vec, n = int(sys.argv[1]), sys.argv[2], sys.argv[3]
res = {}
for r in range(rounds):
    for name in (("new", "old") if r % 2 == 0 else ("old", "new")):
        out = subprocess.run([PY[name], os.path.join(HERE, "seg.py"), vec, n], capture_output=True, text=True,
                             env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd="/tmp").stdout
        wall, cpu = map(float, [l for l in out.splitlines() if l.startswith("RESULT")][0].split()[1:])
        res.setdefault(name, []).append((wall, cpu))
        print(f"round {r} {name}: wall {wall:7.1f} us/segment, python thread CPU {cpu:7.1f}", flush=True)
for name, v in res.items():
    print(f"{name}: median wall {statistics.median(x[0] for x in v):.1f}, median python CPU {statistics.median(x[1] for x in v):.1f} us per segment")
