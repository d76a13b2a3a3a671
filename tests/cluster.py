"""A scale-out layout for the fault and load tests: several daphne processes and RQ workers and a monitor on the
test database and one Redis, watchers that follow a run's stream across them, and a private Redis server a
test may restart (never the machine's shared one)."""

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import redis
from rest_framework.authtoken.models import Token
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import connect

from runs.models import Run
from tests.helpers import ROOT, free_port, start_daphne, start_monitor, start_worker, wait_for


def token_for(user):
    return Token.objects.get_or_create(user=user)[0].key


def api(server, user):
    return httpx.Client(base_url=server.url + "/api/v1", headers={"Authorization": f"Token {token_for(user)}"},
                        timeout=30)


def launch(server, user, spec, name):
    """Launch through a daphne's API, as a script would; the test process itself needs no Redis."""
    with api(server, user) as client:
        answer = client.post("/runs/", json={"spec": spec, "name": name})
    assert answer.status_code == 201, answer.text
    return Run.objects.get(pk=answer.json()["id"])


def ws_url(server, run_id, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"{server.url.replace('http://', 'ws://')}/ws/runs/{run_id}/?{query}"


def run_field(run, field):
    return Run.objects.filter(pk=run.pk).values_list(field, flat=True).get()


class Cluster:
    """`daphnes` web processes, `workers` RQ workers (named w0, w1, ...) and one monitor, all on the same
    database and Redis; stop() ends every one of them."""

    def __init__(self, daphnes=2, workers=3, **env):
        self.processes = []
        try:
            # Started together, so their imports overlap; then each daphne is waited for (generously: ten
            # workers importing scikit-learn on two busy cores slow everyone's start).
            self.daphnes = [self._keep(start_daphne_on(free_port(), **env)) for _ in range(daphnes)]
            self.workers = {f"w{i}": self._keep(start_worker(name=f"w{i}-{os.getpid()}", **env)) for i in range(workers)}
            self.monitor = self._keep(start_monitor(**env))
            for daphne in self.daphnes:
                wait_until_serving(daphne)
        except BaseException:
            self.stop()
            raise

    def _keep(self, process):
        self.processes.append(process)
        return process

    def worker_running(self, run):
        """The worker process executing `run` (Run.worker_name is its RQ name)."""
        name = wait_for(lambda: run_field(run, "worker_name"), timeout=60, message=f"run {run.pk}'s worker")
        return next(p for key, p in self.workers.items() if name.startswith(f"{key}-"))

    def stop(self):
        for process in self.processes:  # all asked at once, so their shutdowns overlap
            if process.alive():
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for process in reversed(self.processes):
            process.stop()


class Watcher(threading.Thread):
    """Follows one run's JSON stream like a careful client: on any disconnect it reconnects to the next server
    in its list with ?after=<last seq it holds>. `seqs` is every seq received, in order; `end` the STREAM_END."""

    def __init__(self, servers, run_id, token, timeout=240):
        super().__init__(daemon=True)
        self.servers, self.run_id, self.token, self.timeout = list(servers), run_id, token, timeout
        self.seqs, self.types, self.end, self.connected_to, self.failures = [], [], None, [], []
        self.first_live = threading.Event()

    def run(self):
        deadline = time.monotonic() + self.timeout
        turn = 0
        while self.end is None and time.monotonic() < deadline:
            server = self.servers[turn % len(self.servers)]
            after = self.seqs[-1] if self.seqs else 0
            try:
                with connect(ws_url(server, self.run_id, token=self.token, after=after), open_timeout=10) as ws:
                    self.connected_to.append(server)
                    while True:
                        message = json.loads(ws.recv(timeout=60))
                        if message["type"] == "STREAM_END":
                            self.end = message
                            return
                        self.seqs.append(message["seq"])
                        self.types.append(message["type"])
                        if message["type"] == "FOLD_PROGRESS":
                            self.first_live.set()
            except (OSError, ConnectionClosed, InvalidHandshake, TimeoutError) as e:
                self.failures.append(f"{server.url}: {type(e).__name__}: {e}")
                turn += 1
                time.sleep(0.05)  # a dead server refuses at once; do not spin

    def result(self, timeout=240):
        self.join(timeout)
        assert not self.is_alive(), f"watcher of run {self.run_id} never got STREAM_END ({self.failures[-3:]})"
        assert self.end is not None, f"watcher of run {self.run_id} gave up: {self.failures[-3:]}"
        return self


def redis_server_binary():
    import importlib.util

    spec = importlib.util.spec_from_file_location("private_redis", ROOT / "scripts" / "private_redis.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.redis_binary()


class RedisServer:
    """A private redis-server on a free port, for tests that restart Redis: the machine's shared Redis is never
    touched. restart() stops it (saving its data first, as a service restart does) and starts it again on the
    same port and folder."""

    def __init__(self, folder):
        self.port = free_port()
        self.dir = Path(folder)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.client = redis.Redis(port=self.port, socket_timeout=5)
        self.process = None
        self.start()

    def start(self):
        args = [redis_server_binary(), "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.dir),
                "--save", "", "--appendonly", "no", "--logfile", str(self.dir / "redis.log")]
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True)
        wait_for(self.answers, timeout=15, message=f"redis-server on port {self.port}")

    def answers(self):
        try:
            return self.client.ping()
        except redis.RedisError:
            return False

    def stop(self, save=True):
        if self.process is None:
            return
        try:
            self.client.shutdown(save=save)
        except redis.RedisError:
            pass
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def restart(self):
        self.stop()
        self.start()


def rss_mb(pid):
    """Resident memory of a process, from /proc (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def start_daphne_on(port, **env):
    process = start_daphne(port, **env)
    process.url = f"http://127.0.0.1:{port}"
    return process


def wait_until_serving(server, timeout=120):
    def up():
        assert server.alive(), f"daphne exited: {server.log_text()[-2000:]}"
        try:
            return httpx.get(server.url + "/login/", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, timeout=timeout, message=f"daphne at {server.url}")
    return server


def restart_daphne(server, **env):
    """Stop a daphne (kill -9: it gets no chance to say goodbye) and start a new one on the same port."""
    server.stop(signal.SIGKILL)
    return wait_until_serving(start_daphne_on(int(server.url.rsplit(":", 1)[1]), **env))
