"""Each run's wall-clock and memory limits, enforced inside the work horse.

The limits are the RUNWATCH settings, or the spec's `limits` block up to the ceilings. How they are enforced,
and why:
- Memory: a watchdog thread reads the run's resident anonymous memory (RssAnon in /proc/<pid>/status, of the
  horse and of every process under it: the fit processes of engine.runners.parallel) every POLL_SECONDS and ends the
  run as soon as it passes the limit (RunMemory says why RssAnon, and how often the children are looked up). RLIMIT_AS and RLIMIT_DATA limit address
  space, not memory in use: OpenBLAS and glibc reserve hundreds of MB per thread that are never touched, so a
  limit low enough to protect the machine fails innocent runs, and the MemoryError it causes surfaces wherever
  the allocation happens to be (a reporter thread, scikit-learn internals), with no clear message.
- Nothing outlives the horse: before the watchdog (or runs.worker.heartbeat) exits it, every fit process is killed.
  loky's resource tracker is spared; it deletes the memmapped data and exits once the horse is gone. RQ's own
  kill (its timeout, a forced stop) goes through RunwatchWorker.kill_horse, which does the same.
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

import psutil
from django.conf import settings
from django.db import connection

from .. import events
from . import failures
from engine.errors import LimitExceeded

log = logging.getLogger(__name__)

POLL_SECONDS = 0.1
# Finding the children walks every process on the machine (psutil reads /proc/*/stat): 6.6 ms with 100
# processes here, too much ten times a second. Reading the known children's memory costs 0.06 ms each, so that is
# done every poll, and the list is renewed this often: a fit process started since is counted at most this late.
CHILDREN_SECONDS = 1.0
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


def memory_exceeded(limits, fit_processes=0):
    conf = settings.RUNWATCH
    reason = f"it used more than its memory limit of {limits.memory_mb} MB"
    if fit_processes:
        plural = "es" if fit_processes > 1 else ""
        reason += f", counting its {fit_processes} fit process{plural}"
    hint = (
        f'Use less data or smaller models{", or a lower n_jobs" if fit_processes else ""}, or set '
        f'"limits": {{"memory_mb": ...}} in the spec (at most '
        f"{conf['RUN_MEMORY_LIMIT_MAX_MB']}), or raise the RUN_MEMORY_LIMIT_MB setting "
        f"(environment variable RUNWATCH_RUN_MEMORY_LIMIT_MB, now {conf['RUN_MEMORY_LIMIT_MB']})."
    )
    return reason, hint


def anonymous_mb(pid="self"):
    """Memory a process holds in anonymous resident pages (RssAnon), which is what data and models take; None
    when it cannot be read (the process is gone, or this is not Linux)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def resident_mb():
    """Memory this process holds: its anonymous resident pages, else (not Linux) its peak resident size, which
    only grows but still tells when the limit was passed."""
    own = anonymous_mb()
    if own is not None:
        return own
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)


class RunMemory:
    """The memory of the whole run: this process's plus every descendant's (the fit processes, loky's resource
    tracker), each read as RssAnon.

    Why RssAnon rather than psutil's USS (memory_full_info().uss): USS reads the whole of /proc/<pid>/smaps, 11 ms
    for four children here against 0.3 ms, and it counts private file-backed pages too. The data joblib shares
    with the children is a memmapped file (in /dev/shm it is shmem, RssShmem): RssAnon leaves it out in every
    process, so it is not counted once per child. loky starts its children with fork+exec, so they share no
    copy-on-write anonymous pages with the horse that would be counted twice; a plain fork() child would be."""

    def __init__(self, refresh=CHILDREN_SECONDS):
        self.refresh = refresh
        self._children, self._found_at = [], None

    def children(self):
        now = time.monotonic()
        if self._found_at is None or now - self._found_at >= self.refresh:
            try:
                self._children = [child.pid for child in psutil.Process().children(recursive=True)]
            except psutil.Error:
                pass  # keep the last list
            self._found_at = now
        return self._children

    def children_mb(self):
        # A child that has ended reads as nothing (its pid would only be reused long after the next refresh).
        return sum(anonymous_mb(pid) or 0 for pid in self.children())

    def total_mb(self):
        return resident_mb() + self.children_mb()

    def describe(self):
        """For staff, in the run's traceback: where the memory was."""
        own, children = resident_mb(), self.children_mb()
        return f"the work horse held {own:.0f} MB and the {len(self._children)} processes under it {children:.0f} MB"


class Watchdog:
    """Use in the work horse around the engine: `with Watchdog(run.pk, limits): ...`."""

    def __init__(self, run_id, limits, grace=None, poll=POLL_SECONDS):
        self.run_id = run_id
        self.limits = limits
        self.grace = settings.RUNWATCH["CANCEL_GRACE_SECONDS"] if grace is None else grace
        self.poll = poll
        self.started = time.monotonic()
        self._main = threading.main_thread()
        self._memory = RunMemory()
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
                if self._memory.total_mb() > self.limits.memory_mb:
                    from engine.runners import parallel  # here, not at the top: see end_children

                    self._end(*memory_exceeded(self.limits, len(parallel.fit_processes())),
                              detail=self._memory.describe())
                    return
                if self.elapsed() >= self.limits.time_seconds + self.grace:
                    self._end(*time_exceeded(self.limits))
                    return
        except Exception:
            log.exception("Run %s: the limit watchdog failed; RQ's job timeout remains", self.run_id)
        finally:
            connection.close()  # this thread's own connection

    def _end(self, reason, hint, detail=""):
        """End the run at a limit from this thread, then its fit processes and the horse, whatever the engine is
        doing. The run is marked first: killed children would make the engine fail it as "a fit process died"."""
        from ..models import IllegalTransition, Run

        log.error("Run %s: %s; ending the work horse", self.run_id, reason)
        try:
            run = Run.objects.get(pk=self.run_id)
            if run.status == Run.Status.CANCELLING:
                run.mark_stopped(f"Stopped: {reason} while stopping.")
            else:
                where = "".join(traceback.format_stack(sys._current_frames().get(self._main.ident)))
                run.mark_failed(
                    failures.readable(run, reason, hint=hint),
                    f"{reason}{f' ({detail})' if detail else ''}; the engine was here:\n{where}",
                    reason=reason[0].upper() + reason[1:],
                )
        except IllegalTransition:
            return  # It ended by itself meanwhile: nothing to stop.
        except Exception:
            # The horse goes anyway, to protect the machine; RunwatchWorker records its exit.
            log.exception("Run %s: could not record the limit", self.run_id)

        end_children()
        events.flush(timeout=2)  # so watchers get the Failed event now, not from the database later
        os._exit(EXIT_CODE)


def end_children():
    """Kill every fit process before the horse exits: an orphaned child would go on fitting, holding memory and
    cores with nobody to read its result. loky's resource tracker stays; it exits by itself once the horse is
    gone, after deleting the memmapped data."""
    # Imported here, not at the top: runs.control imports this module in web processes, and engine.runners.parallel
    # brings joblib and scikit-learn, which only the work horse needs (tests/test_light_setup.py).
    from engine.runners import parallel

    try:
        parallel.kill_children(managers=True)
    except Exception:
        log.exception("Could not end the fit processes")
