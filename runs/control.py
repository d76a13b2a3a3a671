"""Launching, cancelling and re-running runs.

Every path (pages, API, admin actions, the CLI) calls these functions, so a run is launched and stopped
the same way whoever asks.
"""

import uuid

import django_rq
from django.db import transaction
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job

from experiments.spec import total_fits, validate_spec

from . import events
from .engine.steps import steps_for
from .models import IllegalTransition, Run, RunStep


class CannotCancel(Exception):
    """Raised with a message a user can read, such as "This run already completed"."""


def get_queue():
    return django_rq.get_queue("default")


def launch_run(owner, *, experiment=None, spec=None, name=None, rerun_of=None):
    """Validate the spec, create the run and its steps, and enqueue its job once the transaction commits.

    Raises experiments.spec.SpecError with field errors when the spec is not valid.
    """
    spec = validate_spec(spec if spec is not None else experiment.spec, owner=owner)
    with transaction.atomic():
        run = Run.objects.create(
            owner=owner,
            experiment=experiment,
            name=name or (experiment.name if experiment else "Ad-hoc run"),
            spec=spec,
            runner=spec["runner"],
            total_fits=total_fits(spec),
            seed=spec["seed"],
            rq_job_id=uuid.uuid4().hex,
            rerun_of=rerun_of,
            message="Waiting for a worker",
        )
        RunStep.objects.bulk_create(
            RunStep(run=run, name=name_, label=label, order=i) for i, (name_, label) in enumerate(steps_for(spec))
        )
        events.append(run, events.JOB_STATUS, {"status": Run.Status.QUEUED, "previous": None})
        # Enqueue only after commit, or a fast worker could look for a run that does not exist yet.
        transaction.on_commit(lambda: enqueue(run))
    return run


def enqueue(run):
    from rq import Callback

    get_queue().enqueue(
        "runs.jobs.execute_run",
        run.pk,
        job_id=run.rq_job_id,
        job_timeout=-1,
        result_ttl=24 * 3600,
        failure_ttl=7 * 24 * 3600,
        on_stopped=Callback("runs.jobs.job_stopped"),
        description=f"Run {run.pk}: {run.name}",
    )


def rerun(run, owner=None):
    """Launch a new run with the same spec snapshot."""
    return launch_run(owner or run.owner, experiment=run.experiment, spec=run.spec, name=run.name, rerun_of=run)


def cancel_run(run):
    """Stop a run. Queued: it never starts. Running: it goes to Cancelling at once, and stops after the
    current fit (or is killed after the grace period). A second cancel is harmless. Returns the run."""
    for _ in range(3):
        run.refresh_from_db()
        try:
            if run.status == Run.Status.QUEUED:
                run.mark_stopped("Cancelled before it started")
                _remove_job(run.rq_job_id)
                return run
            if run.status == Run.Status.RUNNING:
                return run.mark_cancelling()
            if run.status == Run.Status.CANCELLING:
                return run
        except IllegalTransition:
            continue  # The worker moved it in the meantime (queued -> running); look again.
        raise CannotCancel(f"This run already {run.get_status_display().lower()}; there is nothing to stop.")
    raise CannotCancel("The run keeps changing state; try again.")


def _remove_job(job_id):
    connection = get_queue().connection
    try:
        job = Job.fetch(job_id, connection=connection)
    except NoSuchJobError:
        return
    try:
        job.cancel()
    except InvalidJobOperation:
        pass  # Already taken by a worker: its first move (queued -> running) is refused, so it does nothing.


def force_stop(run):
    """Kill the work horse of a cancelling run that did not stop within the grace period."""
    from django.utils import timezone
    from rq.command import send_stop_job_command

    Run.objects.filter(pk=run.pk).update(kill_sent_at=timezone.now())
    try:
        send_stop_job_command(get_queue().connection, run.rq_job_id)
        return True
    except (NoSuchJobError, InvalidJobOperation):
        return False
