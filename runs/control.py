"""Launching, cancelling and re-running runs.

Every path (pages, API, admin actions, the CLI) calls these functions, so a run is launched and stopped
the same way whoever asks.
"""

import logging
import uuid

from django.db import transaction
from django.utils import timezone
from redis.exceptions import RedisError
from rq.command import send_stop_job_command
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus

from experiments.models import validate_spec_for
from engine.spec import total_fits

from . import events
from .worker import scheduling
from engine.steps import steps_for
from .models import Run, RunStep, append_event

log = logging.getLogger(__name__)


class CannotCancel(Exception):
    """Raised with a message a user can read, such as "This run already completed"."""


def launch_run(owner, *, experiment=None, spec=None, name=None, rerun_of=None, resumed_from=None, reused_fits=0):
    """Validate the spec, create the run and its steps, and enqueue its job once the transaction commits, if
    the owner has a free running slot; otherwise it waits, queued, for one (runs/worker/scheduling.py).

    Raises engine.spec.SpecError with field errors when the spec is not valid, and
    accounts.quotas.QuotaExceeded when the owner may queue no more runs. A resume (runs/resume.py) names the
    run it resumes and how many of its fits it reuses: those are not counted as work to do.
    """
    spec = validate_spec_for(owner, spec if spec is not None else experiment.spec)
    with transaction.atomic():
        scheduling.admit(owner)
        run = Run.objects.create(
            owner=owner,
            experiment=experiment,
            name=name or (experiment.name if experiment else "Ad-hoc run"),
            spec=spec,
            runner=spec["runner"],
            total_fits=total_fits(spec) - reused_fits,
            seed=spec["seed"],
            rq_job_id=uuid.uuid4().hex,
            rerun_of=rerun_of,
            resumed_from=resumed_from,
            reused_fits=reused_fits,
            message=scheduling.WAITING_MESSAGE,
            waiting_for_slot=True,
        )
        RunStep.objects.bulk_create(
            RunStep(run=run, name=name_, label=label, order=i) for i, (name_, label) in enumerate(steps_for(spec))
        )
        # Released (enqueued after commit) if a slot is free, or a fast worker could look for a run that does not
        # exist yet. If Redis is down at that moment the run stays queued without a job; the monitor fails it
        # after a while. Released before the QUEUED event, whose publish also waits for the commit: callbacks
        # run in order, so a runs list that renders the new row on that event finds the job in the queue (its
        # place). An older waiting run of the owner goes first: a user's runs start in the order launched.
        scheduling.release_waiting(owner.pk, quiet={run.pk})
        run.refresh_from_db(fields=["waiting_for_slot", "released_at", "message"])
        append_event(run, *events.status_event(Run.Status.QUEUED, None))
    return run


def rerun(run, owner=None):
    """Launch a new run with the same spec snapshot."""
    return launch_run(owner or run.owner, experiment=run.experiment, spec=run.spec, name=run.name, rerun_of=run)


def cancel_run(run, by=None):
    """Stop a run; the one function every caller uses. Returns the run, refreshed.

    `by` (a user, or a name such as "the command line") is written to the run's log with the time, so a
    stopped run's log says who stopped it and when.

    - Queued: it becomes Stopped at once and its RQ job leaves the queue, so it never starts. A worker that
      already dequeued it finds it Stopped and does nothing (Stopped -> Running is not a legal move).
      The status is read and changed under the run's row lock, the lock mark_running takes too: a worker
      that starts the run meanwhile either waits for the stop (and then refuses to start) or has started it
      first, and the run is then stopped as a running one. "Cancelled before it started" is always true.
    - Running: it becomes Cancelling at once. The engine stops after the current fit; if it has not within
      the grace period, the monitor kills the work horse (force_stop).
    - Cancelling or Stopped: nothing to do; a second cancel is harmless.
    - Completed or Failed: CannotCancel, with a message to show the user.
    """
    with transaction.atomic():
        status = Run.objects.select_for_update().filter(pk=run.pk).values_list("status", flat=True).get()
        if status in (Run.Status.QUEUED, Run.Status.RUNNING):
            who = getattr(by, "get_username", lambda: by)() or "someone"
            run.log("info", f"Stop requested by {who} at {timezone.now():%Y-%m-%d %H:%M:%S} UTC.")
        if status == Run.Status.QUEUED:
            run.mark_stopped("Cancelled before it started")
        elif status == Run.Status.RUNNING:
            run.mark_cancelling()
    if status == Run.Status.QUEUED:
        _remove_job(run.rq_job_id)
    run.refresh_from_db()
    if run.status in (Run.Status.CANCELLING, Run.Status.STOPPED):
        return run
    raise CannotCancel(f"This run already {run.get_status_display().lower()}; there is nothing to stop.")


def _remove_job(job_id):
    """Take a cancelled run's job out of the queue. Best effort: the run is already Stopped, so even a job
    left behind (Redis down) would be refused by the worker."""
    try:
        job = Job.fetch(job_id, connection=scheduling.get_queue().connection)
        if job.get_status(refresh=False) in (JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED):
            job.cancel()
    except (NoSuchJobError, InvalidJobOperation):
        pass
    except RedisError:
        log.warning("Could not remove job %s from the queue; the worker will refuse it", job_id, exc_info=True)


def force_stop(run):
    """Kill the work horse of a cancelling run that did not stop within the grace period.

    Sends RQ's stop-job command to the worker executing the job; the worker kills the horse and calls
    runs.jobs.job_stopped, which marks the run Stopped. Returns False when no worker is executing the job,
    so there is nothing to kill.
    """
    connection = scheduling.get_queue().connection
    try:
        job = Job.fetch(run.rq_job_id, connection=connection)
    except NoSuchJobError:
        return False
    if job.get_status(refresh=False) != JobStatus.STARTED or not job.worker_name:
        return False
    Run.objects.filter(pk=run.pk, status=Run.Status.CANCELLING).update(kill_sent_at=timezone.now())
    try:
        send_stop_job_command(connection, run.rq_job_id)
    except (NoSuchJobError, InvalidJobOperation):
        return False
    return True
