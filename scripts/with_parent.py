"""Run a command that ends when its parent does: how supervisord starts the programs of `make run`.

supervisord puts each program in a process group of its own, so a Ctrl-C reaches supervisord alone, and it stops
them in order (Redis last). If supervisord itself is killed (kill -9, or an impatient second signal while the
programs are stopping), they would live on as orphans: a Redis or a daphne holding its port, so that the next
`make run` finds the port taken, and workers taking jobs with nobody supervising them. Linux's parent-death
signal sends each program SIGTERM when supervisord dies (Redis saves and exits on it, RQ and daphne shut down).

    python scripts/with_parent.py COMMAND [ARGS...]     # then exec's COMMAND, keeping the process id

Elsewhere than Linux the command runs as it is.
"""

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def started_by_supervisord():
    """Whether our parent is still supervisord, now that its death would signal us.

    Comparing the parent before and after the prctl is not enough: supervisord may die after it forked us and
    before this Python started, and then the "before" is already the process that adopted us (init, or a
    subreaper). Its name tells them apart, even where supervisord is process 1 of a container.
    """
    try:
        with open(f"/proc/{os.getppid()}/cmdline", "rb") as f:
            return b"supervisord" in f.read()
    except OSError:
        return True  # no /proc (not Linux): nothing to check against


def main():
    argv = sys.argv[1:]
    if not argv:
        sys.exit("usage: with_parent.py COMMAND [ARGS...]")
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (AttributeError, OSError):
        pass  # no prctl: not Linux
    if not started_by_supervisord():
        sys.exit(0)  # supervisord died before the signal was set: nobody wants this program any more
    os.execvp(argv[0], argv)  # the signal setting survives exec; the process id stays supervisord's child's


if __name__ == "__main__":
    main()
