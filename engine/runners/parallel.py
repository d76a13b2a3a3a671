"""Fits of one run spread over processes: joblib with loky on this machine.

The parent (the RQ work horse) splits the folds once, hands each (branch, variant, fold) to a child as a task,
and takes the results as each finishes (`return_as="generator_unordered"`). The children only fit and score:
they return plain dicts, and the reporter in the parent stays the only writer. joblib memmaps the large arrays
of X and y once per run (the same array is dumped once, however many tasks name it), so the data crosses to
the children once, not once per fit.

What runs where: each child says when it starts a task, and on which process and host, through a queue of a
multiprocessing Manager (a picklable proxy; loky cannot inherit a plain pipe). Tasks are handed out one at a
time and only as many as there are children (`pre_dispatch="n_jobs"`, `batch_size=1`), so a task that has
started is on a child, not waiting in a queue, and the parent's account of what is in flight is exact.

Stopping: the parent waits for results with a short timeout and asks the reporter between waits, so a stop is
seen within a fraction of a second even while every child is inside a long fit; it then kills the children.
"""

import multiprocessing
import os
import queue
import socket
import threading
import time
import warnings

import joblib
import psutil
from threadpoolctl import threadpool_limits

from .. import diagnostics, pipeline
from .costs import effective_jobs, usable_cores  # noqa: F401 (their home is light: the web side reads them)
from ..errors import Cancelled

WAIT_SECONDS = 0.2  # how often the parent looks at the stop flag while every child is busy


def fit_task(template, X, y, train, test, task, look, threads):
    """In a child: fit a fresh copy of the pipeline on the training rows and score it on the test rows, and
    make the fold's out-of-fold diagnostics there too (engine.diagnostics; `look` holds the fold's sample
    seed and the feature names), so the work horse only stores them.

    Native thread pools (BLAS, OpenMP) are capped so that children x threads stays within the cores the work
    horse may use: without it each child's HistGradientBoosting or BLAS call would start a thread per core."""
    with threadpool_limits(limits=threads), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = pipeline.fresh(template)
        started = time.perf_counter()
        model.fit(pipeline.take(X, train), y[train])
        fit_time = time.perf_counter() - started
        X_test = pipeline.take(X, test)
        scores = pipeline.score(model, X_test, y[test], task)
        diagnosed = diagnostics.fold(model, X_test, y[test], task, **look)
        seconds = time.perf_counter() - started  # the diagnostics too: the ETA counts what a fit costs
    return {
        "scores": scores,
        "diagnostics": diagnosed,
        "fit_time": fit_time,
        "seconds": seconds,
        "warnings": [f"{w.category.__name__}: {str(w.message).splitlines()[0]}" for w in caught],
        "worker": worker_name(),
    }


def worker_name():
    """Where a fit runs, as a page shows it: the host and the process."""
    return f"{socket.gethostname()} pid {os.getpid()}"


def run_tasks(tasks, n_jobs, should_stop, skip=None):
    """Yields ("started", key, worker, running) as a child takes a task and ("finished", key, result, running)
    as it ends, in whatever order that happens; a task's "started" always comes before its "finished".
    `running` maps the key of every task in flight after this event to its worker.

    `tasks` is a list of (key, template, X, y, train, test, task, look) (fit_task's arguments). Raises Cancelled when `should_stop()` says
    so (after killing the children), FitFailed with the task's key when a fit raises, and ChildDied with the
    keys that were in flight when a child died. `skip(key)`, asked as each task is about to be handed to a
    child: True leaves it out (a stop rule pruned its variant meanwhile); it then never starts. A task that
    has started cannot be taken back from its child without ending every child, so it finishes and the
    caller discards its result."""
    jobs = effective_jobs(n_jobs, len(tasks))
    threads = max(usable_cores() // jobs, 1)
    # fork: the server is up in milliseconds (a spawned one imports this program again: 0.5 s).
    manager = multiprocessing.get_context("fork").Manager()
    _MANAGERS.add(manager._process.pid)
    starts = manager.Queue()
    # A generator joblib pulls from only as a child frees up (pre_dispatch="n_jobs"), so `skip` is asked late.
    calls = (joblib.delayed(_keyed)(t[0], starts, fit_task, *t[1:], threads) for t in tasks
             if skip is None or not skip(t[0]))
    results = queue.SimpleQueue()
    flight = InFlight()

    def consume():
        # The generator blocks until a result is ready; it runs in this thread so that the parent's own thread
        # stays free to look at the stop flag, and to be the only one that talks to the reporter.
        try:
            with joblib.parallel_config(backend="loky", n_jobs=jobs):
                for item in joblib.Parallel(return_as="generator_unordered", pre_dispatch="n_jobs",
                                            batch_size=1)(calls):
                    results.put(("result", item))
        except BaseException as e:  # noqa: BLE001 - handed to the parent, which decides
            results.put(("error", e))
        results.put(("done", None))

    def started():
        # A child puts its start before it fits, so every start of a finished task is here by now.
        while True:
            try:
                key, worker = starts.get_nowait()
            except (queue.Empty, OSError, EOFError):
                return
            yield "started", key, worker, flight.start(key, worker)

    thread = threading.Thread(target=consume, name="runwatch-fits", daemon=True)
    thread.start()
    try:
        while True:
            try:
                kind, item = results.get(timeout=WAIT_SECONDS)
            except queue.Empty:
                yield from started()
                if should_stop():
                    raise Cancelled() from None
                continue
            yield from started()
            if kind == "done":
                break
            if kind == "error":
                raise _failure(item, flight.running) from item
            key, result = item
            yield "finished", key, result, flight.finish(key)
            if should_stop():
                raise Cancelled()
    finally:
        if thread.is_alive():
            kill_children()
            thread.join(timeout=5)
        manager.shutdown()
        _MANAGERS.discard(manager._process.pid)


class InFlight:
    """The parent's account of the tasks in flight, for either backend: key -> worker, and worker -> the key it
    runs. A worker (a loky child, a Dask worker thread) runs one task at a time, so its next start means its
    last task is done even when that result is not here yet: what is in flight never counts more tasks than
    there are workers."""

    def __init__(self):
        self.running, self.slots = {}, {}

    def start(self, key, worker):
        self.running.pop(self.slots.get(worker), None)
        self.slots[worker], self.running[key] = key, worker
        return dict(self.running)

    def finish(self, key):
        worker = self.running.pop(key, None)
        if worker is not None and self.slots.get(worker) == key:
            del self.slots[worker]
        return dict(self.running)


def _keyed(key, starts, function, *args):
    starts.put((key, worker_name()))
    try:
        return key, function(*args)
    except Exception as e:
        raise FitFailed(key, e) from e


class FitFailed(Exception):
    def __init__(self, key, error):
        super().__init__(f"{type(error).__name__}: {error}")
        self.key = key


class ChildDied(Exception):
    """A child process died (out of memory, a crash in native code) while `keys` were in flight; one of them
    was on it (loky ends the other children at once, so which one cannot be told from the processes). The run fails rather than retrying: a fit that took its process down once would most likely do
    it again, and the user must change the spec (fewer jobs, less data) anyway."""

    def __init__(self, keys, detail):
        super().__init__(detail)
        self.keys = keys


def _failure(error, running):
    if isinstance(error, FitFailed):
        return error
    detail = str(error).splitlines()[0] if str(error) else type(error).__name__
    return ChildDied(sorted(running), detail)


_MANAGERS = set()  # pids of the start queues' Manager servers, which run_tasks shuts down in order


def fit_processes(managers=False):
    """This process's children that fit models: every child but loky's resource tracker, which holds no
    work and must live on to delete the memmapped data (killed, it is relaunched and the files leak), and,
    unless `managers`, the start queue's Manager (run_tasks shuts it down; a horse that exits kills it)."""
    return [child for child in psutil.Process().children(recursive=True)
            if (managers or child.pid not in _MANAGERS) and not is_resource_tracker(child)]


def is_resource_tracker(process):
    try:
        return "resource_tracker" in " ".join(process.cmdline())
    except psutil.Error:
        return False


def kill_children(managers=False):
    """Ends every fitting child at once. loky sees its workers die and fails what was pending, so the
    generator in the consuming thread ends with that error; the next run starts fresh workers. `managers`:
    the start queue's Manager too, for a process about to exit (a Manager outlives its parent)."""
    children = fit_processes(managers)
    for child in children:
        try:
            child.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(children, timeout=2)
