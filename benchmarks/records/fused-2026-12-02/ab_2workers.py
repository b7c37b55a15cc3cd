import subprocess, sys, statistics, os
HERE = os.path.dirname(os.path.abspath(__file__))
# "new": this commit; "old": a clone of the repository at 0c09064 with its own venv
NEW, OLD = "/work/main/.venv/bin/python", "/work/ci-clone/.venv/bin/python"
def run(py, what, vec, secs):
    out = subprocess.run([py, os.path.join(HERE, "m2.py"), what, vec, str(secs)], capture_output=True, text=True,
                         env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd="/tmp").stdout
    return float([l for l in out.splitlines() if l.startswith("RESULT")][0].split()[1])
rounds, secs, vecs = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3].split(",")
res = {}
for r in range(rounds):
    for vec in vecs:
        order = [("new", NEW), ("old", OLD)] if r % 2 == 0 else [("old", OLD), ("new", NEW)]
        c = run(NEW, "ceiling", vec, secs)
        line = f"round {r} {vec:9s} ceiling {c:8,.0f}"
        for name, py in order:
            t = run(py, "trainer", vec, secs)
            res.setdefault((vec, name), []).append(t / c)
            line += f" | {name} {t:8,.0f} {t/c:.1%}"
        print(line, flush=True)
for k, v in sorted(res.items()):
    print(k, f"median {statistics.median(v):.1%} min {min(v):.1%} max {max(v):.1%}")
