"""The run page in real Chromium, against daphne, a real RQ worker and the monitor.

Screenshots of the running page and of each end state go to test-artifacts/ (one also to docs/).
"""

import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.files.base import ContentFile
from django.db import connection
from playwright.sync_api import expect

from datasets.models import Dataset
from runs import events
from runs.control import launch_run
from runs.models import LogEntry, Run, append_events
from tests.browser.conftest import screenshot
from tests.helpers import DroppingPublisher, start_daphne, start_worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

# About 30 short fits: long enough to watch, short enough for a test.
WATCH_SPEC = {
    "dataset": {"kind": "synthetic", "generator": "classification", "n_samples": 1500, "n_features": 12, "seed": 3},
    "task": "classification",
    "models": [{"estimator": "RandomForestClassifier", "params": {"n_estimators": [15], "max_depth": list(range(2, 12))}}],
    "cv": {"kind": "stratified_kfold", "folds": 3, "shuffle": True, "seed": 1},
    "metric": "accuracy",
}
# Many more fits: still running when a test stops it or restarts the server.
LONG_SPEC = {**WATCH_SPEC, "models": [{"estimator": "RandomForestClassifier",
                                       "params": {"n_estimators": [15], "max_depth": list(range(2, 62))}}]}


def badge(page):
    return page.locator("#run-badge")


def percent(page):
    return float(page.locator("[role=progressbar]").first.get_attribute("aria-valuenow"))


def log_seqs(page):
    return [int(s) for s in page.locator("#log-lines .log-line").evaluate_all("ls => ls.map(l => l.dataset.seq)")]


def assert_log_matches_database(page, run):
    """The lines on the page are exactly the stored ones for their range: nothing lost, nothing twice."""
    seqs = log_seqs(page)
    assert seqs, "no log lines on the page"
    assert len(seqs) == len(set(seqs)), "a log line is shown twice"
    stored = list(LogEntry.objects.filter(run=run, seq__gte=seqs[0], seq__lte=seqs[-1]).values_list("seq", flat=True))
    assert seqs == stored


def test_it_watches_a_run_from_queued_to_completed(daphne_server, browse, owner):
    run = launch_run(owner, spec=WATCH_SPEC, name="Watch me")
    page = browse(owner)
    page.goto(f"{daphne_server.url}/runs/{run.pk}/")
    expect(badge(page)).to_have_text("Queued")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    page.evaluate("window.__sameDocument = true")  # gone if anything reloads the page

    worker = start_worker()
    try:
        expect(badge(page)).to_have_text("Running", timeout=30_000)
        wait_for(lambda: page.locator(".fold-row").count() >= 2, timeout=30, message="fold scores on the page")
        assert 0 < percent(page) < 100
        expect(page.locator(".step-completed").first).to_be_visible()
        assert page.locator("#log-lines .log-line").count() > 0
        assert page.locator("#run-fold").is_visible() and "Fold" in page.locator("#run-fold").inner_text()
        expect(page.locator(".metrics-table").get_by_role("columnheader", name="Accuracy", exact=True)).to_be_visible()
        # The chart is drawn from the points the stream appended: a dot per scored fold.
        wait_for(lambda: page.locator("#metrics-chart circle.chart-dot").count() >= 2, timeout=30, message="chart dots")
        screenshot(page, "run-running")

        expect(badge(page)).to_have_text("Completed", timeout=60_000)
        expect(page.locator("#run-outcome")).to_contain_text("+ refit")  # "Fits 30 + refit", not "Models trained 31"
        expect(page.locator("#run-outcome a", has_text="View results")).to_be_visible()
        expect(page.locator("#conn")).to_have_attribute("data-state", "ended")
        assert percent(page) == 100
        assert page.evaluate("window.__sameDocument") is True
        run.refresh_from_db()
        assert page.locator(".fold-row").count() == min(30, run.fold_metrics.values("variant", "fold").distinct().count())
        # Every scored fold is a chart point, and each is drawn (the run has fewer than the 120 the page keeps).
        fits = run.fold_metrics.values("variant", "fold").distinct().count()
        assert page.locator("#chart-data i").count() == fits
        wait_for(lambda: page.locator("#metrics-chart circle.chart-dot").count() == fits, timeout=10, message="dots")
        assert shown_seq(page) == run.last_seq
        assert_log_matches_database(page, run)
        assert not page.errors
        screenshot(page, "run-completed")
    finally:
        worker.stop()


# Fits slow enough that both processes are seen busy at once.
PARALLEL_SPEC = {**WATCH_SPEC, "n_jobs": 2, "models": [{"estimator": "RandomForestClassifier", "label": "RF",
                                                        "params": {"n_estimators": [300], "max_depth": [4, 8, 16]}}]}


def test_it_shows_the_fits_in_flight_of_a_parallel_run_and_finishes_right(worker, browse, daphne_server, owner):
    run = launch_run(owner, spec=PARALLEL_SPEC, name="Both cores")
    page = browse(owner)
    page.goto(f"{daphne_server.url}/runs/{run.pk}/")
    in_flight = page.locator("#run-in-flight")
    expect(in_flight).to_contain_text("2 fits running", timeout=60_000)
    text = in_flight.inner_text()
    assert re.search(r"RF\(max_depth=4, n_estimators=300\) fold(s)? [1-3]", text), text
    assert re.search(r"on \S+ pid \d+", text), text  # where each runs
    # While several fits run, one fold and one variant chip would say less than the list: they step aside.
    assert not page.locator("#run-fold").is_visible() and not page.locator("#run-variant").is_visible()
    screenshot(page, "run-parallel")

    expect(badge(page)).to_have_text("Completed", timeout=90_000)
    expect(in_flight).to_be_hidden()
    assert percent(page) == 100
    run.refresh_from_db()
    assert run.in_flight == []
    assert run.fold_metrics.values("variant", "fold").distinct().count() == 9
    wait_for(lambda: page.locator(".fold-row").count() == 9, timeout=10, message="every fold's row")
    assert not page.errors


def test_it_stops_a_run_from_the_page(worker, monitor, browse, daphne_server, owner):
    run = launch_run(owner, spec=LONG_SPEC, name="Stop me")
    page = browse(owner)
    page.goto(f"{daphne_server.url}/runs/{run.pk}/")
    wait_for(lambda: page.locator(".fold-row").count() >= 12, timeout=60, message="some finished folds")
    expect(badge(page)).to_have_text("Running")
    screenshot(page, "run-running-long")  # the README picture: `make screenshot`

    page.locator("#stop-form button").click()
    dialog = page.locator("#stop-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Stop this run? Finished folds are kept.")
    dialog.locator("button", has_text="Stop run").click()
    # The Stop answer itself swaps the badge; the worker's Stopped follows.
    expect(badge(page)).to_have_text(re.compile("Cancelling…|Stopped"), timeout=15_000)

    expect(badge(page)).to_have_text("Stopped", timeout=30_000)
    expect(page.locator("#run-outcome")).to_contain_text("Finished folds are kept")
    expect(page.locator("#run-outcome a", has_text="partial results")).to_be_visible()
    assert page.locator(".fold-row").count() >= 12
    assert page.locator("#stop-form").count() == 0
    expect(page.locator(".step-running")).to_have_count(0)  # nothing claims to run any more
    run.refresh_from_db()
    assert run.status == Run.Status.STOPPED and run.partial
    assert not page.errors
    screenshot(page, "run-stopped")


def test_it_reverts_the_badge_when_stopping_fails(browse, daphne_server, owner):
    run = launch_run(owner, spec=WATCH_SPEC, name="Too late")
    run.mark_running("w1")
    page = browse(owner)
    page.goto(f"{daphne_server.url}/runs/{run.pk}/")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    # The run ends but the page has not heard yet (the publish is lost), so it still offers Stop.
    previous = events.use_publisher(DroppingPublisher())
    try:
        run.mark_completed({"best_score": 0.9})
    finally:
        events.use_publisher(previous)
    page.locator("#stop-form button").click()
    page.locator("#stop-dialog button", has_text="Stop run").click()
    expect(page.locator("#stop-error")).to_contain_text("already completed")
    expect(badge(page)).not_to_have_text("Cancelling…")
    # The page then finds the missed event by itself.
    expect(badge(page)).to_have_text("Completed", timeout=15_000)


def test_it_shows_a_failed_run_without_its_traceback(worker, browse, daphne_server, owner):
    dataset = Dataset(owner=owner, name="Vanishing", kind=Dataset.Kind.CSV)
    dataset.file.save("vanishing.csv", ContentFile(b"a,b,target\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n"), save=False)
    dataset.describe_csv(dataset.file)
    dataset.save()
    spec = {**WATCH_SPEC, "dataset": {"kind": "csv", "id": dataset.pk}, "target": "target"}
    run = launch_run(owner, spec=spec, name="Doomed")
    dataset.file.storage.delete(dataset.file.name)  # the worker will not find it
    page = browse(owner)
    page.goto(f"{daphne_server.url}/runs/{run.pk}/")
    expect(badge(page)).to_have_text("Failed", timeout=30_000)
    outcome = page.locator("#run-outcome")
    expect(outcome).to_contain_text("Failed")
    expect(outcome).to_contain_text("Load data failed: The file of uploaded dataset")
    expect(outcome.locator(".traceback")).to_have_count(0)  # staff only (tests/test_failures.py)
    expect(page.locator(".step-failed").first).to_be_visible()
    assert not page.errors
    screenshot(page, "run-failed")


def test_it_catches_up_after_a_reload(worker, browse, daphne_server, owner):
    run = launch_run(owner, spec=WATCH_SPEC, name="Reload me")
    page = browse(owner)
    page.goto(f"{daphne_server.url}/runs/{run.pk}/")
    wait_for(lambda: page.locator(".fold-row").count() >= 1, timeout=60, message="a first fold")
    page.reload()
    expect(page.locator("#conn")).to_have_attribute("data-state", re.compile("live|ended"))
    assert page.locator(".fold-row").count() >= 1
    expect(badge(page)).to_have_text("Completed", timeout=60_000)
    run.refresh_from_db()
    assert shown_seq(page) == run.last_seq
    assert_log_matches_database(page, run)


def test_it_reconnects_and_catches_up_after_a_server_restart(worker, browse, daphne_server, owner):
    run = launch_run(owner, spec=LONG_SPEC, name="Restart me")
    page = browse(owner)
    page.goto(f"{daphne_server.url}/runs/{run.pk}/")
    wait_for(lambda: page.locator(".fold-row").count() >= 1, timeout=60, message="a first fold")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")

    port = int(daphne_server.url.rsplit(":", 1)[1])
    daphne_server.stop()
    expect(page.locator("#conn")).to_have_attribute("data-state", re.compile("reconnecting|offline"))
    seen_before = Run.objects.get(pk=run.pk).last_seq
    wait_for(lambda: Run.objects.get(pk=run.pk).last_seq > seen_before + 20, timeout=60,
             message="the run to move on while the server is down")
    screenshot(page, "run-reconnecting")

    restarted = start_daphne(port)
    try:
        expect(page.locator("#conn")).to_have_attribute("data-state", re.compile("live|ended"), timeout=30_000)
        expect(badge(page)).to_have_text("Completed", timeout=120_000)
        run.refresh_from_db()
        assert shown_seq(page) == run.last_seq
        assert_log_matches_database(page, run)
        assert not page.errors
    finally:
        restarted.stop()


def test_it_polls_when_the_socket_cannot_connect(worker, browse, daphne_server, owner):
    # A network that refuses WebSockets: every socket fails as an abnormal closure.
    no_sockets = """
      window.WebSocket = class { constructor() { setTimeout(() => { this.onerror && this.onerror(new Event('error'));
        this.onclose && this.onclose({code: 1006}); }, 10); } send() {} close() {} };
    """
    run = launch_run(owner, spec=WATCH_SPEC, name="Poll me")
    page = browse(owner, init_script=no_sockets)
    page.goto(f"{daphne_server.url}/runs/{run.pk}/")
    expect(page.locator("#rw-poller")).to_have_count(1, timeout=10_000)
    expect(badge(page)).to_have_text("Completed", timeout=90_000)
    expect(page.locator("#rw-poller")).to_have_count(0)  # polling stops at the end
    run.refresh_from_db()
    # Everything the socket would have brought came by polling: every fold, the full bar, the last event.
    folds = run.fold_metrics.values("variant", "fold").distinct().count()
    assert folds >= 1
    wait_for(lambda: page.locator(".fold-row").count() == min(30, folds), timeout=10, message="every fold's row")
    assert percent(page) == 100
    assert shown_seq(page) == run.last_seq
    assert_log_matches_database(page, run)


def shown_seq(page):
    """The events counter as a number: the page formats it for the reader's locale (1,234)."""
    return int(re.sub(r"\D", "", page.locator("#conn-seq").inner_text()))


def off_loop(fn, *args):
    """Run `fn` in a plain thread: Playwright keeps an event loop in this one, where async_to_sync (used to
    publish events) refuses to run."""

    def call():
        try:
            return fn(*args)
        finally:
            connection.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(call).result()


def emit_logs(run, count, start=0):
    return off_loop(_emit_logs, run, count, start)


def _emit_logs(run, count, start):
    rows = append_events(run, [(events.JOB_LOG, {"level": "info", "message": f"line {start + i}", "fold": 1})
                                    for i in range(count)])
    LogEntry.objects.bulk_create(LogEntry(run=run, seq=e.seq, message=e.data["message"], fold=1) for e in rows)
    return rows[-1].seq


def test_it_pauses_log_autoscroll_while_the_user_reads(browse, daphne_server, owner):
    # The engine's log volume varies; this test writes the lines itself, as the reporter would.
    run = launch_run(owner, spec=WATCH_SPEC, name="Chatty")
    run.mark_running("w1")
    page = browse(owner, viewport={"width": 1200, "height": 900})
    page.goto(f"{daphne_server.url}/runs/{run.pk}/")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    scroll = page.locator("#log-scroll")
    at_bottom = "el => el.scrollHeight - el.scrollTop - el.clientHeight < 8"

    last = emit_logs(run, 120)
    expect(page.locator(f'.log-line[data-seq="{last}"]')).to_have_count(1)
    wait_for(lambda: scroll.evaluate(at_bottom), timeout=5, message="the log to follow new lines")

    scroll.evaluate("el => { el.scrollTop = 0; el.dispatchEvent(new Event('scroll')); }")
    last = emit_logs(run, 30, start=120)
    expect(page.locator(f'.log-line[data-seq="{last}"]')).to_have_count(1)
    assert scroll.evaluate("el => el.scrollTop") == 0  # paused: the reader keeps their place
    expect(page.locator("#log-jump")).to_be_visible()

    scroll.evaluate("el => { el.scrollTop = el.scrollHeight; el.dispatchEvent(new Event('scroll')); }")
    last = emit_logs(run, 30, start=150)
    expect(page.locator(f'.log-line[data-seq="{last}"]')).to_have_count(1)
    wait_for(lambda: scroll.evaluate(at_bottom), timeout=5, message="the log to follow again")
    expect(page.locator("#log-jump")).to_be_hidden()

    # The DOM stays bounded while following; older lines are a click away.
    last = emit_logs(run, 600, start=180)
    expect(page.locator(f'.log-line[data-seq="{last}"]')).to_have_count(1)
    assert page.locator("#log-lines .log-line").count() <= 500
    older = page.locator("#log-older .load-older")
    expect(older).to_be_visible()
    first_before = log_seqs(page)[0]
    older.click()
    wait_for(lambda: log_seqs(page)[0] < first_before, timeout=10, message="older lines loaded on top")
    seqs = log_seqs(page)
    assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))

    # Filters: a context tag, a level and text.
    page.locator("#log-lines .tag", has_text="fold 1").first.click()
    expect(page.locator("#log-tag-filter")).to_be_visible()
    page.fill("#log-search", "line 300")
    expect(page.locator("#log-lines .log-line:visible")).to_have_count(1)
    page.fill("#log-search", "")
    page.locator("#log-tag-filter .clear-tag").click()
    page.locator(".log-filters input[value=info]").uncheck()
    expect(page.locator("#log-lines .log-line:visible")).to_have_count(0)
    assert not page.errors
