"""Shared test helpers: waiting on conditions, starting real worker, monitor and daphne processes."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def wait_for(condition, timeout=30.0, interval=0.05, message="condition"):
    """Poll `condition` until it returns something truthy; fail with `message` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def test_database_url():
    """A URL for the database the tests are using, so child processes open the same one."""
    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{s['NAME']}"
    auth = s["USER"] or ""
    if s.get("PASSWORD"):
        auth += f":{s['PASSWORD']}"
    return f"postgres://{auth}@{s['HOST'] or 'localhost'}:{s['PORT'] or 5432}/{s['NAME']}"


def child_env(**extra):
    env = dict(os.environ)
    # The browser tests allow sync ORM calls beside Playwright's loop in the test process only; the
    # worker and daphne processes keep Django's safety check.
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    # Under pytest-xdist the child gets this worker's Redis database and media folder as plain settings
    # (config/settings.py derives them from PYTEST_XDIST_WORKER), so a REDIS_URL a test hands a child
    # (a private Redis of its own) means what it says instead of being shifted once more.
    env.pop("PYTEST_XDIST_WORKER", None)
    from django.conf import settings

    env.update(REDIS_URL=settings.REDIS_URL, MEDIA_ROOT=str(settings.MEDIA_ROOT))
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="1",
        DATABASE_URL=test_database_url(),
        PYTHONUNBUFFERED="1",
        RUNWATCH_WORKER_LOST=env.get("RUNWATCH_WORKER_LOST", "6"),
        RUNWATCH_CANCEL_GRACE=env.get("RUNWATCH_CANCEL_GRACE", "2"),
        RUNWATCH_QUEUED_LOST=env.get("RUNWATCH_QUEUED_LOST", "3"),
        RUNWATCH_HEARTBEAT=env.get("RUNWATCH_HEARTBEAT", "1"),
        # Workers fit one model at a time unless a test's spec asks for n_jobs: most tests follow one fit
        # at a time, and the 2-core machine runs the test process beside them.
        RUNWATCH_N_JOBS=env.get("RUNWATCH_N_JOBS", "1"),
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process:
    """A child process in its own process group, so a test can kill it and everything it forked."""

    def __init__(self, args, log_name, **env):
        log_dir = ROOT / ".runwatch" / "test-logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{log_name}-{os.getpid()}-{time.time_ns()}.log"
        self._log = open(self.log_path, "wb")
        self.popen = subprocess.Popen(
            args, cwd=ROOT, env=child_env(**env), stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def pid(self):
        return self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def log_text(self):
        return self.log_path.read_text(errors="replace")

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.alive():
            try:
                os.killpg(self.popen.pid, sig)
                self.popen.wait(timeout=timeout)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        if self.alive():
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.popen.wait(timeout=timeout)
        self._log.close()


def manage(*args):
    return [sys.executable, str(ROOT / "manage.py"), *args]


def start_worker(name=None, **env):
    args = manage("rqworker", "default", "--worker-class", "runs.worker.process.RunwatchWorker")
    if name:
        args += ["--name", name]
    return Process(args, "worker", **env)


def start_monitor(**env):
    return Process(manage("monitor", "--interval", "0.5"), "monitor", **env)


def session_key_for(user):
    """Log `user` in the way Django's login() does; returns the key a session cookie carries."""
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

    store = import_module(settings.SESSION_ENGINE).SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.save()
    return store.session_key


def serve_daphne(ready_path="/login/", **env):
    """Start daphne on a free port and wait until it answers; the process gets a `.url`."""
    import httpx

    port = free_port()
    process = start_daphne(port, **env)
    process.url = f"http://127.0.0.1:{port}"

    def up():
        try:
            return httpx.get(process.url + ready_path, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        # Generous: daphne imports all of Django and scikit-learn's catalog, slow on a busy machine.
        wait_for(up, timeout=90, message=f"daphne on port {port}")
    except AssertionError:
        process.stop()  # never leave a daphne holding the test database behind
        raise
    return process


def start_daphne(port, **env):
    return Process(
        # As config/supervisord.conf runs it (the handshake limit is explained there).
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "--websocket_connect_timeout", "20",
         "config.asgi:application"],
        "daphne",
        **env,
    )


class DroppingPublisher:
    """Stands in for a channel layer that lost the messages: the events are stored, never delivered.
    Install it with runs.events.use_publisher; watchers must then find the events in the database."""

    def send(self, run_id, messages, owner_id=None):
        pass

    def flush(self, timeout=5.0):
        return True


def reporter_for(run):
    """The engine's reporter for `run`, writing at once in the test's own transaction: tests store log lines,
    fold scores and progress exactly as a real run does, not with writes of their own."""
    from runs.reporter import DbReporter

    return DbReporter(run, progress_interval=0, background=False)
