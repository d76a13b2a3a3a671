"""Each run's wall-clock and memory limits, enforced inside the work horse.

The limits are the RUNWATCH settings, or the spec's `limits` block up to the ceilings. How they are enforced,
and why:
- Memory: a watchdog thread reads the horse's resident anonymous memory (RssAnon, /proc/self/status) every
  POLL_SECONDS and ends the run as soon as it passes the limit. RLIMIT_AS and RLIMIT_DATA limit address
  space, not memory in use: OpenBLAS and glibc reserve hundreds of MB per thread that are never touched, so a
  limit low enough to protect the machine fails innocent runs, and the MemoryError it causes surfaces wherever
  the allocation happens to be (a reporter thread, scikit-learn internals), with no clear message.
- Time: at the limit the engine stops between two fits (`check`, called from the reporter's should_stop, raises
  LimitExceeded), so the step and the run fail with everything reported so far written. A single fit that
  outlasts the limit by the cancel grace period is ended by the watchdog: it marks the run Failed under the row
  lock, then exits the horse. Once the status is terminal nothing more is written (runs.events refuses it), so
  whatever the reporter still had queued is dropped, never half-written.
- RQ's job_timeout (`job_timeout`) is a backstop in the worker process: if the horse is wedged (a C call holding
  the GIL starves the watchdog), RQ kills it and RunwatchWorker says which limit was passed.
"""

import logging
import os
import resource
import sys
import threading
import time
import traceback
from dataclasses import dataclass

from django.conf import settings
from django.db import connection

from . import events, failures
from engine.errors import LimitExceeded

log = logging.getLogger(__name__)

POLL_SECONDS = 0.1
EXIT_CODE = 75  # The horse ended itself at a limit; the run already says why.
RQ_MARGIN_SECONDS = 60


@dataclass(frozen=True)
class Limits:
    time_seconds: int
    memory_mb: int


def for_spec(spec):
    """The limits a run with this spec gets: the spec's own, never above the ceilings, else the defaults."""
    conf, asked = settings.RUNWATCH, (spec or {}).get("limits") or {}
    time_seconds = asked.get("time_seconds") or conf["RUN_TIME_LIMIT_SECONDS"]
    memory_mb = asked.get("memory_mb") or conf["RUN_MEMORY_LIMIT_MB"]
    return Limits(
        time_seconds=int(min(time_seconds, conf["RUN_TIME_LIMIT_MAX_SECONDS"])),
        memory_mb=int(min(memory_mb, conf["RUN_MEMORY_LIMIT_MAX_MB"])),
    )


def job_timeout(spec):
    """RQ's own timeout for the job: well past the point where the watchdog ends the run by itself."""
    return for_spec(spec).time_seconds + int(settings.RUNWATCH["CANCEL_GRACE_SECONDS"]) + RQ_MARGIN_SECONDS


def _seconds(value):
    value = int(value)
    if value % 3600 == 0:
        return f"{value // 3600} h"
    if value >= 60 and value % 60 == 0:
        return f"{value // 60} min"
    return f"{value} s"


def time_exceeded(limits):
    conf = settings.RUNWATCH
    reason = f"it reached its time limit of {_seconds(limits.time_seconds)}"
    hint = (
        f'To give it longer, set "limits": {{"time_seconds": ...}} in the spec (at most '
        f"{conf['RUN_TIME_LIMIT_MAX_SECONDS']}), or raise the RUN_TIME_LIMIT_SECONDS setting "
        f"(environment variable RUNWATCH_RUN_TIME_LIMIT, now {conf['RUN_TIME_LIMIT_SECONDS']})."
    )
    return reason, hint


def memory_exceeded(limits):
    conf = settings.RUNWATCH
    reason = f"it used more than its memory limit of {limits.memory_mb} MB"
    hint = (
        f'Use less data or smaller models, or set "limits": {{"memory_mb": ...}} in the spec (at most '
        f"{conf['RUN_MEMORY_LIMIT_MAX_MB']}), or raise the RUN_MEMORY_LIMIT_MB setting "
        f"(environment variable RUNWATCH_RUN_MEMORY_LIMIT_MB, now {conf['RUN_MEMORY_LIMIT_MB']})."
    )
    return reason, hint


def resident_mb():
    """Memory this process holds: anonymous resident pages, which is what data and models take."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    # Not Linux: the peak resident size. It only grows, but it still tells when the limit was passed.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)


class Watchdog:
    """Use in the work horse around the engine: `with Watchdog(run.pk, limits): ...`."""

    def __init__(self, run_id, limits, grace=None, poll=POLL_SECONDS):
        self.run_id = run_id
        self.limits = limits
        self.grace = settings.RUNWATCH["CANCEL_GRACE_SECONDS"] if grace is None else grace
        self.poll = poll
        self.started = time.monotonic()
        self._main = threading.main_thread()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"watchdog-{run_id}", daemon=True)

    def __enter__(self):
        self.started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=self.poll + 5)

    def elapsed(self):
        return time.monotonic() - self.started

    def check(self):
        """Called by the engine between fits: raise LimitExceeded once the time is up."""
        if self.elapsed() >= self.limits.time_seconds:
            raise LimitExceeded(*time_exceeded(self.limits))

    def _loop(self):
        try:
            while not self._stop.wait(self.poll):
                if resident_mb() > self.limits.memory_mb:
                    self._end(*memory_exceeded(self.limits))
                    return
                if self.elapsed() >= self.limits.time_seconds + self.grace:
                    self._end(*time_exceeded(self.limits))
                    return
        except Exception:
            log.exception("Run %s: the limit watchdog failed; RQ's job timeout remains", self.run_id)
        finally:
            connection.close()  # this thread's own connection

    def _end(self, reason, hint):
        """End the run at a limit from this thread, then the horse, whatever the engine is doing."""
        from .models import IllegalTransition, Run

        log.error("Run %s: %s; ending the work horse", self.run_id, reason)
        try:
            run = Run.objects.get(pk=self.run_id)
            if run.status == Run.Status.CANCELLING:
                run.mark_stopped(f"Stopped: {reason} while stopping.")
            else:
                where = "".join(traceback.format_stack(sys._current_frames().get(self._main.ident)))
                run.mark_failed(
                    failures.readable(run, reason, hint=hint),
                    f"{reason}; the engine was here:\n{where}",
                    reason=reason[0].upper() + reason[1:],
                )
        except IllegalTransition:
            return  # It ended by itself meanwhile: nothing to stop.
        except Exception:
            # The horse goes anyway, to protect the machine; RunwatchWorker records its exit.
            log.exception("Run %s: could not record the limit", self.run_id)

        events.flush(timeout=2)  # so watchers get the Failed event now, not from the database later
        os._exit(EXIT_CODE)
