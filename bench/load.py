"""Load, the long variant of tests/test_load.py: the same scenario (concurrent runs on as many RQ workers, WebSocket
watchers spread over 2 daphne processes, every stream checked to be exactly seq 1..N), for more rounds, with the
figures of each round printed: seconds, connections, frames delivered, slowest handshake, and the resident memory
(MB) of each daphne process and each worker after the round.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/rw REDIS_URL=redis://127.0.0.1:6379/10 python bench/load.py
    python bench/load.py --rounds 10 --runs 10 --watchers 500

It runs the test through pytest (which makes and drops its test database) with RUNWATCH_LOAD_ROUNDS, _RUNS and
_WATCHERS set; a broken promise (a refused connection, a lost or repeated event, memory growing by more than half,
a Redis subscription left behind) fails it. Not part of `make bench` (bench/run_all.py): it takes minutes.
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--runs", type=int, default=10, help="concurrent runs per round (and RQ workers)")
    parser.add_argument("--watchers", type=int, default=300, help="WebSocket watchers per round")
    args = parser.parse_args()
    env = dict(os.environ, DEBUG=os.environ.get("DEBUG", "1"), RUNWATCH_LOAD_ROUNDS=str(args.rounds),
               RUNWATCH_LOAD_RUNS=str(args.runs), RUNWATCH_LOAD_WATCHERS=str(args.watchers))
    command = [sys.executable, "-m", "pytest", "tests/test_load.py", "-q", "-s", "-p", "no:cacheprovider",
               "-W", "ignore"]
    return subprocess.call(command, cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main())
