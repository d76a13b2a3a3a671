"""The RQ worker class `make run` starts: it fails a run at once when its work horse dies."""

import errno
import gc
import logging
import os
import signal

import psutil
import redis
from django.db import connections
from django.utils import timezone
from rq.worker import Worker
from rq.worker.base import SHUTDOWN_SIGNAL

# The engine's runners (with scikit-learn, pandas and Dask) are loaded here, once, so every work horse RQ forks
# for a job inherits them instead of importing them again (about 0.25 s a run); since web processes no longer
# load them at django.setup() (engine/__init__.py), the worker does it itself.
import engine.runners.cv  # noqa: F401
import engine.runners.evaluation  # noqa: F401
import engine.runners.training  # noqa: F401
from engine.runners.parallel import is_resource_tracker

from . import execution, failures, limits
from ..models import IllegalTransition, Run

log = logging.getLogger(__name__)


def describe_exit(ret_val):
    if ret_val is not None and os.WIFSIGNALED(ret_val):
        number = os.WTERMSIG(ret_val)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = "unknown signal"
        hint = "; it may have been killed or run out of memory" if number == signal.SIGKILL else ""
        return f"was killed by signal {number} ({name}){hint}"
    if ret_val is not None and os.WIFEXITED(ret_val):
        return f"exited with status {os.WEXITSTATUS(ret_val)}"
    return "ended unexpectedly"


def _group_of(pid):
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def _kill(pid, sig):
    try:
        os.kill(pid, sig)
    except OSError as e:
        if e.errno != errno.ESRCH:  # already gone is fine
            raise


class RunwatchWorker(Worker):
    def fork_work_horse(self, job, queue):
        # The worker itself touches the database (the handlers below, the stop callback). A forked horse
        # must not inherit that socket: two processes talking on one connection corrupt it.
        connections.close_all()
        super().fork_work_horse(job, queue)

    def main_work_horse(self, job, queue):
        # In the work horse, before the job: what the worker loaded (Django, scikit-learn) lives as long as
        # the horse, so the collector need not walk it on every full collection while the run reports.
        gc.freeze()
        super().main_work_horse(job, queue)

    def kill_horse(self, sig=SHUTDOWN_SIGNAL):
        """RQ's kills the horse's process group (on a stop-job command and past the job's timeout), all but loky's
        resource trackers.

        The horse leads its own group (RQ's fork_work_horse calls setpgrp) and loky starts its fit processes and
        its resource tracker in that group, so killpg would end them all. A killed tracker never deletes the
        memmapped data (in /dev/shm) and semaphores it tracks. Spared, it does so and exits once the horse and
        the fit processes are gone (tests/test_children.py). The horse goes first, so it starts no more."""
        try:
            group = os.getpgid(self.horse_pid)
            spared = {p.pid for p in psutil.Process(self.horse_pid).children(recursive=True) if is_resource_tracker(p)}
        except (OSError, psutil.Error):
            return super().kill_horse(sig)  # gone already, or unreadable: RQ's way
        if not spared:
            return super().kill_horse(sig)
        _kill(self.horse_pid, sig)
        for pid in psutil.pids():
            if pid not in spared and pid != self.horse_pid and _group_of(pid) == group:
                _kill(pid, sig)
        self.log.info("Worker %s: killed horse pid %s and its group but %s", self.name, self.horse_pid, spared)

    def monitor_work_horse(self, job, queue):
        try:
            super().monitor_work_horse(job, queue)
        finally:
            # However the horse ended (done, killed, stopped by a forced cancel, past its timeout), nothing of
            # its run stays on disk. A horse that finished cleaned up after itself: nothing is found.
            removed = execution.remove_scratch(job.id)
            try:
                removed += execution.remove_ended_scratch()  # left by a worker killed with its horse
            except Exception:
                log.exception("Could not look for the scratch of ended runs")
            finally:
                connections.close_all()  # the next horse is forked from this process (fork_work_horse)
            if removed:
                log.info("Job %s: removed the scratch work horses left: %s", job.id, removed)

    def unsubscribe(self):
        """RQ's, without its unbounded wait for redis-py's pubsub thread.

        RQ unsubscribes, then stops the thread, and redis-py 8's stop() joins it with no time limit. The thread
        waits for a subscription for up to RQ's sleep_time (60 s) once it is not subscribed: when it read the
        confirmation of that unsubscribe before stop() was called, or when Redis went away. Then a stopped
        worker lingered for up to a minute. When supervisord died, that meant an orphan holding on (tests/
        test_supervision.py caught one alive 60 s later). The flag is cleared first, so the confirmation ends
        the thread's loop, and the wait is bounded either way."""
        thread, pubsub = self.pubsub_thread, self.pubsub
        if not thread:
            return
        self.log.info("Worker %s: unsubscribing from channel %s", self.name, self.pubsub_channel_name)
        try:
            thread.stop(timeout=0)  # redis-py 8: clear the run flag; the join comes below, bounded
        except TypeError:
            thread.stop()  # redis-py before 8: stop() only clears the flag
        try:
            pubsub.unsubscribe()
        except redis.RedisError:
            pass  # Redis is gone, and the subscription with it
        thread.join(timeout=1)
        if not thread.is_alive():
            pubsub.close()  # otherwise the socket would close under the thread's read; the process is ending

    def handle_work_horse_killed(self, job, retpid, ret_val, rusage):
        super().handle_work_horse_killed(job, retpid, ret_val, rusage)
        try:
            self._end_run(job, ret_val)
        except Exception:
            # Never take the worker down with us; the monitor fails the run once its heartbeat is stale.
            log.exception("Could not record the death of the work horse for job %s", job.id)
        finally:
            connections.close_all()

    def _end_run(self, job, ret_val):
        run = Run.objects.filter(rq_job_id=job.id).first()
        if run is None or run.is_terminal:
            return
        message = f"The work horse running this job {describe_exit(ret_val)}."
        run_limits = limits.for_spec(run.spec)
        if run.started_at and (timezone.now() - run.started_at).total_seconds() > run_limits.time_seconds:
            # RQ's backstop killed a horse wedged past its time limit (runs.worker.limits.job_timeout).
            reason, hint = limits.time_exceeded(run_limits)
            message = failures.readable(run, reason, hint=hint)
        try:
            if run.status == Run.Status.CANCELLING:
                run.mark_stopped("Stopped: the work horse ended while stopping")
            else:
                run.mark_failed(message)
        except IllegalTransition:
            pass
