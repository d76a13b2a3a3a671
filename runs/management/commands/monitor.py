import time

from django.core.management.base import BaseCommand
from django.db import close_old_connections

from runs import monitor


class Command(BaseCommand):
    help = "Keep run statuses honest: reap lost workers and lost jobs, force-stop runs past the cancel grace."

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=1.0)
        parser.add_argument("--once", action="store_true", help="Run every step once and exit.")

    def handle(self, *args, interval, once, **options):
        self.stdout.write(f"Monitoring runs every {interval:g}s")
        while True:
            close_old_connections()
            try:
                changed = monitor.tick()
                if changed:
                    self.stdout.write(f"Changed {changed} run(s)")
            except Exception as e:  # A database or Redis blip must not end the monitor.
                self.stderr.write(f"Monitor step failed: {e!r}")
            if once:
                return
            time.sleep(interval)
