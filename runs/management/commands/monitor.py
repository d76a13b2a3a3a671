"""`manage.py monitor`: runs the steps of runs.worker.monitor every second, beside the workers (see the Procfile)."""

import logging
import time

from django.core.management.base import BaseCommand
from django.db import connections

from runs.worker import monitor

log = logging.getLogger("runs.worker.monitor")


class Command(BaseCommand):
    help = "Keep run statuses honest: reap lost workers and lost jobs, force-stop runs past the cancel grace."

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=1.0, help="Seconds between rounds (default 1).")
        parser.add_argument("--once", action="store_true", help="Run every step once and exit.")

    def handle(self, *args, interval, once, **options):
        if not once:
            self.stdout.write(f"Monitoring runs every {interval:g}s")
        failing = None
        try:
            while True:
                try:
                    changed = monitor.tick()
                    if changed:
                        self.stdout.write(f"Changed {changed} run(s)")
                    if failing:
                        self.stdout.write("Monitor recovered")
                    failing = None
                except Exception as e:
                    # A database or Redis blip must not end the monitor. Report an error once, not every
                    # second while an outage lasts. Drop the database connection so the next round reconnects;
                    # otherwise it is kept, so a healthy round costs a few indexed queries and no reconnect.
                    if repr(e) != failing:
                        self.stderr.write(f"Monitor round failed (will keep trying): {e!r}")
                    failing = repr(e)
                    connections.close_all()
                    if once:
                        raise
                if once:
                    return
                time.sleep(self.pause(interval))
        except KeyboardInterrupt:
            pass

    def pause(self, interval):
        try:
            due = monitor.seconds_to_next_grace()
        except Exception:
            return interval  # the round just failed or will: keep the usual pace
        # A little past the deadline, so the query's `<` sees it passed.
        return interval if due is None else min(interval, due + 0.02)
