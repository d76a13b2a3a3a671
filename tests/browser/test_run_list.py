"""The runs list in real Chromium, against daphne, a real RQ worker and the monitor: rows move live on one
socket, a run is stopped and re-run from its row, a queued run shows its place, the list filters by status."""

import re

import pytest
from playwright.sync_api import expect

from accounts.models import Quota
from experiments.models import Experiment
from runs.control import launch_run
from runs.models import Run
from tests.browser.conftest import screenshot
from tests.browser.test_run_page import LONG_SPEC, WATCH_SPEC
from tests.conftest import IRIS_SPEC
from tests.helpers import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


# Records each notification the page shows, then shows it: the browser's own Notification, observed.
SPY_NOTIFICATIONS = """
window.__notes = [];
(function () {
  var Real = window.Notification;
  function Spy(title, options) { window.__notes.push({ title: title, body: (options || {}).body }); return new Real(title, options); }
  Object.defineProperty(Spy, "permission", { get: function () { return Real.permission; } });
  Spy.requestPermission = function () { return Real.requestPermission.apply(Real, arguments); };
  window.Notification = Spy;
})();
"""


def row(page, run):
    return page.locator(f"#run-row-{run.pk}")


def row_percent(page, run):
    return float(row(page, run).locator("[role=progressbar]").get_attribute("aria-valuenow"))


def test_it_watches_stops_filters_and_reruns_from_the_list(worker, monitor, browse, daphne_server, owner):
    experiment = Experiment.objects.create(owner=owner, name="Elsewhere", spec=IRIS_SPEC)
    # Four runs of one user in RQ at once: this is about the worker's line, not the user's running slots.
    Quota.objects.create(user=owner, running=4)
    # One worker: the long run takes it, the two short ones wait in line.
    long_run = launch_run(owner, spec=LONG_SPEC, name="Long sweep")
    first = launch_run(owner, spec=IRIS_SPEC, name="Quick iris")
    second = launch_run(owner, spec=IRIS_SPEC, name="Quick iris again")
    wait_for(lambda: Run.objects.get(pk=long_run.pk).status == "running", timeout=60, message="the long run starts")

    page = browse(owner, init_script=SPY_NOTIFICATIONS)
    page.context.grant_permissions(["notifications"], origin=daphne_server.url)
    page.goto(daphne_server.url + "/")
    page.evaluate("window.__notReloaded = true")
    # Notifications: asked only on the user's click, in context.
    assert page.evaluate("window.__notes.length") == 0
    page.locator("#notify-btn").click()
    expect(page.locator("#notify-status")).to_contain_text("You will get a notification when a run shown here ends")
    expect(row(page, second).locator(".run-position")).to_have_text("2nd in queue")
    expect(row(page, first).locator(".run-position")).to_have_text("1st in queue")
    expect(row(page, first).locator(".run-waiting")).to_contain_text("busy with run")

    # The long run's row moves, over the one socket, with no reload.
    expect(page.locator("#runs-table")).to_have_attribute("data-live", "socket")
    live = row(page, long_run)
    expect(live.locator(".live-label")).to_have_text("LIVE")
    expect(live.locator(".row-step")).to_have_text(re.compile(r"Step \d of 5: "))
    start = row_percent(page, long_run)
    wait_for(lambda: row_percent(page, long_run) > start, timeout=60, message="the long run's row to move")
    expect(live.locator(".row-timing")).to_contain_text(re.compile(r"Started \d+[smh].* ago · ETA"))

    # A run launched in another tab appears at the top.
    other_tab = browse(owner)
    other_tab.goto(daphne_server.url + "/")
    other_tab.select_option("#launch-experiment", str(experiment.pk))
    other_tab.locator(".launch-form button").click()
    elsewhere = wait_for(lambda: Run.objects.filter(experiment=experiment).first(), timeout=30, message="the launch")
    # Generous: on a loaded machine with SQLite the launch, the feed's read and the render queue behind the
    # long run's writes; only a row that never comes fails this.
    expect(page.locator("#runs-rows .run-row").first).to_have_id(f"run-row-{elsewhere.pk}", timeout=60_000)
    expect(page.locator("#runs-rows .run-row").first).to_contain_text("Elsewhere")
    expect(row(page, elsewhere).locator(".run-position")).to_have_text("3rd in queue")
    screenshot(page, "runs-list-live")

    # Stop the long run from its row: the dialog, "Cancelling…" at once, then Stopped.
    live.locator(".row-stop button").click()
    dialog = page.locator("#stop-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Stop this run? Finished folds are kept.")
    dialog.locator("button", has_text="Stop run").click()
    expect(live.locator(".badge")).to_have_text(re.compile("Cancelling…|Stopped"), timeout=5_000)
    expect(live.locator(".badge")).to_have_text("Stopped", timeout=60_000)
    expect(live.locator(".live-label")).to_have_count(0)
    # The queued runs then run and settle without a reload.
    for run in (first, second, elsewhere):
        expect(row(page, run).locator(".badge")).to_have_text("Completed", timeout=120_000)
    expect(row(page, first).locator("td[data-label='Best score']")).to_have_text(re.compile(r"\d\.\d{4}"))
    assert page.evaluate("window.__notReloaded") is True
    titles = [n["title"] for n in page.evaluate("window.__notes")]
    assert re.search(rf"Quick iris #{first.pk}: Completed · best Accuracy \d\.\d{{4}}", " | ".join(titles)), titles
    assert len(titles) == 4  # one per run that ended while watched
    assert Run.objects.get(pk=long_run.pk).status == "stopped"

    # Filter by status, in the URL.
    page.select_option("#id_status", "completed")
    page.locator("#list-filters button", has_text="Filter").click()
    expect(page).to_have_url(re.compile(r"status=completed"))
    expect(page.locator("#runs-rows .run-row")).to_have_count(3)
    expect(row(page, long_run)).to_have_count(0)

    # Re-run a finished run from its row: the same path as the results page.
    row(page, first).locator(".row-rerun button").click()
    rerun = wait_for(lambda: Run.objects.filter(rerun_of=first).first(), timeout=30, message="the re-run")
    expect(page).to_have_url(re.compile(rf"/runs/{rerun.pk}/$"))
    assert rerun.spec == Run.objects.get(pk=first.pk).spec
    assert not page.errors


def test_it_notifies_once_when_a_watched_run_page_ends(worker, browse, daphne_server, owner):
    run = launch_run(owner, spec=WATCH_SPEC, name="Notify me")
    page = browse(owner, init_script=SPY_NOTIFICATIONS)
    page.context.grant_permissions(["notifications"], origin=daphne_server.url)
    page.goto(f"{daphne_server.url}/runs/{run.pk}/")
    expect(page.locator("#notify-btn")).to_have_text("Notify me when it ends")
    page.locator("#notify-btn").click()
    expect(page.locator("#notify-status")).to_contain_text("when this run ends")
    expect(page.locator("#run-badge")).to_have_text("Completed", timeout=120_000)
    wait_for(lambda: page.evaluate("window.__notes.length") >= 1, timeout=20, message="the notification")
    notes = page.evaluate("window.__notes")
    assert len(notes) == 1 and re.fullmatch(r"Notify me #\d+: Completed · best Accuracy \d\.\d{4}", notes[0]["title"])
    # The choice is remembered: a page of a run that has ended offers nothing and shows nothing more.
    page.reload()
    expect(page.locator("#notify-btn")).to_have_count(0)
    assert page.evaluate("window.__notes.length") == 0 and not page.errors


def test_it_polls_the_running_rows_without_a_websocket(worker, browse, daphne_server, owner):
    run = launch_run(owner, spec=LONG_SPEC, name="Polled")
    wait_for(lambda: Run.objects.get(pk=run.pk).status == "running", timeout=60, message="the run starts")
    page = browse(owner, init_script="delete window.WebSocket;")
    requests = []
    page.on("request", lambda r: requests.append(r.url) if "/runs/rows/" in r.url else None)
    page.goto(daphne_server.url + "/")
    expect(page.locator("#live-status")).to_have_text(
        "This browser has no WebSocket; checking the running runs every 5 s.")
    start = row_percent(page, run)
    wait_for(lambda: row_percent(page, run) > start, timeout=60, message="the polled row to move")
    assert requests and all(f"ids={run.pk}" in url for url in requests)  # only the running row is asked for
    assert not page.errors
