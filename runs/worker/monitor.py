"""The monitor: a loop of small steps that keep run statuses honest.

Each step takes `now` (so a test controls time) and returns how many runs it changed, so a test can call
one step directly and check the database. `python manage.py monitor` runs them every second beside the
workers. Each step is one indexed query, plus one Redis round trip for queued runs: cheap enough to run
every second.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from rq.job import Job, JobStatus
from rq.utils import str_to_date

from . import scheduling
from ..control import force_stop
from .scheduling import get_queue
from ..models import IllegalTransition, Run

log = logging.getLogger(__name__)


def _seconds(key):
    return timedelta(seconds=settings.RUNWATCH[key])


def _end(run, method, *args):
    try:
        getattr(run, method)(*args)
        return 1
    except IllegalTransition:
        return 0  # It ended by itself meanwhile; a terminal status never changes.


def reap_lost_workers(now=None):
    """End running runs whose heartbeat stopped: their worker died without a chance to say so.

    A work horse whose worker is killed exits by itself (runs.worker.heartbeat), so nothing is left writing.
    """
    now = now or timezone.now()
    cutoff = now - _seconds("WORKER_LOST_SECONDS")
    changed = 0
    stale = Run.objects.filter(status__in=[Run.Status.RUNNING, Run.Status.CANCELLING]).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
    )
    for run in stale:
        silent = int((now - (run.heartbeat_at or run.started_at)).total_seconds())
        log.warning("Run %s: no heartbeat for %ss; its worker is lost", run.pk, silent)
        if run.status == Run.Status.CANCELLING:
            changed += _end(run, "mark_stopped", f"Stopped: the worker was lost while stopping (silent {silent} s).")
        else:
            message = f"Worker lost: no heartbeat for {silent} s. The worker process probably died; re-run it."
            changed += _end(run, "mark_failed", message)
    return changed


def enforce_cancel_grace(now=None):
    """Kill the work horse of a run still cancelling after the grace period.

    The worker confirms the kill through runs.jobs.job_stopped. If it does not within another grace period
    (the worker is gone, or the job was not executing at all), end the run here: nothing is left running.
    """
    now = now or timezone.now()
    grace = _seconds("CANCEL_GRACE_SECONDS")
    changed = 0
    for run in Run.objects.filter(status=Run.Status.CANCELLING, cancel_requested_at__lt=now - grace):
        if run.kill_sent_at is None:
            log.info("Run %s did not stop within the grace period; killing its work horse", run.pk)
            if force_stop(run):
                changed += 1
            else:
                changed += _end(run, "mark_stopped", "Stopped: its job was no longer executing.")
        elif run.kill_sent_at < now - grace:
            changed += _end(run, "mark_stopped", "Stopped: the work horse was killed.")
    return changed


def seconds_to_next_grace(now=None):
    """Seconds until the next cancelling run passes its grace period (or a killed one its second), or None.
    The monitor sleeps no longer than this, so a forced stop comes at the deadline, not up to a round later."""
    now = now or timezone.now()
    grace = _seconds("CANCEL_GRACE_SECONDS")
    deadlines = [(kill_sent_at or requested) + grace for requested, kill_sent_at in
                 Run.objects.filter(status=Run.Status.CANCELLING).values_list("cancel_requested_at", "kill_sent_at")
                 if requested is not None]
    return max(0.0, (min(deadlines) - now).total_seconds()) if deadlines else None


ENDED = {JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED, JobStatus.FINISHED}


def reap_lost_queued(now=None):
    """Fail queued runs that can no longer start: their RQ job is gone or ended, or a worker took the job
    and died before the run began. Without this a run would show Queued forever. A run waiting for a running
    slot has no job yet, by design (runs/worker/scheduling.py): only runs released to RQ are judged, from then on."""
    now = now or timezone.now()
    cutoff = now - _seconds("QUEUED_LOST_SECONDS")
    runs = list(Run.objects.annotate(in_queue_since=Coalesce("released_at", "queued_at"))
                .filter(status=Run.Status.QUEUED, waiting_for_slot=False, in_queue_since__lt=cutoff))
    if not runs:
        return 0
    connection = get_queue().connection
    with connection.pipeline(transaction=False) as pipe:
        for run in runs:
            pipe.hmget(Job.key_for(run.rq_job_id), "status", "started_at")
        found = pipe.execute()
    changed = 0
    for run, (status, started_at) in zip(runs, found):
        status = status.decode() if status else None
        if status is None:
            reason = "its job disappeared from the queue"
        elif status in ENDED:
            reason = f"its job ended ({status}) without running it"
        elif status == JobStatus.STARTED and _older(started_at, now - _seconds("WORKER_LOST_SECONDS")):
            reason = "the worker that took its job stopped before the run began"
        else:
            continue
        log.warning("Run %s: %s", run.pk, reason)
        changed += _end(run, "mark_failed", f"Never started: {reason}. Re-run it to try again.")
    return changed


def _older(rq_timestamp, cutoff):
    try:
        return str_to_date(rq_timestamp) < cutoff
    except ValueError:
        return False  # Not started yet (empty) or unreadable: do not decide on it.


def release_waiting(now=None):
    """Release waiting runs whose owner has a free slot. A run's end releases the next one itself; this catches
    the end whose process died before it could (or whose Redis was down), so no run waits for a slot forever."""
    return scheduling.release_all()


STEPS = (reap_lost_workers, enforce_cancel_grace, reap_lost_queued, release_waiting)


class MonitorError(Exception):
    """One or more steps failed this round; the others still ran."""


def tick(now=None):
    """Run every step once; returns the number of runs changed. A failing step does not stop the others, so a
    Redis outage does not stop the database-only steps; the failures are raised together at the end."""
    changed, failures = 0, []
    for step in STEPS:
        try:
            changed += step(now)
        except Exception as e:
            failures.append(f"{step.__name__}: {type(e).__name__}: {e}")
    if failures:
        raise MonitorError("; ".join(failures))
    return changed
