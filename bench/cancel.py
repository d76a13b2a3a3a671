"""Cancel latency and dead-worker detection: real runs on a real RQ worker with the real monitor, against a baseline.

Per tree (this checkout, and a baseline tree: another checkout, or a commit this script extracts with git
archive), a driver process with that tree's code starts one RQ worker and the monitor exactly as
config/supervisord.conf does (`rqworker default --worker-class runs.worker.process.RunwatchWorker`, `monitor` every 1 s),
on DATABASE_URL and REDIS_URL, with the RUNWATCH_* settings in effect, and measures, each on a fresh run:

- cooperative: a CV run of ~0.1 s fits (tests.runwork.MANY_FITS_SPEC; the engine asks should_stop between fits)
  is cancelled a random moment after its first fold began, through runs.control.cancel_run (what the pages, the
  API and the CLI call); seconds from the cancel request until Stopped is committed (read back every 5 ms);
- forced: the same for one fit of minutes (tests.runwork.ONE_LONG_FIT_SPEC) that never looks: the monitor kills
  the work horse after the grace period; reported as seconds beyond the grace (RUNWATCH_CANCEL_GRACE);
- horse kill: kill -9 of the work horse; seconds until the run is Failed, with the worker's readable message;
- worker kill: kill -9 of the worker's process group; seconds until the run is no longer active (the monitor
  fails it once its heartbeat is RUNWATCH_WORKER_LOST old; the orphaned horse exits at its next heartbeat).

Only one tree's processes run at a time (they share the queue); rounds alternate the order (A, B, B, A, ...).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/rw REDIS_URL=redis://127.0.0.1:6379/10 python bench/cancel.py
    python bench/cancel.py --rounds 2 --coop 5 --kills 2 --baseline-rev 94c1479
    python bench/cancel.py --baseline-tree /tmp/cancel-before    # e.g. git archive 94c1479 | tar -x -C there

Without DATABASE_URL it uses SQLite at .runwatch/bench-cancel.sqlite3. No other worker may listen on REDIS_URL's
queue: it would take the runs. Both trees must share the database schema (the driver migrates with its tree).
"""

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT))  # after the tree a driver child puts first
STATE = ROOT / ".runwatch"

from bench.trees import tree_at  # noqa: E402

KINDS = {"cooperative": "cooperative cancel", "forced": "forced cancel, beyond the grace",
         "horse": "work horse kill -9", "worker": "worker kill -9"}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="rounds per tree, interleaved")
    parser.add_argument("--coop", type=int, default=5, help="cooperative cancels per round")
    parser.add_argument("--kills", type=int, default=2, help="forced cancels and horse kills per round")
    parser.add_argument("--baseline-tree", type=Path, default=None, help="a checkout to measure as the baseline")
    parser.add_argument("--baseline-rev", default=None,
                        help="a commit to measure as the baseline (extracted into .runwatch/bench-baseline-REV)")
    parser.add_argument("--no-baseline", action="store_true", help="measure this checkout only (a smoke run)")
    for name, var in (("grace", "CANCEL_GRACE"), ("worker-lost", "WORKER_LOST"), ("heartbeat", "HEARTBEAT")):
        parser.add_argument(f"--{name}", type=float, default=None,
                            help=f"seconds; sets RUNWATCH_{var} for every process (default: settings)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--drive", action="store_true", help=argparse.SUPPRESS)  # the per-tree driver child
    parser.add_argument("--tree", type=Path, default=ROOT, help=argparse.SUPPRESS)
    return parser.parse_args()


# --- The driver: a child process running one tree's code --------------------------------------------------


def say(text):
    print(f"  {text}", file=sys.stderr, flush=True)


def drive(args):
    sys.path.insert(0, str(args.tree))
    try:
        import pytest  # noqa: F401
    except ImportError:
        # tests/runwork.py imports pytest for a helper this script does not call; `make bench` installs only
        # the project's base dependencies.
        sys.modules["pytest"] = types.ModuleType("pytest")
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.core.management import call_command

    import runs
    from tests.helpers import Process, manage, start_worker

    assert Path(runs.__file__).resolve().is_relative_to(args.tree.resolve()), f"runs imported from {runs.__file__}"
    call_command("migrate", verbosity=0, interactive=False)
    owner, _ = User.objects.get_or_create(username="bench-cancel")
    knobs = {f"RUNWATCH_{var}": settings.RUNWATCH[f"{var}_SECONDS"]
             for var in ("CANCEL_GRACE", "WORKER_LOST", "HEARTBEAT", "QUEUED_LOST")}
    rng = random.Random(args.seed)
    launched = []
    # As config/supervisord.conf starts them (tests.helpers would give the monitor a shorter interval).
    worker = start_worker(name=f"bench-cancel-{os.getpid()}", **knobs)
    monitor = Process(manage("monitor"), "bench-monitor", **knobs)
    m = Measure(owner, launched, rng, settings.RUNWATCH["CANCEL_GRACE_SECONDS"])
    try:
        results = {kind: [] for kind in KINDS}
        for _ in range(args.coop):
            results["cooperative"].append(m.cooperative())
        for _ in range(args.kills):
            results["forced"].append(m.forced())
            results["horse"].append(m.horse_kill(worker))
        results["worker"].append(m.worker_kill(worker))
        print(json.dumps({"results": results, "settings": knobs, "versions": versions()}), flush=True)
    finally:
        m.end_leftovers()
        for process in (worker, monitor):
            process.stop()


class Measure:
    def __init__(self, owner, launched, rng, grace):
        from runs.models import Run

        self.Run, self.owner, self.launched, self.rng, self.grace = Run, owner, launched, rng, grace

    def launch(self, spec, name):
        from runs.control import launch_run
        from tests.runwork import wait_for_fitting

        run = launch_run(self.owner, spec=spec, name=f"bench cancel: {name}")
        self.launched.append(run)
        wait_for_fitting(run, timeout=180)  # the first launch also waits for the worker to come up
        return run

    def settle(self, run, started, timeout, watch=None):
        """(seconds from `started` until the run's terminal status is committed, its row); `watch` is called
        every poll too."""
        while True:
            row = self.Run.objects.filter(pk=run.pk).values(
                "status", "message", "error_message", "kill_sent_at", "partial", "cancel_requested_at",
                "finished_at").get()
            if watch:
                watch()
            if row["status"] in self.Run.TERMINAL:
                return time.monotonic() - started, row
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"run {run.pk} still {row['status']} after {timeout:.0f} s")
            time.sleep(0.005)

    def cancel(self, run):
        from runs.control import cancel_run

        started = time.monotonic()
        cancel_run(run, by="bench/cancel.py")
        return started

    def cooperative(self):
        from tests.runwork import MANY_FITS_SPEC

        run = self.launch(MANY_FITS_SPEC, "cooperative")
        time.sleep(self.rng.uniform(0, 0.5))  # lands anywhere within a fit (~0.1 s each), or at a report
        seconds, row = self.settle(run, self.cancel(run), self.grace + 60)
        ok = row["status"] == self.Run.Status.STOPPED and row["kill_sent_at"] is None and row["partial"]
        return self.done("cooperative", run, seconds, ok, row["message"])

    def forced(self):
        from tests.runwork import ONE_LONG_FIT_SPEC

        run = self.launch(ONE_LONG_FIT_SPEC, "forced")
        seconds, row = self.settle(run, self.cancel(run), self.grace + 60)
        ok = row["status"] == self.Run.Status.STOPPED and row["kill_sent_at"] is not None
        result = self.done("forced", run, seconds - self.grace, ok, row["message"])
        if ok:  # where the time beyond the grace goes: the monitor's round, then the kill and its record
            result["kill_after_grace"] = (row["kill_sent_at"] - row["cancel_requested_at"]).total_seconds() - self.grace
            result["stopped_after_kill"] = (row["finished_at"] - row["kill_sent_at"]).total_seconds()
        return result

    def horse_kill(self, worker):
        from tests.runwork import ONE_LONG_FIT_SPEC, horse_of

        run = self.launch(ONE_LONG_FIT_SPEC, "horse kill")
        horse = horse_of(worker)
        started = time.monotonic()
        os.kill(horse, signal.SIGKILL)
        seconds, row = self.settle(run, started, 60)
        ok = (row["status"] == self.Run.Status.FAILED
              and row["error_message"].startswith("The work horse running this job was killed by signal 9"))
        return self.done("horse", run, seconds, ok, row["error_message"])

    def worker_kill(self, worker):
        from tests.runwork import ONE_LONG_FIT_SPEC, horse_of, is_running

        run = self.launch(ONE_LONG_FIT_SPEC, "worker kill")
        horse = horse_of(worker)
        started, horse_gone = time.monotonic(), []

        def watch():
            if not horse_gone and not is_running(horse):
                horse_gone.append(time.monotonic() - started)

        os.killpg(worker.pid, signal.SIGKILL)
        seconds, row = self.settle(run, started, 120, watch)
        ok = row["status"] == self.Run.Status.FAILED and row["error_message"].startswith("Worker lost")
        result = self.done("worker", run, seconds, ok, row["error_message"])
        result["horse_gone"] = horse_gone[0] if horse_gone else None
        return result

    def done(self, kind, run, seconds, ok, message):
        say(f"{KINDS[kind]:32} run {run.pk:<6} {seconds:7.3f} s  {'' if ok else 'UNEXPECTED OUTCOME: '}{message}")
        return {"seconds": seconds, "ok": bool(ok), "message": message}

    def end_leftovers(self):
        """A failed round must not leave a job for the next tree's worker."""
        from runs.control import CannotCancel, cancel_run

        for run in self.launched:
            try:
                cancel_run(run, by="bench/cancel.py cleanup")
            except CannotCancel:
                pass


def versions():
    import platform

    import django
    import redis
    import rq
    from django.conf import settings
    from django.db import connection

    server = redis.Redis.from_url(settings.REDIS_URL).info("server")["redis_version"]
    connection.ensure_connection()
    if connection.vendor == "sqlite":
        database = f"sqlite {connection.Database.sqlite_version}"
    else:
        database = f"{connection.vendor} {connection.pg_version // 10000}.{connection.pg_version % 10000}"
    return (f"python {platform.python_version()}, django {django.get_version()}, rq {rq.__version__}, "
            f"redis server {server}, {database}")


# --- The parent: trees, interleaved rounds, the table -----------------------------------------------------


def baseline_tree(args):
    if args.no_baseline:
        return None
    if args.baseline_tree:
        return args.baseline_tree.resolve()
    if not args.baseline_rev:
        return None
    return tree_at(args.baseline_rev)


def driver_env(args):
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings", DEBUG=os.environ.get("DEBUG") or "1")
    env.setdefault("DATABASE_URL", f"sqlite:///{STATE / 'bench-cancel.sqlite3'}")
    for value, var in ((args.grace, "CANCEL_GRACE"), (args.worker_lost, "WORKER_LOST"), (args.heartbeat, "HEARTBEAT")):
        if value is not None:
            env[f"RUNWATCH_{var}"] = str(value)
    return env


def run_driver(args, tree, seed):
    argv = [sys.executable, __file__, "--drive", "--tree", str(tree), "--coop", str(args.coop), "--kills",
            str(args.kills), "--seed", str(seed)]
    out = subprocess.run(argv, cwd=tree, env=driver_env(args), stdout=subprocess.PIPE, text=True)
    if out.returncode:
        sys.exit(f"the driver for {tree} failed (exit code {out.returncode}); its messages are above")
    return json.loads(out.stdout.strip().splitlines()[-1])


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, round(q / 100 * (len(values) - 1)))]


def main():
    args = parse_args()
    if args.drive:
        return drive(args)
    STATE.mkdir(exist_ok=True)
    seed = args.seed if args.seed is not None else random.randrange(10**6)
    trees = [("this", ROOT)] + ([("baseline", b)] if (b := baseline_tree(args)) else [])
    results = {name: {kind: [] for kind in KINDS} for name, _ in trees}
    load_before, started = os.getloadavg(), time.monotonic()
    for r in range(args.rounds):
        for name, tree in (trees if r % 2 == 0 else trees[::-1]):
            print(f"round {r + 1}, {name} ({tree}):", flush=True)
            answer = run_driver(args, tree, seed + r)
            for kind, measured in answer["results"].items():
                results[name][kind].append(measured)
            if name == "this":
                knobs, version_line = answer["settings"], answer["versions"]
    report(args, trees, results, knobs, load_before, os.getloadavg(), version_line, time.monotonic() - started, seed)
    if not all(m["ok"] for by_kind in results.values() for rounds in by_kind.values() for ms in rounds for m in ms):
        sys.exit("Some run did not end the expected way (UNEXPECTED OUTCOME above).")


def goals(knobs):
    """Issue 8's goals, in the settings in effect: the worker-kill goal is the lost-worker delay + 5 s."""
    return {"cooperative": ("p95", 1.0), "forced": ("p95", 1.0), "horse": ("p95", 1.0),
            "worker": ("p95", knobs["RUNWATCH_WORKER_LOST"] + 5.0)}


def report(args, trees, results, knobs, load_before, load_after, version_line, elapsed, seed):
    names = [name for name, _ in trees]
    print()
    print(f"Cancel latency and dead-worker detection: {args.rounds} rounds per tree, interleaved; per round "
          f"{args.coop} cooperative cancels, {args.kills} forced cancels and horse kills, 1 worker kill; grace {knobs['RUNWATCH_CANCEL_GRACE']:g} s, worker lost after "
          f"{knobs['RUNWATCH_WORKER_LOST']:g} s, heartbeat {knobs['RUNWATCH_HEARTBEAT']:g} s, monitor every 1 s; "
          f"seconds; ratio = this / baseline")
    print()
    print("| measure | tree | n | p50 | p95 | max | round medians | p50 × | p95 × | goal | met |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for kind, title in KINDS.items():
        base = [m["seconds"] for ms in results[names[-1]][kind] for m in ms] if len(names) > 1 else None
        for name in names:
            values = [m["seconds"] for ms in results[name][kind] for m in ms]
            medians = [statistics.median(m["seconds"] for m in ms) for ms in results[name][kind]]
            p50, p95 = pct(values, 50), pct(values, 95)
            ratio = (f"{p50 / pct(base, 50):.2f} | {p95 / pct(base, 95):.2f}" if base and name != names[-1]
                     else "- | -")
            stat, limit = goals(knobs)[kind]
            goal = f"{stat} ≤ {'grace + ' if kind == 'forced' else ''}{limit:g} s"
            met = "yes" if p95 <= limit else "NO"
            print(f"| {title} | {name} | {len(values)} | {p50:.3f} | {p95:.3f} | {max(values):.3f} | "
                  f"{min(medians):.3f}–{max(medians):.3f} | {ratio} | {goal} | {met} |")
    print()
    forced = [m for name in names for ms in results[name]["forced"] for m in ms if "kill_after_grace" in m]
    if forced:
        spans = {key: [m[key] for m in forced] for key in ("kill_after_grace", "stopped_after_kill")}
        print(f"Forced cancel: the monitor sent the kill {min(spans['kill_after_grace']):.2f}–"
              f"{max(spans['kill_after_grace']):.2f} s after the grace ran out; the worker recorded Stopped "
              f"{min(spans['stopped_after_kill']):.2f}–{max(spans['stopped_after_kill']):.2f} s after that "
              "(database clocks).")
    gone = [m["horse_gone"] for name in names for ms in results[name]["worker"] for m in ms if m["horse_gone"]]
    if gone:
        print(f"Worker kill: the orphaned work horse exited {min(gone):.2f}–{max(gone):.2f} s after the kill.")
    messages = {m["message"] for name in names for kind in ("horse", "worker") for ms in results[name][kind] for m in ms}
    print("Messages of the killed runs: " + " / ".join(sorted(f'"{m}"' for m in messages)))
    print(f"Trees: {'; '.join(f'{name} = {tree}' for name, tree in trees)}. Seed {seed}; {elapsed:.0f} s in all.")
    print(f"Load average (1, 5, 15 min): before {' '.join(f'{x:.2f}' for x in load_before)}, "
          f"after {' '.join(f'{x:.2f}' for x in load_after)}; {os.cpu_count()} CPUs")
    print(f"Versions: {version_line}")
    print("The forced cancel and the worker kill also wait for the monitor's next round (up to 1 s) and, for the "
          "worker kill, the phase of the last heartbeat: their spread is mostly that.")
    print("Goals (issue 8): cooperative p95 ≤ 1 s, forced ≤ grace + 1 s, horse kill ≤ 1 s, "
          "worker kill ≤ lost-worker delay + 5 s (20 s at the default 15 s).")


if __name__ == "__main__":
    main()
