"""The heartbeat a running job sends from a side thread, so the reaper can tell a live run from a lost one."""

import os
import threading

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from .models import Run


class Heartbeat:
    def __init__(self, run_id, interval=None):
        self.run_id = run_id
        self.interval = interval or settings.RUNWATCH["HEARTBEAT_SECONDS"]
        self._stop = threading.Event()
        self._parent = os.getppid()
        self._thread = threading.Thread(target=self._loop, name=f"heartbeat-{run_id}", daemon=True)

    def __enter__(self):
        self.beat()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=self.interval + 5)

    def beat(self):
        # Only an active run gets a heartbeat: after a terminal status nothing is written for it.
        return Run.objects.filter(pk=self.run_id, status__in=Run.ACTIVE).update(heartbeat_at=timezone.now())

    def _loop(self):
        try:
            while not self._stop.wait(self.interval):
                if os.getppid() != self._parent:
                    # The worker that forked this work horse is gone (kill -9). Nobody would record our
                    # result or answer a stop command, so stop beating and exit: the reaper fails the run
                    # as "worker lost" instead of it finishing unsupervised.
                    os._exit(1)
                try:
                    self.beat()
                except Exception:
                    close_old_connections()
        finally:
            connection.close()
