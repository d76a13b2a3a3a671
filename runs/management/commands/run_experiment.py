"""`manage.py run_experiment`: launch a run of an experiment or a spec file, and optionally watch it live.

    manage.py run_experiment "Iris baseline" --watch
    manage.py run_experiment --spec my-spec.json --user alice --watch
    manage.py run_experiment --attach 12          # watch a run that is already going
    manage.py run_experiment --resume 12 --watch  # a new run that reuses run 12's finished folds

The watcher reads the run's stored events (the same ones the run page gets) from the database, so it needs
nothing but the database. Exit code: 0 completed, 1 failed or stopped, 2 bad input, 130 detached.
"""

import json
import sys
import time
from collections import deque
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.urls import NoReverseMatch

from accounts.quotas import QuotaExceeded
from experiments.models import Experiment
from engine.spec import SpecError
from runs import events, formatting
from runs.control import CannotCancel, cancel_run, launch_run
from runs.models import Run, events_after

POLL_SECONDS = 0.2  # ~5 reads a second: live enough for a terminal, nothing for the database.
LOG_TAIL = 8


class Command(BaseCommand):
    help = "Launch a run of an experiment (id or name) or of a JSON spec file; --watch follows it live."

    def add_arguments(self, parser):
        parser.add_argument("experiment", nargs="?", help="Experiment id or name.")
        parser.add_argument("--spec", metavar="FILE", help='A JSON spec file ("-" reads standard input).')
        parser.add_argument("--name", help="Name of the run (default: the experiment's name or the file's).")
        parser.add_argument("--user", help="Launch as this user (default: the only superuser).")
        parser.add_argument("--watch", action="store_true", help="Follow the run live until it ends.")
        parser.add_argument("--attach", type=int, metavar="RUN_ID", help="Watch an existing run; launch nothing.")
        parser.add_argument("--resume", type=int, metavar="RUN_ID",
                            help="Resume a stopped or failed run: reuse its finished folds, fit only the rest.")

    def handle(self, *args, experiment, spec, name, user, watch, attach, resume=None, **options):
        if resume is not None:
            if experiment or spec or attach is not None:
                raise CommandError("--resume launches from an existing run; give no experiment, spec or --attach "
                                   "with it.", returncode=2)
            run = self.resume(resume, user)
        elif attach is not None:
            if experiment or spec:
                message = "--attach watches an existing run; give no experiment or spec with it."
                raise CommandError(message, returncode=2)
            run = Run.objects.filter(pk=attach).first()
            if run is None:
                raise CommandError(f"There is no run #{attach}.", returncode=2)
        else:
            run = self.launch(experiment, spec, name, user)
        if watch or attach is not None:
            try:
                status = Watcher(run, self.stdout).watch()
            except KeyboardInterrupt:
                # A Ctrl-C before the watcher follows (it is still starting up): nothing to ask, just detach.
                self.stdout.write(detached(run))
                status = None
            self.finish(status)

    # --- Launching ---------------------------------------------------------------------------------------

    def launch(self, experiment_ref, spec_path, name, username):
        if bool(experiment_ref) == bool(spec_path):
            raise CommandError("Give either an experiment (id or name) or --spec FILE.", returncode=2)
        owner = find_user(username)
        experiment, spec = None, None
        if spec_path:
            spec, file_name = read_spec(spec_path)
            name = name or file_name
        else:
            experiment = find_experiment(experiment_ref, owner)
        try:
            run = launch_run(owner, experiment=experiment, spec=spec, name=name)
        except SpecError as e:
            lines = [f"  {field}: {' '.join(messages)}" for field, messages in e.errors.items()]
            raise CommandError("The spec is not valid:\n" + "\n".join(lines), returncode=2) from None
        except QuotaExceeded as e:
            raise CommandError(f"Not launched: {e}", returncode=2) from None
        self.stdout.write(f"Launched run #{run.pk} \"{run.name}\" as {owner.username}; it is queued.")
        try:
            self.stdout.write(f"Watch it at {run.get_absolute_url()} or: manage.py run_experiment --attach {run.pk}")
        except NoReverseMatch:
            pass
        return run

    def resume(self, run_id, username):
        from runs import resume as resuming

        owner = find_user(username)
        source = Run.objects.visible_to(owner).filter(pk=run_id).first()
        if source is None:
            raise CommandError(f"{owner.username} has no run #{run_id}.", returncode=2)
        try:
            run = resuming.resume(source, owner=owner)
        except (resuming.CannotResume, QuotaExceeded) as e:
            raise CommandError(f"Not resumed: {e}", returncode=2) from None
        self.stdout.write(f"Resuming run #{source.pk} as run #{run.pk}: {run.reused_fits} of "
                          f"{run.reused_fits + run.total_fits} fits reused; it is queued.")
        return run

    def finish(self, status):
        if status is None:
            sys.exit(130)  # Detached: the run goes on; the conventional code for an interrupted command.
        if status != Run.Status.COMPLETED:
            # The summary line above has said how it ended (a stop the user asked for is no error to shout
            # about); the exit code still tells a script that the run did not complete.
            raise SystemExit(1)


def detached(run):
    return f"Detached from run #{run.pk}; it keeps going. Watch again: manage.py run_experiment --attach {run.pk}"


def find_user(username):
    User = get_user_model()
    if username:
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"There is no user {username!r}.", returncode=2)
        return user
    superusers = list(User.objects.filter(is_superuser=True, is_active=True).order_by("username"))
    if len(superusers) == 1:
        return superusers[0]
    if not superusers:
        raise CommandError("There is no superuser to launch as; name the user with --user.", returncode=2)
    names = ", ".join(u.username for u in superusers)
    raise CommandError(f"There are several superusers ({names}); choose one with --user.", returncode=2)


def find_experiment(ref, user):
    # Staff may launch anyone's experiment, as the admin allows; others only their own.
    visible = Experiment.objects.visible_to(user)
    found = list(visible.filter(pk=int(ref))) if ref.isdigit() else []
    found = found or list(visible.filter(name=ref).select_related("owner"))
    if not found:
        raise CommandError(f"{user.username} has no experiment {ref!r} (give its id or exact name).", returncode=2)
    if len(found) > 1:
        choices = ", ".join(f"#{e.pk} of {e.owner.username}" for e in found)
        raise CommandError(f"Several experiments are named {ref!r} ({choices}); give the id.", returncode=2)
    return found[0]


def read_spec(path):
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as e:
        raise CommandError(f"Cannot read the spec file: {e.strerror} ({path}).", returncode=2) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise CommandError(f"The spec file is not valid JSON: {e}.", returncode=2) from None
    name = None if path == "-" else Path(path).stem
    # An exported experiment ({"name", "spec"}) works as well as a bare spec.
    if isinstance(data, dict) and isinstance(data.get("spec"), dict):
        name = data.get("name") or name
        data = data["spec"]
    return data, name


# --- Watching ----------------------------------------------------------------------------------------------


class Watcher:
    """Follows one run's events until it ends. Returns the final status, or None when the user detached."""

    def __init__(self, run, stdout):
        from rich.console import Console

        self.run = run
        self.out = stdout
        # Django's OutputWrapper appends a newline to every write, which would break rich's redraws.
        self.console = Console(file=getattr(stdout, "_out", stdout), highlight=False)
        self.after = 0
        self.state = {"status": run.status, "message": "", "progress": 0.0}
        self.logs = deque(maxlen=LOG_TAIL)
        self.ended = False

    def watch(self):
        while True:
            try:
                if self.console.is_terminal:
                    self.follow_live()
                else:
                    self.follow_plain()
                break
            except KeyboardInterrupt:
                # The Ctrl-C may have landed in the middle of a query, leaving the connection in a state
                # the next query (the cancel) would trip on; Django opens a fresh one when it is needed.
                connection.close()
                if not self.ask_cancel():
                    self.console.print(detached(self.run))
                    return None
        try:
            self.run.refresh_from_db()
        except Run.DoesNotExist:
            self.console.print(f"Run #{self.run.pk} was deleted.")
            return Run.Status.FAILED
        self.console.print(self.summary())
        return self.run.status

    def ask_cancel(self):
        """On Ctrl-C: ask whether to cancel. Without a person at the keyboard, just detach."""
        if not sys.stdin.isatty():
            return False
        try:
            answer = input("\nCancel the run? [y/N] ")
        except (EOFError, KeyboardInterrupt):
            return False
        if answer.strip().lower() not in ("y", "yes"):
            return False
        try:
            cancel_run(self.run, by=f"{self.run.owner.get_username()} (command line)")
            self.console.print("Cancelling: the run stops after the current fit.")
        except CannotCancel as e:
            self.console.print(str(e))
        return True  # Keep watching until it has stopped.

    # One poll: read new events, fold them into the state. Returns True if anything arrived.
    def poll(self, on_event=None):
        batch = events_after(self.run.pk, self.after, limit=500)
        for message in batch:
            self.after = message["seq"]
            self.apply(message)
            if on_event:
                on_event(message)
            if events.is_terminal_message(message):
                self.ended = True
        if not batch and not self.ended:
            # Every terminal change writes an event, but a deleted run has none left to write.
            status = Run.objects.filter(pk=self.run.pk).values_list("status", flat=True).first()
            if status is None:
                self.ended = True
            elif status in Run.TERMINAL:
                self.ended = not events_after(self.run.pk, self.after, 1)
        return bool(batch)

    def apply(self, message):
        kind, data, s = message["type"], message["data"], self.state
        if kind in (events.JOB_STATUS, events.JOB_COMPLETED, events.JOB_FAILED):
            s["status"] = data.get("status", s["status"])
            s["message"] = data.get("message", "")
        elif kind == events.JOB_PROGRESS:
            s.update({k: data[k] for k in ("progress", "message", "finished_fits", "total_fits", "eta_seconds",
                                           "eta_low", "eta_high", "epoch", "total_epochs", "best_score",
                                           "latest_score") if k in data})
        elif kind == events.STEP_PROGRESS:
            if data.get("status") == "running" or "step" not in s:
                s["step"] = data.get("label") or data.get("step")
        elif kind == events.FOLD_PROGRESS:
            s["fold"] = f"{data.get('fold')}/{data.get('total')}"
        elif kind == events.FITS_IN_FLIGHT:
            # A parallel run: how many fits run at once, beside the last fold that finished.
            s["running"] = f"{len(data['fits'])} fits running" if data.get("fits") else ""
        elif kind == events.VARIANT_PROGRESS:
            s["variant"] = f"{data.get('index')}/{data.get('total')} {data.get('description', '')}".strip()
            s["branch"] = data.get("branch")
        elif kind == events.JOB_LOG:
            self.logs.append((data.get("level", "info"), data.get("message", "")))

    def follow_plain(self):
        """No terminal (a pipe, a log file): one line per change instead of a redrawn display."""
        last_line = None

        def show(message):
            nonlocal last_line
            kind, data = message["type"], message["data"]
            line = None
            if kind == events.JOB_LOG:
                line = f"  [{data.get('level', 'info')}] {data.get('message', '')}"
            elif kind in (events.JOB_STATUS, events.STEP_PROGRESS, events.VARIANT_PROGRESS):
                line = self.headline()
            if line and line != last_line:
                self.console.print(line, markup=False)
                last_line = line

        while not self.ended:
            if not self.poll(show):
                time.sleep(POLL_SECONDS)

    def follow_live(self):
        from rich.live import Live

        live = Live(self.render(), console=self.console, refresh_per_second=5, transient=False)
        try:  # Not `with`: a Ctrl-C inside start() would skip __exit__ and leave stdout redirected.
            live.start(refresh=True)
            while not self.ended:
                if self.poll():
                    live.update(self.render())
                else:
                    time.sleep(POLL_SECONDS)
            live.update(self.render())
        finally:
            live.stop()

    def headline(self):
        s = self.state
        parts = [f"Run #{self.run.pk} {s['status']}"]
        for key, label in (("step", "step"), ("variant", "variant"), ("fold", "fold")):
            if s.get(key):
                parts.append(f"{label} {s[key]}")
        if s.get("running"):
            parts.append(s["running"])
        if s.get("branch") and s["branch"] != "default":
            parts.append(f"branch {s['branch']}")
        return " · ".join(parts)

    def render(self):
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        s = self.state
        bar = Table.grid(padding=(0, 1))
        done, total = s.get("finished_fits"), s.get("total_fits")
        units = f"{done}/{total} fits" if total else ""
        if s.get("total_epochs"):
            units = f"epoch {s.get('epoch')}/{s['total_epochs']}"
        bar.add_row(
            ProgressBar(total=1.0, completed=float(s.get("progress") or 0), width=40),
            f"{formatting.percent(done, total, s.get('progress')):5.1f}%",
            units,
            f"ETA {eta_text(s)}",
        )
        lines = [Text(self.headline(), style="bold"), bar]
        if s.get("message"):
            lines.append(Text(s["message"], style="dim"))
        styles = {"warning": "yellow", "error": "red", "debug": "dim"}
        lines += [Text(f"  {msg}", style=styles.get(level, "")) for level, msg in self.logs]
        return Group(*lines)

    def summary(self):
        run = self.run
        if run.status == Run.Status.COMPLETED:
            took = f" in {format_seconds(run.duration.total_seconds())}" if run.duration else ""
            best = ""
            if run.best_score is not None:
                best = f" Best {run.metric_label} {run.best_score:.4f}"
                if isinstance(run.summary, dict) and run.summary.get("best_variant"):
                    best += f" ({run.summary['best_variant']})"
                best += "."
            return f"Run #{run.pk} completed{took}.{best}"
        if run.status == Run.Status.FAILED:
            return f"Run #{run.pk} failed: {run.error_message or run.message}"
        if run.status == Run.Status.STOPPED:
            reason = run.message.rstrip(".")
            if reason.lower().startswith("stopped"):  # "Stopped: the fit was killed" -> "the fit was killed"
                reason = reason[len("stopped"):].lstrip(": ")
            kept = " Partial results were kept." if run.partial else ""
            return f"Run #{run.pk} stopped" + (f": {reason}." if reason else ".") + kept
        return f"Run #{run.pk} is {run.status}."


def eta_text(state):
    """"~40 s", or "~2–4 min" while the estimate is unsure (runs.formatting.estimate)."""
    seconds = state.get("eta_seconds")
    return formatting.estimate(seconds, *formatting.wide_range(seconds, state.get("eta_low"), state.get("eta_high")),
                               missing="--")


def format_seconds(seconds):
    return formatting.duration(seconds, missing="--")
