"""RQ entry points. Thin on purpose: load the run, hand it to the execution module."""

import logging
import traceback

from django.db import connections

from .worker.failures import public_text
from .worker.heartbeat import Heartbeat
from .models import IllegalTransition, Run

log = logging.getLogger(__name__)


def execute_run(run_id):
    run = Run.objects.filter(pk=run_id).first()
    if run is None:
        log.warning("Run %s no longer exists; nothing to do", run_id)
        return None
    if run.status != Run.Status.QUEUED:
        # Cancelled (or failed by the monitor) before a worker got to it: it must never start. The engine
        # checks again under the row lock when it marks the run running, which closes the remaining race.
        log.info("Run %s is %s; not starting it", run_id, run.status)
        return None
    from .worker.execution import execute

    try:
        # The heartbeat lives here, not in the engine: it is about the process staying alive, which the
        # monitor relies on whatever the engine does (runs.worker.monitor.reap_lost_workers).
        with Heartbeat(run.pk):
            return execute(run)
    except BaseException as e:
        _settle(run_id, public_text(f"The run crashed: {e!r}"), traceback.format_exc())
        raise
    finally:
        _settle(run_id, "The job ended without recording a final status.")


def _settle(run_id, message, tb=""):
    """Safety net: once the job is over nothing else will finish the run, so never leave it active."""
    try:
        run = Run.objects.get(pk=run_id)
        if run.status in (Run.Status.QUEUED, Run.Status.RUNNING):
            run.mark_failed(message, tb)
        elif run.status == Run.Status.CANCELLING:
            run.mark_stopped("Stopped")
    except IllegalTransition:
        pass
    except Exception:
        log.exception("Could not settle run %s", run_id)


def job_stopped(job, connection, *args, **kwargs):
    """RQ calls this in the worker after it killed the work horse on a stop-job command (forced cancel).

    It runs in the worker's main process, which must neither crash (RQ re-raises callback errors) nor keep
    a database connection open that the next forked work horse would share.
    """
    try:
        run = Run.objects.filter(rq_job_id=job.id).first()
        if run is None or run.is_terminal:
            return
        run.mark_stopped("Stopped: the current fit did not finish within the grace period, so it was killed")
    except IllegalTransition:
        pass  # Someone else ended it first; a terminal status never changes.
    except Exception:
        log.exception("Could not mark the run of job %s stopped; the monitor will", job.id)
    finally:
        connections.close_all()
