"""How long a web process takes to start: django.setup(), then the URLconf and config/asgi.py, as daphne loads
them, in fresh processes; and which of scikit-learn, pandas, numpy and scipy each start imported.

    python bench/setup_time.py                           # this tree, 7 processes
    python bench/setup_time.py --runs 7 --baseline-rev f21f0da   # and a revision, the two taking turns

DEBUG=1 (as `make run`), DATABASE_URL and REDIS_URL as for the tests; nothing connects to them. The baseline is
a `git archive` of the revision in a temporary directory, run with the same Python.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("sklearn", "pandas", "numpy", "scipy")
PROBE = f"""
import json, sys, time
t0 = time.perf_counter()
import django
django.setup()
t1 = time.perf_counter()
from django.urls import get_resolver
get_resolver().url_patterns
import config.asgi
t2 = time.perf_counter()
print(json.dumps({{"setup": t1 - t0, "all": t2 - t0, "modules": len(sys.modules),
                  "heavy": sorted({{m.split(".")[0] for m in sys.modules}} & set({HEAVY!r}))}}))
"""


def probe(tree):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "1"}
    # cwd and `-c`: the tree's own packages come first on sys.path (not an installed copy of the engine).
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=tree, env=env, capture_output=True, text=True,
                            check=True)
    return json.loads(result.stdout.splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--baseline-rev", help="a git revision to measure in the same rounds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"this tree": ROOT}
        if args.baseline_rev:
            archive = subprocess.run(["git", "archive", args.baseline_rev], cwd=ROOT, capture_output=True, check=True)
            subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
            trees[args.baseline_rev] = Path(tmp)
        samples = {name: [] for name in trees}
        for _ in range(args.runs):
            for name, tree in trees.items():  # taking turns, so a change in the machine's load hits both
                samples[name].append(probe(tree))
    print(f"load average {os.getloadavg()[0]:.2f}; {args.runs} processes per tree, taking turns")
    print(f"{'tree':<12} {'setup median (min-max)':<26} {'+ urls + asgi':<14} {'modules':<8} heavy")
    for name, runs in samples.items():
        setup = [r["setup"] for r in runs]
        print(f"{name:<12} {statistics.median(setup):.2f} s ({min(setup):.2f}-{max(setup):.2f}){'':<8} "
              f"{statistics.median(r['all'] for r in runs):.2f} s{'':<7} {runs[0]['modules']:<8} "
              f"{', '.join(runs[0]['heavy']) or 'none'}")


if __name__ == "__main__":
    main()
