"""`make run`'s process tree (scripts/serve.sh: private Redis, then supervisord with config/supervisord.conf)
survives the death of any one process, and Ctrl-C still stops all of it, also in `make scale`'s layout (2 daphne
processes sharing the port, 3 workers).

These start the very script `make run` ends with, on its own Redis port and folders, and drive it through
the HTTP API as a user would; the test database is shared through DATABASE_URL.
"""

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
import redis
from django.conf import settings
from rest_framework.authtoken.models import Token
from rq.job import Job
from rq.worker import Worker

from runs.models import Run
from runs.worker.process import RunwatchWorker
from tests.conftest import IRIS_SPEC
from tests.helpers import ROOT, Process, free_port, wait_for
from tests.runwork import MANY_FITS_SPEC, wait_for_fitting, wait_for_status


def ppid_map():
    """{pid: parent pid} of every process on the machine, read from /proc."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                # The command name (field 2) may hold spaces; the fields after its closing ")" do not.
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    return parents


def descendants(pid):
    parents = ppid_map()
    found, todo = set(), [pid]
    while todo:
        current = todo.pop()
        children = [child for child, parent in parents.items() if parent == current]
        found.update(children)
        todo.extend(children)
    return found


def alive(pid):
    try:
        # A zombie is dead for our purpose; its parent (reaped with it) is gone or will reap it.
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class App:
    """scripts/serve.sh as `make run` runs it, plus handles on its Redis and its API."""

    def __init__(self, tmp_path, token, workers=1, daphnes=1):
        self.port, self.redis_port = free_port(), free_port()
        venv_bin = str(Path(sys.executable).parent)
        self.process = Process(
            ["bash", str(ROOT / "scripts" / "serve.sh")],
            "serve",
            PATH=f"{venv_bin}{os.pathsep}{os.environ['PATH']}",
            PORT=self.port,
            WORKERS=workers,
            DAPHNES=daphnes,
            REDIS_URL="",  # The private Redis, as on a fresh machine.
            RUNWATCH_REDIS_PORT=self.redis_port,
            RUNWATCH_REDIS_DIR=tmp_path / "redis",
            RUNWATCH_SUPERVISOR_DIR=tmp_path / "supervisor",
            # Its own state dir, so the port it records is not the developer's `make run`'s; the media shared.
            RUNWATCH_STATE_DIR=tmp_path / "state",
            MEDIA_ROOT=settings.MEDIA_ROOT,
        )
        self.state_dir = tmp_path / "state"
        self.url = f"http://127.0.0.1:{self.port}"
        self.redis = redis.Redis(port=self.redis_port)
        self.api = httpx.Client(base_url=self.url + "/api/v1", headers={"Authorization": f"Token {token}"}, timeout=30)
        wait_for(self.answers, timeout=90, message=f"daphne under supervisord on port {self.port}")
        wait_for(self.workers, timeout=90, message="a registered RQ worker")
        assert (self.state_dir / "redis-port").read_text() == f"{self.redis_port}\n"  # for `make worker`

    def answers(self):
        try:
            return httpx.get(self.url + "/login/", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def workers(self):
        """Live RQ workers: registered, and their process still exists (a killed one stays registered)."""
        try:
            return [w for w in Worker.all(connection=self.redis) if alive(w.pid)]
        except redis.ConnectionError:
            return []

    def launch(self, spec, name):
        answer = self.api.post("/runs/", json={"spec": spec, "name": name})
        assert answer.status_code == 201, answer.text
        return Run.objects.get(pk=answer.json()["id"])

    def worker_of(self, run):
        return Job.fetch(Run.objects.get(pk=run.pk).rq_job_id, connection=self.redis).worker_name

    def stop(self):
        self.api.close()
        self.process.stop(timeout=30)


@pytest.fixture
def app(transactional_db, owner, tmp_path):
    app = App(tmp_path, Token.objects.create(user=owner).key)
    yield app
    app.stop()


@pytest.mark.system
def test_it_replaces_a_killed_worker_and_fails_the_run_it_held(app):
    run = app.launch(MANY_FITS_SPEC, "Killed under it")
    wait_for_fitting(run, timeout=90)
    [worker] = app.workers()
    assert app.worker_of(run) == worker.name

    os.kill(worker.pid, signal.SIGKILL)

    # The monitor's reaper fails the run once its heartbeat stops (the orphaned work horse exits by itself).
    run = wait_for_status(run, Run.Status.FAILED, timeout=90)
    assert "Worker lost" in run.message or "Worker lost" in run.error_message
    assert app.answers()  # daphne never went down with the worker.
    [replacement] = wait_for(app.workers, timeout=90, message="a replacement worker")
    assert replacement.pid != worker.pid

    second = app.launch(IRIS_SPEC, "After the replacement")
    wait_for_status(second, Run.Status.COMPLETED, timeout=120)
    assert app.worker_of(second) == replacement.name


@pytest.mark.system
@pytest.mark.parametrize("which", ["-m daphne", "manage.py monitor", "redis-server"])
def test_it_restarts_daphne_the_monitor_and_redis(app, which):
    def pids():
        return {pid for pid in descendants(app.process.pid) if alive(pid) and which in cmdline(pid)}

    [victim] = wait_for(pids, timeout=30, message=f"the {which} process")
    os.kill(victim, signal.SIGKILL)

    wait_for(lambda: pids() - {victim}, timeout=90, message=f"a new {which} process")
    wait_for(app.answers, timeout=90, message="daphne to answer again")
    # The app works again end to end: the queue, a worker and the live path all reach Redis.
    run = app.launch(IRIS_SPEC, f"After a restart of {which}")
    wait_for_status(run, Run.Status.COMPLETED, timeout=120)


def cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@pytest.fixture
def scale_app(transactional_db, owner, tmp_path):
    """The layout of `make scale`: 2 daphne processes sharing the one port, 3 workers."""
    app = App(tmp_path, Token.objects.create(user=owner).key, workers=3, daphnes=2)
    yield app
    app.stop()


@pytest.mark.system
def test_it_serves_the_scale_layout_on_one_port_and_stops_everything_on_ctrl_c(scale_app):
    app = scale_app
    wait_for(lambda: len(app.workers()) == 3, timeout=90, message="three live workers")
    listening = f"Listening on TCP address 127.0.0.1:{app.port}"
    # At least twice: supervisord restarts a daphne that died while starting on a loaded machine, and the
    # restarted one says it again. That there are two, and only two, is checked on the process tree below.
    wait_for(lambda: app.process.log_text().count(listening) >= 2, timeout=90,
             message="both daphne processes listening on the one port")
    run = app.launch(MANY_FITS_SPEC, "Busy when Ctrl-C comes")
    wait_for_fitting(run, timeout=90)  # A work horse is busy too: it must go as well.
    tree = descendants(app.process.pid) | {app.process.pid}
    daphnes = [pid for pid in tree if alive(pid) and "-m daphne" in cmdline(pid)]
    assert len(daphnes) == 2
    # private Redis helper, redis-server, supervisord, 3 workers, a horse, the monitor, 2 daphnes
    assert len(tree) >= 10

    # A terminal's Ctrl-C goes to the whole foreground process group.
    os.killpg(app.process.pid, signal.SIGINT)

    wait_for(lambda: app.process.popen.poll() is not None, timeout=60, message="serve.sh to exit")
    wait_for(lambda: not any(alive(pid) for pid in tree), timeout=30, message="every process of the tree to end")
    with pytest.raises(redis.ConnectionError):
        app.redis.ping()  # The private Redis is stopped too.


@pytest.mark.system
def test_it_leaves_no_process_behind_when_supervisord_is_killed(app):
    """kill -9 of `make run`'s foreground group (serve.sh, the Redis helper, supervisord): the programs, each in a
    process group of its own, end too (scripts/with_parent.py) rather than hold the ports as orphans."""
    wait_for(lambda: len(app.workers()) == 1, timeout=90, message="a live worker")
    tree = descendants(app.process.pid) | {app.process.pid}
    programs = [pid for pid in tree if any(name in cmdline(pid) for name in ("rqworker", "monitor", "-m daphne",
                                                                             "redis-server"))]
    assert len(programs) >= 4

    os.killpg(app.process.pid, signal.SIGKILL)

    def left():
        return [f"{pid} {cmdline(pid)[:150]}" for pid in tree if alive(pid)]

    try:
        wait_for(lambda: not left(), timeout=60, message="every process of the tree to end")
    except AssertionError:
        raise AssertionError(f"still alive 60 s after supervisord was killed: {left()}") from None
    with pytest.raises(redis.ConnectionError):
        app.redis.ping()  # not left holding its port


# A parent for scripts/with_parent.py whose command line names what it stands for: `python -c PARENT <name> CMD...`.
PARENT = "import subprocess, sys; sys.exit(subprocess.call(sys.argv[2:]))"
PRINT_RAN = [sys.executable, "-c", "print('ran')"]


def start_under(name, command):
    return subprocess.run([sys.executable, "-c", PARENT, name, sys.executable, str(ROOT / "scripts" / "with_parent.py"),
                           *command], capture_output=True, text=True, timeout=60)


@pytest.mark.system
def test_it_runs_a_program_that_supervisord_starts():
    done = start_under("supervisord", PRINT_RAN)
    assert (done.returncode, done.stdout) == (0, "ran\n")


@pytest.mark.system
def test_it_does_not_start_a_program_whose_supervisord_died_first():
    """What a program finds when supervisord was killed after forking it and before its Python set the parent-death
    signal: another parent (init, or a subreaper). Nobody would stop it, so it does not start."""
    done = start_under("init", PRINT_RAN)
    assert (done.returncode, done.stdout) == (0, "")


def test_it_stops_a_worker_whose_pubsub_thread_waits_for_a_subscription(redis_client):
    """The worker's teardown ends although redis-py's pubsub thread sits in its wait for a subscription (up to RQ's
    60 s): how a worker outlived a killed supervisord (runs.worker.process.RunwatchWorker.unsubscribe)."""
    worker = RunwatchWorker(["default"], connection=redis.Redis.from_url(settings.REDIS_URL))
    worker.subscribe()
    assert worker.pubsub.subscribed
    worker.pubsub.unsubscribe()  # the thread reads the confirmation, then waits for a new subscription
    wait_for(lambda: not worker.pubsub.subscribed, timeout=30, message="the thread to read the confirmation")

    stopped = threading.Event()
    threading.Thread(target=lambda: (worker.unsubscribe(), stopped.set()), daemon=True).start()
    assert stopped.wait(20), "unsubscribe() waits for the pubsub thread's 60 s"
