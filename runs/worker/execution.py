"""Executing one run in the work horse: connect the engine to the Run, and settle how the run ended.

runs.jobs.execute_run calls execute(run) (inside the run's Heartbeat). Every ending goes through a Run
state method, so the status and its event are written together:
- the engine finished: Completed, with its summary and final facts (model bundle, SHA-256, best score);
- it finished, but someone asked it to stop meanwhile: Stopped, results kept (Cancelling never completes);
- engine.Cancelled: Stopped, with what was done so far kept and marked partial;
- engine.RunError / DataError / LimitExceeded: Failed with a readable message (what failed, in which step, fold
  and variant, and what to do; runs.worker.failures) and the engine's reason as the run's short message;
- anything else: Failed the same way, with the exception's text (no server paths) as the reason;
- a limit the engine cannot stop at between fits: runs.worker.limits.Watchdog fails the run and ends the horse.
The traceback goes only to Run.traceback, for staff.
- events.RunClosed: someone else ended the run (a forced stop, the reaper): write nothing more.

Files go through the storage only (datasets.storage), so a worker needs no disk shared with the web
processes: the uploaded CSV and the bundle an evaluation loads are fetched into this work horse's own
temporary directory, the engine writes its bundle there too, and the bundle is uploaded before the run is
marked Completed (so `has_model` never names a file the web side cannot open). The temporary directory
(`runwatch-run-<run id>-<job id>-*` in TMPDIR) is removed when the run ends, however it ends; when the work
horse itself is killed (a forced stop, a memory limit), its worker removes it (remove_scratch,
runs.worker.process.RunwatchWorker.monitor_work_horse); when the worker was killed too, the next job any worker on that
machine finishes removes it (remove_ended_scratch).
"""

import contextlib
import logging
import os
import shutil
import tempfile
import traceback
from pathlib import Path

from django.conf import settings

from datasets import storage

import engine
from .. import events, history, resume
from . import failures, limits
from ..models import IllegalTransition, Run
from ..publisher import ThreadedPublisher
from ..reporter import DbReporter

log = logging.getLogger(__name__)

_publishers = {}


def publisher():
    """One long-lived publisher per process; a forked work horse makes its own (threads do not survive fork)."""
    pid = os.getpid()
    if pid not in _publishers:
        _publishers[pid] = ThreadedPublisher()
    return _publishers[pid]


def bundle_name(run, local_path):
    """Where a run's exported bundle is stored (a storage name, kept in Run.model_file)."""
    return f"models/run-{run.pk}/{Path(local_path).name}"


def execute(run):
    """Run the engine for a queued run and record how it ended. Returns the engine's outcome, or None."""
    try:
        run.mark_running(worker_name=_worker_name())
    except IllegalTransition:
        log.info("Run %s was cancelled while queued; not starting it", run.pk)
        return None
    previous = events.use_publisher(publisher())
    try:
        with limits.Watchdog(run.pk, limits.for_spec(run.spec)) as watchdog:
            return _execute(run, watchdog)
    finally:
        events.use_publisher(previous)
        if not publisher().flush(timeout=10):
            log.warning("Run %s: some events were not published in time; watchers read them back", run.pk)


def _eta_priors(run):
    """How long each estimator fitted in the owner's earlier runs on the same data, for the ETA (engine/runners/eta.py)."""
    if run.runner != "cv":
        return None
    return history.fit_seconds(run.owner_id, run.spec.get("dataset"), exclude=run.pk)


def _scratch_prefix(run):
    # The job's id as well as the run's: processes on other databases (a second checkout, the tests) share
    # the temporary directory, and their run ids repeat; job ids do not.
    return f"runwatch-run-{run.pk}-{run.rq_job_id}-"


def remove_scratch(job_id):
    """Delete the scratch directory (the run's data and fitted models) that the work horse of job `job_id`
    left: a killed or stopped process never runs its TemporaryDirectory's cleanup. Returns the paths removed."""
    found = list(Path(tempfile.gettempdir()).glob(f"runwatch-run-*-{job_id}-*")) if job_id else []
    for path in found:
        shutil.rmtree(path, ignore_errors=True)
    return found


def remove_ended_scratch():
    """Delete the scratch directories of runs that have ended, on this machine: a worker killed together with
    its horse left one, and nobody else removes it. A directory whose job this database does not know (another
    checkout sharing TMPDIR) or whose run is still active stays. Returns the paths removed."""
    found = {}
    for path in Path(tempfile.gettempdir()).glob("runwatch-run-*"):
        parts = path.name.split("-")  # runwatch, run, <run id>, <job id>, <tempfile's suffix>
        if len(parts) >= 5 and parts[3]:
            found.setdefault(parts[3], []).append(path)
    if not found:
        return []
    ended = Run.objects.filter(rq_job_id__in=list(found), status__in=Run.TERMINAL).values_list("rq_job_id", flat=True)
    removed = [path for job_id in ended for path in found[job_id]]
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed


class LimitedReporter(DbReporter):
    """Stops the engine at the run's time limit, where it already looks for a cancel: between fits."""

    def __init__(self, run, watchdog):
        super().__init__(run)
        self.watchdog = watchdog

    def should_stop(self):
        self.watchdog.check()
        return super().should_stop()


def _execute(run, watchdog):
    reporter = LimitedReporter(run, watchdog)
    try:
        with contextlib.ExitStack() as files:
            scratch = Path(files.enter_context(tempfile.TemporaryDirectory(prefix=_scratch_prefix(run))))
            resources = _resources(run, reporter, scratch)
            outcome = engine.execute(run.spec, reporter, scratch / f"run-{run.pk}", **resources,
                                     default_jobs=settings.RUNWATCH.get("N_JOBS_DEFAULT", 1),
                                     scheduler=settings.RUNWATCH.get("DASK_SCHEDULER", ""),
                                     resume=resume.engine_resume(run), eta_priors=_eta_priors(run))
            _store_bundle(run, outcome)
        reporter.close()
    except engine.Cancelled:
        if _close(reporter):
            _settle(run.mark_stopped, "Stopped by request")
        return None
    except events.RunClosed:
        _close(reporter, discard=True)
        log.info("Run %s was ended by someone else; writing nothing more", run.pk)
        return None
    except engine.RunError as e:
        reason, hint = _known(e, watchdog.limits)
        _log_quietly(reporter, reason, step=getattr(e, "step", None))
        if _close(reporter):
            _fail(run, reason, traceback.format_exc(), step=e.step, hint=hint)
        return None
    except Exception as e:
        tb = traceback.format_exc()
        log.exception("Run %s crashed", run.pk)
        reason, hint = _unexpected(e, watchdog.limits)
        _log_quietly(reporter, reason)
        if _close(reporter):
            _fail(run, reason, tb, hint=hint)
        return None
    _finish(run, outcome)
    return outcome


def _known(error, run_limits):
    """The reason and hint of an error the engine raised on purpose (a fit's own error is its cause)."""
    hint = getattr(error, "hint", None)
    if hint is None and error.__cause__ is not None:
        hint = _unexpected(error.__cause__, run_limits)[1]
    return failures.public_text(error.message), hint


def _unexpected(error, run_limits):
    from rq.timeouts import JobTimeoutException

    if isinstance(error, MemoryError):
        return "it ran out of memory", limits.memory_exceeded(run_limits)[1]
    if isinstance(error, JobTimeoutException):
        return limits.time_exceeded(run_limits)
    return failures.public_text(f"{type(error).__name__}: {error}"), None


def _fail(run, reason, tb, step=None, hint=None):
    # Read the run again: where the reporter last was (step, fold, variant) tells the user where it failed.
    fresh = Run.objects.get(pk=run.pk)
    message = failures.readable(fresh, reason, step=step, hint=hint)
    _settle(run.mark_failed, message, tb, reason=reason[:1].upper() + reason[1:])


def _resources(run, reporter, scratch):
    """Local copies, under `scratch`, of the uploaded CSV and (for an evaluation) the bundle the engine reads.

    A stored file that is missing becomes a path to nothing, so the engine reports it in its own words."""
    spec, found = run.spec, {}
    ref = spec["dataset"]
    if ref["kind"] == "csv":
        from datasets.models import Dataset

        dataset = Dataset.objects.filter(pk=ref["id"]).first()
        if dataset is None or not dataset.file:
            message = f"The uploaded dataset {ref['id']} no longer exists."
            reporter.step("load_data", "failed", message)
            raise engine.RunError(message, step="load_data")
        found["dataset_path"] = _fetch(dataset.file.name, scratch / "dataset", dataset.file.storage)
    if spec["runner"] == "evaluation":
        source = Run.objects.filter(pk=spec["evaluation"].get("run")).first()
        if source is not None and source.model_file:
            found["bundle_path"] = _fetch(source.model_file, scratch / "bundle")
            found["bundle_sha256"] = source.model_sha256
    return found


def _fetch(name, folder, file_storage=None):
    folder.mkdir()
    path = folder / os.path.basename(name)
    try:
        storage.download(name, path, file_storage)
    except FileNotFoundError:
        path.unlink(missing_ok=True)
    return path


def _store_bundle(run, outcome):
    """Upload the bundle the engine wrote; the outcome then names it by its storage name."""
    bundle = outcome.get("bundle")
    if bundle:
        try:
            bundle["name"] = storage.store(bundle["path"], bundle_name(run, bundle["path"]))
        except Exception as e:
            raise engine.RunError(f"The model could not be saved to the file storage ({type(e).__name__}: {e})",
                                  step="export") from e


def _finish(run, outcome):
    fields = {
        "best_score": outcome["best_score"],
        "best_variant": outcome["best_variant"],
        "data_hash": outcome["data_hash"],
        "library_versions": outcome["library_versions"],
    }
    if outcome.get("bundle"):
        fields["model_file"] = outcome["bundle"]["name"]
        fields["model_sha256"] = outcome["bundle"]["sha256"]
    for key in ("early_stopped", "stopped_epoch", "latest_score"):
        if key in outcome:
            fields[key] = outcome[key]
    try:
        run.mark_completed(outcome["summary"], **fields)
    except IllegalTransition:
        # Asked to stop after the last fit had begun: Cancelling may only end Stopped. The results are all
        # there, so keep them with the stopped run.
        _settle(run.mark_stopped, "Stopped by request", summary=outcome["summary"], **fields)


def _close(reporter, discard=False):
    """Flush the reporter; False if the run has been ended by someone else meanwhile (write nothing more)."""
    try:
        reporter.close(discard=discard)
        return True
    except events.RunClosed:
        return False
    except Exception:
        log.exception("Run %s: the reporter could not write everything", reporter.run_id)
        return True


def _log_quietly(reporter, message, step=None):
    """Put the failure in the log stream too, so the log panel tells the whole story."""
    try:
        reporter.log("error", message, step=step)
    except Exception:
        pass  # The reporter's writer already failed; the status change still records the message.


def _settle(method, *args, **kwargs):
    try:
        method(*args, **kwargs)
    except IllegalTransition as e:
        log.info("%s", e)  # Someone else ended the run first; a terminal status never changes.


def _worker_name():
    try:
        from rq import get_current_job

        job = get_current_job()
        return (job.worker_name or "") if job else ""
    except Exception:
        return ""
