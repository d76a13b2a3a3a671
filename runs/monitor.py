"""The monitor: a loop of small steps that keep run statuses honest.

Each step returns how many runs it changed, so a test can call one step directly and check the database.
`python manage.py monitor` runs them every second beside the workers.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from .control import force_stop, get_queue
from .models import IllegalTransition, Run

log = logging.getLogger(__name__)


def _conf(key):
    return settings.RUNWATCH[key]


def _end(run, method, *args):
    try:
        getattr(run, method)(*args)
        return 1
    except IllegalTransition:
        return 0


def reap_lost_workers(now=None):
    """Fail running runs whose heartbeat stopped: the worker died without a chance to say so."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=_conf("WORKER_LOST_SECONDS"))
    changed = 0
    stale = Run.objects.filter(status__in=[Run.Status.RUNNING, Run.Status.CANCELLING]).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
    )
    for run in stale:
        silent = int((now - (run.heartbeat_at or run.started_at)).total_seconds())
        log.warning("Run %s: no heartbeat for %ss, marking it failed", run.pk, silent)
        if run.status == Run.Status.CANCELLING:
            changed += _end(run, "mark_stopped", f"Stopped: the worker was lost while stopping (silent {silent} s)")
        else:
            changed += _end(run, "mark_failed", f"Worker lost: no heartbeat for {silent} s.")
    return changed


def enforce_cancel_grace(now=None):
    """Kill the work horse of a run still cancelling after the grace period; end it if it cannot be killed."""
    now = now or timezone.now()
    grace = timedelta(seconds=_conf("CANCEL_GRACE_SECONDS"))
    changed = 0
    for run in Run.objects.filter(status=Run.Status.CANCELLING, cancel_requested_at__lt=now - grace):
        if run.kill_sent_at is None:
            log.info("Run %s did not stop within the grace period; killing its work horse", run.pk)
            if not force_stop(run):
                changed += _end(run, "mark_stopped", "Stopped: its job was no longer executing")
            else:
                changed += 1
        elif run.kill_sent_at < now - grace:
            # The kill was sent but the worker never confirmed it (it may be gone). Nothing is running for
            # this run any more that we could wait for.
            changed += _end(run, "mark_stopped", "Stopped: the work horse was killed")
    return changed


def reap_lost_queued(now=None):
    """Fail queued runs whose RQ job no longer exists or ended without ever starting the run."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=_conf("QUEUED_LOST_SECONDS"))
    connection = get_queue().connection
    changed = 0
    for run in Run.objects.filter(status=Run.Status.QUEUED, queued_at__lt=cutoff):
        try:
            status = Job.fetch(run.rq_job_id, connection=connection).get_status()
        except NoSuchJobError:
            status = None
        if status in (None, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED, JobStatus.FINISHED):
            reason = "its job disappeared from the queue" if status is None else f"its job ended ({status})"
            changed += _end(run, "mark_failed", f"Never started: {reason}. Re-run it to try again.")
    return changed


STEPS = (reap_lost_workers, enforce_cancel_grace, reap_lost_queued)


def tick():
    return sum(step() for step in STEPS)
