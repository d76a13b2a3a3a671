"""`make worker` finds the private Redis of `make run` on whatever port it was started: scripts/private_redis.py
(as scripts/serve.sh runs it) records the port in <state dir>/redis-port, and config/settings.py reads it when
neither REDIS_URL nor RUNWATCH_REDIS_PORT is set, so the variable need not be repeated."""

import sys

import pytest
import redis
from rq.worker import Worker

from tests.helpers import ROOT, Process, free_port, wait_for

# `make` must not reinstall the project into the shared virtual environment: these stamps count as up to date.
UP_TO_DATE = [arg for stamp in (".installed-base", ".installed-base-embedded") for arg in ("-o", f".venv/{stamp}")]


def without_redis_settings(**env):
    # Process starts from the test's environment (tests.helpers.child_env): empty values count as unset.
    return {"REDIS_URL": "", "RUNWATCH_REDIS_PORT": "", **env}


@pytest.mark.system  # runs make, which starts Redis and a worker
def test_it_runs_make_worker_on_the_redis_port_make_run_recorded(tmp_path):
    state, port = tmp_path / "state", free_port()
    # The private Redis as `make run` starts it, on a port that is not the default, holding the shell open.
    private = Process([sys.executable, str(ROOT / "scripts" / "private_redis.py"), "--port", str(port),
                       "--dir", str(tmp_path / "redis"), "--ephemeral", "--record-port", str(state / "redis-port"),
                       "--", sys.executable, "-c", "import time; time.sleep(300)"],
                      "private-redis", **without_redis_settings())
    worker = None
    try:
        recorded = wait_for(lambda: (state / "redis-port").is_file() and (state / "redis-port").read_text(),
                            timeout=30, message="the recorded port")
        assert recorded.strip() == str(port)
        server = redis.Redis(port=port)
        assert server.ping()

        worker = Process(["make", "--no-print-directory", *UP_TO_DATE, "worker"], "make-worker",
                         **without_redis_settings(RUNWATCH_STATE_DIR=state, MAKEFLAGS=""))
        on_it = wait_for(lambda: Worker.all(connection=server) or not worker.alive(), timeout=60,
                         message="make worker's RQ worker registered on the recorded port")
        assert worker.alive(), worker.log_text()
        # Nothing else knows this fresh port: the one worker on it is make worker's.
        assert len(on_it) == 1, worker.log_text()
    finally:
        if worker:
            worker.stop()
        private.stop()

