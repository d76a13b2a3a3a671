"""The run page tells one story in real Chromium: clocks tick as the server formats them, the estimate ends
with the running, and the polling fallback says it is live. No worker: the tests move the run themselves,
as the worker would, so nothing here depends on how fast the machine fits models."""

import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from runs import events, formatting
from runs.control import launch_run
from runs.models import Run, RunStep, append_event
from tests.browser.test_run_page import WATCH_SPEC, badge, emit_logs, off_loop
from tests.helpers import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def launch(*args, **kwargs):
    """launch_run off Playwright's loop, so its Queued event is published, not refused."""
    return off_loop(lambda: launch_run(*args, **kwargs))

# Half seconds round up in both (Python's round() would not), and the unit changes at 60 s and 1 h.
FORMAT_CASES = [0, 0.4, 0.5, 2.5, 12.3, 59.4, 59.5, 60, 75, 599.5, 3599.4, 3599.5, 3600, 3720, 86399, 90061]


def running_run(owner, **fields):
    run = launch(owner, spec=WATCH_SPEC, name="Story")
    off_loop(run.mark_running, "w1")
    if fields:
        Run.objects.filter(pk=run.pk).update(**fields)
    return Run.objects.get(pk=run.pk)


def test_it_formats_durations_in_the_browser_as_the_server_does(browse, daphne_server, owner):
    run = running_run(owner)
    page = browse(owner)
    page.goto(f"{daphne_server.url}/runs/{run.pk}/")
    in_browser = page.evaluate("values => values.map(v => window.Runwatch.formatDuration(v))", FORMAT_CASES)
    assert in_browser == [formatting.duration(v) for v in FORMAT_CASES]


def test_it_ticks_the_running_step_from_its_start(browse, daphne_server, owner):
    run = running_run(owner)
    RunStep.objects.filter(run=run, name="load_data").update(status="running",
                                                             started_at=timezone.now() - timezone.timedelta(seconds=65))
    page = browse(owner)
    page.goto(f"{daphne_server.url}/runs/{run.pk}/")
    clock = page.locator('.step-running[data-step="load_data"] .step-duration')
    first = clock.inner_text()
    # What the browser shows is the server's format of some moment since the step started.
    server_texts = {formatting.duration(s) for s in range(60, 600)}
    assert first in server_texts
    wait_for(lambda: clock.inner_text() != first, timeout=15, message="the step's clock to tick")
    assert clock.inner_text() in server_texts
    assert re.fullmatch(r"1 min \d\d s", clock.inner_text())
    assert not page.errors


def test_it_shows_no_estimate_once_the_run_is_cancelling_or_stopped(browse, daphne_server, owner):
    run = running_run(owner, eta_seconds=40, finished_fits=5, total_fits=30, current_fold=2, total_folds=3,
                      current_variant=2, total_variants=10)
    page = browse(owner)
    page.goto(f"{daphne_server.url}/runs/{run.pk}/")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    eta = page.locator(".js-eta")
    expect(eta).to_have_text(re.compile(r"~\d+ s"))
    expect(page.locator("#run-fold")).to_be_visible()

    off_loop(run.mark_cancelling)
    expect(badge(page)).to_have_text("Cancelling…")
    expect(eta).to_have_text("—")
    # The worker finishes its current fit and reports progress with an estimate: still none shown.
    off_loop(append_event, run, events.JOB_PROGRESS, {"progress": 0.2, "message": "Finishing the current fit",
                                                       "finished_fits": 6, "total_fits": 30, "eta_seconds": 38,
                                                       "elapsed_seconds": 12})
    expect(page.locator("#progress-message")).to_have_text("Finishing the current fit")
    expect(eta).to_have_text("—")

    off_loop(run.mark_stopped)
    expect(badge(page)).to_have_text("Stopped")
    expect(page.locator("#conn")).to_have_attribute("data-state", "ended")
    expect(eta).to_have_text("—")
    expect(page.locator("#run-fold")).to_be_hidden()
    expect(page.locator("#run-variant")).to_be_hidden()
    assert "ETA" not in page.locator("#run-progress").inner_text()
    assert not page.errors


def test_it_says_live_polling_when_the_socket_is_blocked(browse, daphne_server, owner):
    run = running_run(owner)
    page = browse(owner)
    # A network that refuses the WebSocket: every attempt is closed at once.
    page.route_web_socket(re.compile(r"/ws/"), lambda ws: ws.close(code=1011, reason="blocked"))
    page.goto(f"{daphne_server.url}/runs/{run.pk}/")
    conn = page.locator("#conn")
    expect(conn).to_have_attribute("data-state", "polling", timeout=20_000)
    expect(conn.locator(".conn-label")).to_have_text("Live (polling)")
    # ...and it is live: new lines arrive through the poll.
    last = emit_logs(run, 3)
    expect(page.locator(f'.log-line[data-seq="{last}"]')).to_have_count(1, timeout=20_000)
    expect(conn.locator(".conn-label")).to_have_text("Live (polling)")
    off_loop(run.mark_stopped)
    expect(badge(page)).to_have_text("Stopped", timeout=20_000)
    expect(conn.locator(".conn-label")).to_have_text("Finished")
    assert not page.errors


def test_it_keeps_the_stop_honest_when_the_run_ends_while_the_dialog_is_open(browse, daphne_server, owner):
    run = running_run(owner)
    page = browse(owner)
    page.goto(f"{daphne_server.url}/runs/{run.pk}/")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    page.locator("#stop-form button").click()
    expect(page.locator("#stop-dialog")).to_be_visible()
    # The run ends while the user reads the question; the stream swaps in the new header behind the dialog.
    off_loop(run.mark_completed, {"best_score": 0.9})
    expect(page.locator("#run-outcome")).to_contain_text("Completed")
    page.locator("#stop-dialog button", has_text="Stop run").click()
    expect(page.locator("#stop-error")).to_contain_text("already completed")
    expect(badge(page)).to_have_text("Completed")  # not a "Cancelling…" that nothing will ever undo
    run.refresh_from_db()
    assert run.status == Run.Status.COMPLETED
    assert not page.errors
