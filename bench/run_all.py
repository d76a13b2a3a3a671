"""`make bench`: every benchmark in bench/, one after another, each printing its own table.

    python bench/run_all.py            # from the project root, with REDIS_URL (and DATABASE_URL) as for each script
    python bench/run_all.py --quick    # fewer repetitions and rounds: a smoke run, not figures to record

Each benchmark measures its own baseline in the same run; see the docstring of each script.
"""

import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent

FULL = [
    ("Every core: Runwatch's fits against GridSearchCV, n_jobs 1 and -1", ["parallel.py"]),
    ("Stop rules: fits and time saved against the full grid, and the best variant", ["stop_rules.py"]),
    ("ETA at 50% of a run whose models differ ~10x, old and new, and the Review estimate", ["eta.py"]),
    ("Reporting overhead, long fits", ["overhead.py"]),
    ("Reporting overhead, short fits", ["overhead.py", "--short-fit", "--reps", "15"]),
    ("Throughput, one run persisted and delivered live, vs MLflow",
     ["throughput.py", "--rounds", "3", "--events", "20000", "--kind", "log", "metrics"]),
    ("Pages at scale: a 100,000-line run page and a 10,000-run list", ["pages.py"]),
    ("Live latency, log lines",
     ["latency.py", "--watchers", "1", "100", "500", "--stream", "json", "fragments", "--no-db", "--rounds", "2",
      "--events", "60"]),
    ("Storing one event, piece by piece, back to back and at the latency rounds' pace", ["store_cost.py"]),
    ("Rendering one live batch's fragments, warm and after a quiet run's pause, vs 49d1237",
     ["render_cost.py", "--baseline-rev", "49d1237"]),
    ("Live latency, fold metrics and a mix",
     ["latency.py", "--watchers", "1", "100", "--stream", "json", "fragments", "--kind", "metrics", "mix",
      "--rounds", "2", "--events", "60"]),
    ("Runs list, 10,000 runs", ["list_page.py"]),
    ("Live rows: 100 list watchers beside 100 run-page watchers", ["list_watchers.py"]),
    # The baseline is the landed core whose figures issue 8 calls today's (cooperative p95 0.98 s, ...).
    ("Cancel latency and dead-worker detection, vs 94c1479", ["cancel.py", "--baseline-rev", "94c1479"]),
]
QUICK = {"overhead.py": ["--reps", "1"], "stop_rules.py": ["--quick"], "eta.py": ["--quick"], "parallel.py": ["--rounds", "1"], "store_cost.py": ["--samples", "20"],
         "render_cost.py": ["--repeats", "1", "--samples", "100", "--idle-samples", "10"],
         "latency.py": ["--rounds", "1", "--events", "40"],
         "throughput.py": ["--rounds", "1", "--warmup", "0", "--events", "5000", "--metric-events", "100"],
         "pages.py": ["--lines", "10000", "--runs", "1000", "--rounds", "2"],
         "list_page.py": ["--reps", "3"], "list_watchers.py": ["--rounds", "1", "--events", "40"],
         # The tests' short grace and lost-worker delay (tests.helpers.child_env), and no baseline tree.
         "cancel.py": ["--rounds", "1", "--coop", "2", "--kills", "1", "--no-baseline", "--grace", "2", "--worker-lost", "6",
                       "--heartbeat", "1"]}


def main():
    quick = "--quick" in sys.argv[1:]
    failed = []
    for title, argv in FULL:
        argv = argv + (QUICK[argv[0]] if quick else [])
        print(f"\n=== {title}: python bench/{' '.join(argv)}", flush=True)
        started = time.monotonic()
        code = subprocess.call([sys.executable, str(BENCH / argv[0]), *argv[1:]], cwd=BENCH.parent)
        print(f"=== {title}: {'exit code ' + str(code) if code else 'done'} in {time.monotonic() - started:.0f} s", flush=True)
        if code:
            failed.append(title)
    if failed:
        sys.exit(f"make bench: these benchmarks failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
