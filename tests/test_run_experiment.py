"""`manage.py run_experiment`: launching from the command line, and watching a run live until it ends."""

import json
import os
import pty
import re
import select
import signal
import subprocess
import time

import pytest
from django.core.management import CommandError, call_command

from runs.control import cancel_run, launch_run
from runs.worker.scheduling import get_queue
from runs.models import Run
from tests.helpers import ROOT, child_env, manage, wait_for
from tests.runwork import MANY_FITS_SPEC, status_of, wait_for_fitting, wait_for_status


def run_command(*args):
    try:
        call_command("run_experiment", *args)
    except CommandError as e:
        return e
    return None


# --- Launching ---------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_launches_an_experiment_by_name(owner, experiment, capsys, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert run_command("Iris baseline", "--user", "alice") is None

    run = Run.objects.get()
    assert (run.owner, run.experiment, run.status) == (owner, experiment, Run.Status.QUEUED)
    assert get_queue().job_ids == [run.rq_job_id]
    out = capsys.readouterr().out
    assert f'Launched run #{run.pk} "Iris baseline" as alice; it is queued.' in out
    assert f"/runs/{run.pk}/" in out


@pytest.mark.django_db
def test_it_launches_an_experiment_by_id_as_the_only_superuser(staff, experiment):
    assert run_command(str(experiment.pk)) is None
    assert Run.objects.get().owner == staff  # Staff may launch anyone's experiment, as in the admin.


@pytest.mark.django_db
def test_it_launches_a_spec_file(owner, iris_spec, tmp_path):
    path = tmp_path / "iris-quick.json"
    path.write_text(json.dumps(iris_spec))

    assert run_command("--spec", str(path), "--user", "alice") is None

    run = Run.objects.get()
    assert (run.name, run.experiment, run.spec["dataset"]) == ("iris-quick", None, {"kind": "builtin", "name": "iris"})


@pytest.mark.django_db
def test_it_shows_field_errors_of_a_bad_spec_and_exits_2(owner, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"dataset": {"kind": "builtin", "name": "nope"}, "models": [{"estimator": "Magic"}]}))

    error = run_command("--spec", str(path), "--user", "alice")

    assert error.returncode == 2
    message = str(error)
    assert message.startswith("The spec is not valid:\n")
    assert "  dataset.name: Unknown dataset. Choose one of: iris" in message
    assert not Run.objects.exists()


@pytest.mark.system
def test_it_exits_2_for_a_bad_spec_from_the_shell(transactional_db, owner, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"dataset": {"kind": "builtin", "name": "iris"}, "cv": {"folds": 1}}')

    done = subprocess.run(
        manage("run_experiment", "--spec", str(path), "--user", "alice"),
        cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=60,
    )

    assert done.returncode == 2
    assert "The spec is not valid:" in done.stderr
    assert "cv.folds: Must be between 2 and 50." in done.stderr


@pytest.mark.django_db
@pytest.mark.parametrize(
    "content, expected",
    [("{not json", "The spec file is not valid JSON"), (None, "Cannot read the spec file: No such file")],
)
def test_it_rejects_an_unreadable_spec_file(owner, tmp_path, content, expected):
    path = tmp_path / "spec.json"
    if content is not None:
        path.write_text(content)

    error = run_command("--spec", str(path), "--user", "alice")

    assert error.returncode == 2
    assert expected in str(error)


@pytest.mark.django_db
def test_it_does_not_launch_another_users_experiment(owner, outsider, experiment):
    error = run_command("Iris baseline", "--user", "mallory")

    assert error.returncode == 2
    assert str(error) == "mallory has no experiment 'Iris baseline' (give its id or exact name)."
    assert not Run.objects.exists()


@pytest.mark.django_db
def test_it_needs_a_user_when_there_is_no_single_superuser(owner, experiment):
    error = run_command("Iris baseline")
    assert (error.returncode, str(error)) == (2, "There is no superuser to launch as; name the user with --user.")

    assert str(run_command("Iris baseline", "--user", "nobody")) == "There is no user 'nobody'."


@pytest.mark.django_db
def test_it_wants_an_experiment_or_a_spec(owner):
    assert str(run_command("--user", "alice")) == "Give either an experiment (id or name) or --spec FILE."


# --- Watching ----------------------------------------------------------------------------------------------


def test_it_watches_a_run_to_completion(worker, owner, experiment):
    done = subprocess.run(
        manage("run_experiment", "Iris baseline", "--user", "alice", "--watch"),
        cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=120,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    run = Run.objects.get()
    assert run.status == Run.Status.COMPLETED
    assert f"Run #{run.pk} running" in done.stdout  # A status line while it ran...
    assert f"Run #{run.pk} completed in" in done.stdout  # ...and the final status.


def test_it_watches_in_process_and_reports_the_best_score(worker, owner, experiment, capsys):
    assert run_command("Iris baseline", "--user", "alice", "--watch") is None

    run = Run.objects.get()
    out = capsys.readouterr().out
    assert run.status == Run.Status.COMPLETED
    assert f"Run #{run.pk} completed in" in out
    assert f"Best Accuracy {run.best_score:.4f}" in out


def read_until(process, text, timeout):
    """What the process wrote to its stdout pipe until `text` appeared in it."""
    got, deadline = b"", time.monotonic() + timeout
    fd = process.stdout.fileno()
    while text.encode() not in got:
        left = deadline - time.monotonic()
        assert left > 0, f"{text!r} never appeared; got {got.decode(errors='replace')!r}"
        if select.select([fd], [], [], left)[0]:
            chunk = os.read(fd, 4096)
            assert chunk, f"the process ended; got {got.decode(errors='replace')!r}"
            got += chunk
    return got.decode()


def ctrl_c_default():
    # A suite started in the background by a non-interactive shell inherits SIGINT ignored, and Python then
    # installs no KeyboardInterrupt handler: the command must get Ctrl-C as a user's terminal would send it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_it_detaches_on_ctrl_c_without_a_terminal(worker, owner, tmp_path):
    path = tmp_path / "many.json"
    path.write_text(json.dumps(MANY_FITS_SPEC))
    process = subprocess.Popen(
        manage("run_experiment", "--spec", str(path), "--user", "alice", "--watch"),
        cwd=ROOT, env=child_env(), stdin=subprocess.DEVNULL,  # Nobody there to answer a question.
        preexec_fn=ctrl_c_default,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    run = wait_for(lambda: Run.objects.first(), timeout=30, message="the run")
    wait_for_fitting(run)
    # The command follows the run once it prints a status line of its own (on a loaded machine it may still
    # be starting up when the run is already fitting).
    seen = read_until(process, f"Run #{run.pk} ", timeout=30)

    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=30)
    out = seen + out

    assert process.returncode == 130
    assert "Cancel the run?" not in out
    assert f"Detached from run #{run.pk}; it keeps going." in out
    assert status_of(run) == Run.Status.RUNNING

    cancel_run(run)  # Free the worker rather than make its shutdown wait for 200 fits.
    wait_for_status(run, Run.Status.STOPPED)


def test_it_asks_on_ctrl_c_and_cancels_on_yes(worker, owner):
    run = launch_run(owner, spec=MANY_FITS_SPEC, name="Ask me")
    main, child = pty.openpty()
    process = subprocess.Popen(
        manage("run_experiment", "--attach", str(run.pk)),
        cwd=ROOT, env=child_env(TERM="xterm", COLUMNS="100"), stdin=child, stdout=child, stderr=child,
        preexec_fn=ctrl_c_default,
    )
    os.close(child)
    screen = Screen(main)
    try:
        wait_for_fitting(run)
        # Not just the first frame ("0.0%  ETA --", drawn while the display is still starting, where a
        # Ctrl-C used to land on a loaded machine): wait until the running display shows fits done.
        wait_for(lambda: screen.read() or re.search(r"[1-9]\d*/200 fits", screen.text), timeout=60,
                 message="the live display to show progress")

        process.send_signal(signal.SIGINT)
        wait_for(lambda: screen.read() or "Cancel the run? [y/N]" in screen.text, timeout=30, message="the prompt")
        assert "Cancel the run? [y/N]" in screen.text
        os.write(main, b"y\n")

        wait_for(lambda: screen.read() or process.poll() is not None, timeout=60, message="the command to end")
        screen.drain()
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        os.close(main)

    assert process.returncode == 1
    assert status_of(run) == Run.Status.STOPPED
    assert f"Run #{run.pk} stopped" in screen.text
    assert "CommandError" not in screen.text  # a stop the user asked for is said calmly


class Screen:
    """Collects what a command writes to its pseudo-terminal."""

    def __init__(self, fd):
        self.fd = fd
        self.text = ""

    def read(self, timeout=0.1):
        """Reads what is there; returns False so `wait_for(lambda: screen.read() or cond)` keeps polling."""
        if select.select([self.fd], [], [], timeout)[0]:
            try:
                self.text += os.read(self.fd, 65536).decode(errors="replace")
            except OSError:
                pass  # The command exited and closed its side.
        return False

    def drain(self):
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and select.select([self.fd], [], [], 0.1)[0]:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.text += chunk.decode(errors="replace")
