"""Issue 26, point 4: the memory limit counts the run's fit processes, and however the work horse ends (at a limit,
when its worker is gone, on a forced stop) none of them is left fitting, and loky's resource tracker deletes the
memmapped data before it exits."""

import copy
import glob
import os
import re
import signal
import subprocess
import sys
import tempfile

import psutil
import pytest
from rq.command import send_stop_job_command

from runs.worker import limits
from runs.control import launch_run
from runs.worker.scheduling import get_queue
from runs.worker.execution import remove_scratch
from runs.models import Run
from tests.helpers import start_worker, wait_for
from tests.runwork import ONE_LONG_FIT_SPEC, horse_of, is_running, wait_for_status

pytestmark = pytest.mark.system  # its tests start processes (tests/tiers.py)

# Two fits of minutes each, one per fit process: both are fitting for as long as a test needs.
TWO_LONG_FITS_SPEC = {**copy.deepcopy(ONE_LONG_FIT_SPEC), "n_jobs": 2}

# Small in the horse (12,000 x 60 floats, under 6 MB), large in each fit process: the polynomial features (1,891
# columns) and the model's copies of them took 944 MB in the two children, while the horse held 172 MB.
SWELLING_FITS_SPEC = {
    "dataset": {"kind": "synthetic", "generator": "classification", "n_samples": 12_000, "n_features": 60, "seed": 1},
    "task": "classification",
    "n_jobs": 2,
    "preprocessing": [{"name": "polynomial_features", "params": {"degree": 2}}],
    "models": [{"estimator": "RidgeClassifier", "params": {}}],
    "cv": {"kind": "stratified_kfold", "folds": 2, "shuffle": True, "seed": 1},
    "metric": "accuracy",
}
# Above what the horse and two idle fit processes hold (about 390 MB), far below what the fits take.
MEMORY_LIMIT_MB = 600


@pytest.fixture
def started(request, transactional_db):
    """Workers a test starts with `started(**env)`; all stopped at the end, and the scratch of their runs removed."""
    processes, jobs = [], []

    def start(**env):
        processes.append(start_worker(**env))
        return processes[-1]

    start.jobs = jobs
    yield start
    for process in processes:
        process.stop()
    for job_id in jobs:
        remove_scratch(job_id)  # a horse whose worker was killed leaves it, and no monitor ends its run here


def under(horse):
    """(fit processes, resource trackers) under the work horse, as pids."""
    fits, trackers = [], []
    for child in psutil.Process(horse).children(recursive=True):
        try:
            tracker = "resource_tracker" in " ".join(child.cmdline())
        except psutil.Error:
            continue
        (trackers if tracker else fits).append(child.pid)
    return fits, trackers


def fitting(worker, count=2):
    """The horse's pid and its fit processes' and trackers' once `count` fit processes are running."""

    def found():
        # The worker's child is asked for again each time: on a busy machine the first child seen can be a
        # short-lived helper process of the worker's own imports, gone before the horse forks its fits.
        try:
            horse = horse_of(worker)
            fits, trackers = under(horse)
        except psutil.NoSuchProcess:
            return None
        return (horse, fits, trackers) if len(fits) >= count and trackers else None

    return wait_for(found, timeout=60, message=f"{count} fit processes under the work horse")


def leftovers(horse):
    """What loky's resource tracker deletes for the horse: the memmapped data's folder and the semaphores."""
    places = {"/dev/shm", tempfile.gettempdir()}
    return [path for place in places for pattern in (f"joblib_memmapping_folder_{horse}_*", f"sem.loky-{horse}-*")
            for path in glob.glob(os.path.join(place, pattern))]


def assert_nothing_left(horse, fits, trackers):
    # The fit processes are killed before the horse exits; the trackers exit by themselves once it has, after
    # deleting what they track (a killed tracker would leave the memmapped data in /dev/shm).
    wait_for(lambda: not any(map(is_running, fits)), timeout=2, message=f"the fit processes {fits} to end")
    wait_for(lambda: not is_running(horse), timeout=10, message="the work horse to exit")
    wait_for(lambda: not any(map(is_running, trackers)), timeout=10, message=f"the trackers {trackers} to exit")
    wait_for(lambda: not leftovers(horse), timeout=5, message=f"the horse's memmapped data to go: {leftovers(horse)}")


def test_it_counts_the_memory_of_child_processes_but_not_shared_memmapped_data(tmp_path):
    meter = limits.RunMemory(refresh=0)
    before = meter.children_mb()
    mapped = tmp_path / "shared.bin"
    mapped.write_bytes(b"\1" * (150 << 20))
    # One child holds 200 MB of its own; it also maps and reads a 150 MB file, which is page cache, not its own.
    child = subprocess.Popen(
        [sys.executable, "-c", "import mmap, sys\n"
         f"held = b'\\1' * (200 << 20)\nf = open({str(mapped)!r}, 'rb')\n"
         "shared = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)\nsum(shared[::4096])\n"
         "print('ready', flush=True)\nsys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert child.stdout.readline() == b"ready\n"
        grown = meter.children_mb() - before
        assert 200 <= grown < 200 + 100  # its own 200 MB and an interpreter, not the 150 MB file
        assert meter.total_mb() >= limits.resident_mb() + 200
        assert "processes under it" in meter.describe()
    finally:
        child.kill()
        child.wait()
    assert meter.children_mb() < before + 5


def test_it_fails_a_run_whose_fit_processes_pass_the_memory_limit(started, owner):
    worker = started(RUNWATCH_RUN_MEMORY_LIMIT_MB=str(MEMORY_LIMIT_MB))
    run = launch_run(owner, spec=SWELLING_FITS_SPEC, name="Swelling fits")
    started.jobs.append(run.rq_job_id)
    horse, fits, trackers = fitting(worker)

    wait_for_status(run, Run.Status.FAILED, timeout=120)

    assert run.message == f"It used more than its memory limit of {MEMORY_LIMIT_MB} MB, counting its 2 fit processes"
    assert "or a lower n_jobs" in run.error_message
    # The horse itself stayed well under the limit: it was the children's memory that passed it.
    held = re.search(r"the work horse held (\d+) MB and the \d+ processes under it (\d+) MB", run.traceback)
    assert held, run.traceback
    assert int(held[1]) < MEMORY_LIMIT_MB / 2 and int(held[1]) + int(held[2]) > MEMORY_LIMIT_MB
    assert_nothing_left(horse, fits, trackers)
    assert worker.alive()


def test_it_leaves_no_fit_process_alive_when_the_watchdog_ends_a_run(started, owner):
    # A time limit well past the fit processes' start on a busy machine, far before their fits end.
    worker = started(RUNWATCH_RUN_TIME_LIMIT="10")
    run = launch_run(owner, spec=TWO_LONG_FITS_SPEC, name="Two long fits")
    started.jobs.append(run.rq_job_id)
    horse, fits, trackers = fitting(worker)

    wait_for_status(run, Run.Status.FAILED, timeout=60)

    assert run.message == "It reached its time limit of 10 s"
    assert_nothing_left(horse, fits, trackers)
    assert worker.alive()


def test_it_leaves_no_fit_process_alive_when_the_worker_is_gone(started, owner):
    worker = started()
    run = launch_run(owner, spec=TWO_LONG_FITS_SPEC, name="Two long fits")
    started.jobs.append(run.rq_job_id)
    horse, fits, trackers = fitting(worker)

    os.kill(worker.pid, signal.SIGKILL)  # the worker only: the horse leads a process group of its own

    # The heartbeat (every second in tests) sees the worker gone and ends the horse, its fit processes first.
    assert_nothing_left(horse, fits, trackers)


def test_it_spares_only_the_resource_tracker_when_rq_kills_the_horse(started, owner):
    worker = started()
    run = launch_run(owner, spec=TWO_LONG_FITS_SPEC, name="Two long fits")
    started.jobs.append(run.rq_job_id)
    horse, fits, trackers = fitting(worker)

    # What the monitor's forced stop sends (a parallel run stops between waits, so a cancel never needs it) and
    # what RQ does past the job's timeout: the worker kills the horse (RunwatchWorker.kill_horse).
    send_stop_job_command(get_queue().connection, run.rq_job_id)

    wait_for_status(run, Run.Status.STOPPED, timeout=30)
    assert "killed" in run.message
    assert_nothing_left(horse, fits, trackers)
    assert worker.alive()
