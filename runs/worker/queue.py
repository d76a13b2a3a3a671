"""Where a queued run stands: its place in the RQ queue, and what it is waiting for.

    queue_position(run)   1-based place among the jobs waiting in the queue, or None
    waiting_reason(run)   "No worker is running — …", "Waiting for a worker: 1 worker, busy with run #41", …,
                          or for a run not in the queue yet "Waiting for a free running slot: 2 of your 2 …"

Both read one Snapshot: a Lua script reads the queue and every registered worker's state in one Redis round
trip. Pass the request and the snapshot is taken once per request, however many runs a page or API list shows.
Redis being down is not an error here: the answers are then None.
"""

import logging
import os
import socket
from dataclasses import dataclass, field

from redis.exceptions import RedisError
from rq.worker_registration import WORKERS_BY_QUEUE_KEY

from . import scheduling
from .scheduling import get_queue
from ..models import Run

log = logging.getLogger(__name__)

NO_WORKER = "No worker is running — start the app with `make run`, or add a worker with `make worker`"

_SCRIPT = """
local workers = {}
for _, key in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local f = redis.call('HMGET', key, 'state', 'current_job', 'hostname', 'pid')
  if f[1] then
    table.insert(workers, {f[1], f[2] or '', f[3] or '', f[4] or ''})
  end
end
return {redis.call('LRANGE', KEYS[1], 0, -1), workers}
"""
_HOST = socket.gethostname()
_NOW = object()  # no snapshot passed: take one now


@dataclass
class Worker:
    state: str
    job_id: str


@dataclass
class Snapshot:
    job_ids: list
    workers: list
    _runs_by_job: dict = field(default=None, repr=False)
    slots: dict = field(default_factory=dict, repr=False)  # owner id -> slot reason, once per snapshot

    def position(self, job_id):
        try:
            return self.job_ids.index(job_id) + 1
        except ValueError:
            return None

    def busy_run_ids(self):
        """Ids of the runs the busy workers are executing (one database query, once)."""
        if self._runs_by_job is None:
            jobs = [w.job_id for w in self.workers if w.job_id]
            self._runs_by_job = dict(Run.objects.filter(rq_job_id__in=jobs).values_list("rq_job_id", "pk"))
        return sorted(self._runs_by_job[w.job_id] for w in self.workers if w.job_id in self._runs_by_job)


def _alive(hostname, pid):
    """A worker killed with -9 stays registered for minutes; on this host its pid tells the truth at once."""
    if hostname != _HOST or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def take_snapshot():
    queue = get_queue()
    connection = queue.connection
    try:
        job_ids, workers = connection.register_script(_SCRIPT)(keys=[queue.key, WORKERS_BY_QUEUE_KEY % queue.name])
    except RedisError:
        log.warning("Could not read the queue's state from Redis", exc_info=True)
        return None
    text = [[v.decode() if isinstance(v, bytes) else v for v in w] for w in workers]
    return Snapshot(
        job_ids=[j.decode() for j in job_ids],
        workers=[Worker(state, job) for state, job, host, pid in text if _alive(host, pid)],
    )


def snapshot(request=None):
    """The queue's state, taken once per request (or now, without one)."""
    if request is None:
        return take_snapshot()
    if not hasattr(request, "_runwatch_queue"):
        request._runwatch_queue = take_snapshot()
    return request._runwatch_queue


def queue_position(run, snap=_NOW):
    if run.status != Run.Status.QUEUED:
        return None
    snap = snapshot() if snap is _NOW else snap
    return snap.position(run.rq_job_id) if snap else None


def _runs(ids):
    names = [f"#{i}" for i in ids]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" and {names[-1]}"


def waiting_reason(run, snap=_NOW):
    """Why a queued run has not started yet, in words for its owner; None for any other run."""
    if run.status != Run.Status.QUEUED:
        return None
    snap = snapshot() if snap is _NOW else snap
    if run.waiting_for_slot:  # not in the queue at all yet; the database alone says why, Redis up or not
        return scheduling.slot_reason(run.owner_id, snap.slots if snap else None)
    if snap is None:
        return None
    if not snap.workers:
        return NO_WORKER
    if any(w.job_id == run.rq_job_id for w in snap.workers):
        return "A worker has taken it and is starting it"
    count = len(snap.workers)
    workers = f"{count} worker{'s' if count > 1 else ''}"
    position = snap.position(run.rq_job_id)
    ahead = position - 1 if position else 0
    behind = f"; {ahead} queued run{'s' if ahead > 1 else ''} ahead of it" if ahead else ""
    idle = sum(w.state != "busy" for w in snap.workers)
    if idle:
        return f"Waiting for a worker to pick it up: {workers}, {idle} idle{behind}"
    busy = snap.busy_run_ids()
    if not busy:
        return f"Waiting for a worker: {workers}, busy with other jobs{behind}"
    label = "run" if len(busy) == 1 else "runs"
    return f"Waiting for a worker: {workers}, busy with {label} {_runs(busy)}{behind}"
