"""Fits of one run spread over a Dask cluster (dask.distributed), for when one machine is not enough.

The same generator contract as engine/runners/parallel.py `run_tasks`, plus one more kind of item: ("log", None,
message, running), something the run's log should say (a Dask worker was lost). cv uses this module when a
scheduler address is configured (RUNWATCH_DASK_SCHEDULER); the work horse stays the only writer, the Dask
workers only fit and score (parallel.fit_task) and return plain dicts.

- Data: X and y are scattered to the cluster once per run; every task names the same future, so a worker
  fetches them at most once (from the worker that has them) and no fit carries them.
- What runs where: a task, as it begins, logs a structured event (`Worker.log_event`) on a topic of this run,
  naming its Dask key and its worker and thread; the parent subscribes to that topic. It travels on the
  connections Dask already keeps (worker -> scheduler -> client, batched), one small message per fit, and it is
  exact: polling `client.processing()` would also count tasks a worker holds in its queue but has not begun.
- Stop: the parent waits for results with a short timeout and asks `should_stop()` between waits; on a stop it
  cancels the run's futures (the scheduler forgets them at once) and raises Cancelled. A fit already inside a
  worker's thread cannot be interrupted; Dask drops its result when it ends.
- A lost worker: Dask runs its tasks again on the others (its default, up to
  `distributed.scheduler.allowed-failures` times); the scheduler's "remove-worker" event becomes a line in the
  run's log. A fit that keeps killing its workers ends as KilledWorker, reported as parallel.ChildDied.
- An unreachable scheduler fails the run within CONNECT_SECONDS with a message that names the setting.
"""

import collections
import queue
import threading
import uuid

import distributed
from distributed import as_completed

from . import parallel
from ..errors import Cancelled, RunError

WAIT_SECONDS = parallel.WAIT_SECONDS
CONNECT_SECONDS = 10  # well within the 30 s a run may take to say that the scheduler cannot be reached


def connect(address):
    """A client of the scheduler at `address`, or RunError saying plainly that it could not be reached."""
    try:
        return distributed.Client(address, timeout=CONNECT_SECONDS, set_as_default=False)
    except (OSError, ValueError, TypeError) as e:  # refused, timed out (OSError), a malformed address
        detail = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise RunError(f"Could not reach the Dask scheduler at {address}: {detail}. Check RUNWATCH_DASK_SCHEDULER "
                       "(or start the scheduler).", "cross_validate") from e


def run_tasks(tasks, address, should_stop, n_jobs=-1, label="runwatch", skip=None):
    """Yields ("started", key, worker, running), ("finished", key, result, running) and ("log", None, message,
    running), as parallel.run_tasks does, with the fits on the Dask cluster at `address`. At most `n_jobs`
    fits are submitted at once (-1: all of them; the cluster's threads then decide how many run). `skip(key)`
    True (a stop rule pruned its variant): a task not yet submitted never is, and a submitted one is cancelled
    (the scheduler forgets it; one already in a worker's thread runs on, and its result is dropped)."""
    client = connect(address)
    token = uuid.uuid4().hex[:8]
    topic = f"{label}-{token}-starts"
    events = queue.SimpleQueue()  # filled on the client's event loop: starts, and workers leaving
    results = queue.SimpleQueue()  # filled by the thread that waits on the futures
    client.subscribe_topic(topic, lambda event: events.put(("start", event[1])))
    client.subscribe_topic("all", lambda event: _is_removal(event[1]) and events.put(("removed", event[1])))
    stopping = threading.Event()
    futures, thread = [], None
    try:
        shares = thread_shares(client)
        yield "log", None, {"level": "info", "message": (
            f"Connected to the Dask scheduler at {address}: {len(shares)} workers, {fits_at_once(client)} threads")}, {}
        scattered = _scatter(client, tasks)
        keys = {f"{label}-{token}-fit-{n}": task[0] for n, task in enumerate(tasks)}  # Dask key -> our key
        pending = collections.deque(zip(keys, tasks))

        skipped, cancelled = set(), set()  # never submitted (filled by the consuming thread); cancelled here
        skipping = threading.Lock()

        def submit():
            while pending:
                name, (key, template, X, y, train, test, task, look) = pending.popleft()
                if skip is not None and skip(key):
                    with skipping:
                        skipped.add(key)
                    continue
                future = client.submit(_fit, name, topic, shares, template, scattered[id(X)], scattered[id(y)],
                                       train, test, task, look, key=name, pure=False)
                futures.append(future)
                return future
            return None

        window = len(tasks) if n_jobs is None or n_jobs < 1 else min(n_jobs, len(tasks))
        first = [f for f in (submit() for _ in range(window)) if f is not None]

        def consume():
            # as_completed blocks; it runs in this thread so that the parent's own thread stays free to look at
            # the stop flag and to be the only one that talks to the reporter.
            try:
                done = as_completed(first, loop=client.loop, with_results=True, raise_errors=False)
                for future, result in done:
                    if stopping.is_set():
                        return
                    results.put((future, result))
                    following = submit()
                    if following is not None:
                        done.add(following)
            except BaseException as e:  # noqa: BLE001 - handed to the parent, which decides
                results.put((None, e))

        thread = threading.Thread(target=consume, name="runwatch-dask-fits", daemon=True)
        thread.start()
        flight, started, finished = parallel.InFlight(), set(), set()

        def news():
            while True:
                try:
                    kind, message = events.get_nowait()
                except queue.Empty:
                    return
                if kind == "start" and keys.get(message["key"]) not in finished | {None}:
                    key, worker = keys[message["key"]], message["worker"]
                    started.add(key)
                    yield "started", key, worker, flight.start(key, worker)
                elif kind == "removed":
                    yield from _removed(message, keys, scattered, flight)

        def cancel_skipped():
            for future in futures:
                key = keys[future.key]
                if key not in finished and key not in cancelled and skip(key):
                    cancelled.add(key)
                    flight.finish(key)
                    future.cancel()

        def unsettled():
            with skipping:
                return len(finished | skipped | cancelled) < len(tasks)

        while unsettled():
            try:
                future, result = results.get(timeout=WAIT_SECONDS)
            except queue.Empty:
                yield from news()
                if should_stop():
                    raise Cancelled() from None
                continue
            yield from news()
            if future is None:
                raise lost_scheduler(address, result) from result
            key = keys[future.key]
            if key in cancelled:
                continue  # pruned meanwhile: whatever it came to, it is not stored
            if future.status != "finished":
                raise _failure(key, future, result, address)
            if key not in started:  # its start event is late (or was lost): the result says where it ran
                yield "started", key, result["worker"], flight.start(key, result["worker"])
            finished.add(key)
            yield "finished", key, result, flight.finish(key)
            if skip is not None:
                cancel_skipped()
            if should_stop():
                raise Cancelled()
    finally:
        stopping.set()
        _close(client, futures, topic)
        if thread is not None:
            thread.join(timeout=5)


def fits_at_once(client):
    """How many fits the cluster runs at once: its workers' threads."""
    return sum(w["nthreads"] for w in client.scheduler_info(n_workers=-1)["workers"].values())


def thread_shares(client):
    """For each worker, the threads of every worker on its host: a task caps its native threads to the host's
    cores over that, so two 1-thread workers on a 2-core host use one core each, not two each."""
    workers = client.scheduler_info(n_workers=-1)["workers"]
    per_host = collections.Counter()
    for address, info in workers.items():
        per_host[info["host"]] += info["nthreads"]
    return {address: per_host[info["host"]] for address, info in workers.items()}


def _fit(name, topic, shares, template, X, y, train, test, task, look):
    """On a Dask worker: say where this fit runs, then fit and score it (parallel.fit_task)."""
    worker = distributed.get_worker()
    where = worker_name(worker)
    worker.log_event(topic, {"key": name, "worker": where})
    # A worker that joined after the run began is not in `shares`: it counts its own threads only.
    threads = max(parallel.usable_cores() // shares.get(worker.address, worker.state.nthreads), 1)
    result = parallel.fit_task(template, X, y, train, test, task, look, threads)
    result["worker"] = where
    return result


def worker_name(worker):
    """The worker's address, and the thread when the worker runs several tasks at once."""
    if worker.state.nthreads == 1:
        return worker.address
    return f"{worker.address} thread {threading.current_thread().name.rsplit('-', 1)[-1]}"


def _scatter(client, tasks):
    # The data once per run: every task of cv names the same X and y. hash=False: the run owns its copy, which
    # goes when its client closes, whatever another run holds.
    unique = {}
    for task in tasks:
        for data in task[2:4]:
            unique.setdefault(id(data), data)
    futures = client.scatter(list(unique.values()), broadcast=False, hash=False)
    return dict(zip(unique, futures))


def _is_removal(message):
    return isinstance(message, dict) and message.get("action") == "remove-worker"


def _removed(message, keys, scattered, flight):
    """The run's log line for a worker that left while it held fits of this run: Dask runs them again."""
    address = message.get("worker", "?")
    lost_data = {f.key for f in scattered.values()} & set(message.get("lost-scattered-tasks", []))
    if lost_data:
        raise RunError(f"The Dask worker {address} that held this run's data left before another worker had a "
                       "copy; run it again.", "cross_validate")
    ours = [keys[k] for k in message.get("processing-tasks", []) if k in keys]
    on_it = [key for key, worker in flight.running.items()
             if worker == address or worker.startswith(address + " ")]
    for key in on_it:
        flight.finish(key)
    if ours or on_it:
        yield "log", None, {"level": "warning", "message": (
            f"Dask worker {address} was lost while it had {len(set(ours) | set(on_it))} fit(s) of this run; Dask "
            "runs them again on the other workers.")}, dict(flight.running)


def _failure(key, future, error, address):
    if future.status == "error":
        error = error[1]  # as_completed(raise_errors=False) hands over the (type, value, traceback) of sys.exc_info()
    if future.status == "error" and isinstance(error, distributed.KilledWorker):
        return parallel.ChildDied([key], f"Dask gave up on the fit after it killed its workers: {error}")
    if future.status == "error":
        return parallel.FitFailed(key, error)
    if "scheduler-connection-lost" in str(error):  # the client cancels every future when the scheduler goes
        return lost_scheduler(address, "the connection to it broke")
    # Cancelled by no one here: the scheduler restarted, or the data it needed was lost.
    return RunError(f"The Dask cluster at {address} dropped a fit of this run ({future.status}: {error}); run it "
                    "again.", "cross_validate")


def lost_scheduler(address, detail):
    return RunError(f"Lost the Dask scheduler at {address} while the run was fitting ({detail}). Check that it is "
                    "up (RUNWATCH_DASK_SCHEDULER), then re-run.", "cross_validate")


def _close(client, futures, topic):
    # Cancel first, so that the scheduler forgets this run's tasks at once even when closing is slow.
    try:
        if futures:
            client.cancel(futures, force=True)
        client.unsubscribe_topic(topic)
        client.unsubscribe_topic("all")
    except Exception:  # noqa: BLE001 - the scheduler may be gone; closing the client releases the rest
        pass
    client.close(timeout=5)
