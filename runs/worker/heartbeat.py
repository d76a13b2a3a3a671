"""The heartbeat a running job sends from a side thread, so the monitor can tell a live run from a lost one."""

import logging
import os
import threading

from django.conf import settings
from django.db import connection
from django.utils import timezone

from .limits import end_children
from ..models import Run

log = logging.getLogger(__name__)


class Heartbeat:
    """Use in the work horse around the engine: `with Heartbeat(run.pk): ...`."""

    def __init__(self, run_id, interval=None):
        self.run_id = run_id
        self.interval = interval or settings.RUNWATCH["HEARTBEAT_SECONDS"]
        self._stop = threading.Event()
        self._parent = os.getppid()
        self._thread = threading.Thread(target=self._loop, name=f"heartbeat-{run_id}", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=self.interval + 5)

    def beat(self):
        # Only an active run gets a heartbeat: after a terminal status nothing is written for it. The status
        # test is in the UPDATE itself, so it cannot race with the transition that ends the run.
        return Run.objects.filter(pk=self.run_id, status__in=Run.ACTIVE).update(heartbeat_at=timezone.now())

    def _loop(self):
        try:
            while True:
                if os.getppid() != self._parent:
                    # The worker that forked this work horse is gone (kill -9). Nobody would record our
                    # result or answer a stop command, so exit without another beat: the monitor then
                    # fails the run as "worker lost" instead of it finishing unsupervised. Its fit processes go
                    # first, or they would fit on as orphans.
                    log.error("Run %s: the worker process is gone; exiting the work horse", self.run_id)
                    end_children()
                    os._exit(1)
                try:
                    self.beat()
                except Exception:
                    # A database blip: drop this thread's connection so the next beat reconnects. A few
                    # missed beats are fine; the monitor waits several intervals before it decides.
                    log.warning("Run %s: heartbeat failed", self.run_id, exc_info=True)
                    connection.close()
                if self._stop.wait(self.interval):
                    return
        finally:
            connection.close()
