"""RQ entry points. Thin on purpose: load the run, hand it to the execution module."""

import logging

from .models import IllegalTransition, Run

log = logging.getLogger(__name__)


def execute_run(run_id):
    from .execution import execute

    run = Run.objects.filter(pk=run_id).first()
    if run is None:
        log.warning("Run %s no longer exists; nothing to do", run_id)
        return None
    return execute(run)


def job_stopped(job, connection, *args, **kwargs):
    """RQ calls this in the worker after it killed the work horse on a stop-job command (forced cancel)."""
    run = Run.objects.filter(rq_job_id=job.id).first()
    if run is None or run.is_terminal:
        return
    try:
        run.mark_stopped("Stopped: the current fit did not finish within the grace period, so it was killed")
    except IllegalTransition:
        pass  # Someone else ended it first; a terminal status never changes.
