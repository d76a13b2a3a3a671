"""Starting the servers a benchmark measures (daphne, the floor relay, MLflow) and waiting until they answer."""

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATE = ROOT / ".runwatch"


def start(argv, name, ready, env=None, timeout=120):
    """Start `argv` from the project root, its output in .runwatch/bench-<name>.log; return the process once
    `ready()` is true. Exits the benchmark when the process dies or is not ready after `timeout` seconds."""
    STATE.mkdir(exist_ok=True)
    with open(STATE / f"bench-{name}.log", "w") as log:  # the child keeps its own copy of the file
        process = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env or dict(os.environ))
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            sys.exit(f"{name} did not start; see .runwatch/bench-{name}.log")
        time.sleep(0.1)
    return process


def http_ok(url):
    import httpx

    try:
        return httpx.get(url, timeout=1).status_code < 500
    except httpx.HTTPError:
        return False


def daphne_ready(port):
    """daphne answers once it serves the app. The API's runs list (a 401 here) needs no static files: under
    DEBUG=0 (bench/deployed.py) a page such as /login/ needs collectstatic's manifest, which a benchmark lacks."""
    return http_ok(f"http://127.0.0.1:{port}/api/v1/runs/")


def port_open(port):
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0
