"""A completed run's results in real Chromium, against daphne and a real RQ worker: sort, chart a row,
download and verify the bundle, promote it, re-run, clone and edit, compare; every page fits a phone."""

import hashlib
import re

import pytest
from django.conf import settings
from playwright.sync_api import expect

from experiments.models import RegisteredModel
from runs.control import launch_run
from runs.models import Run
from tests.browser.conftest import screenshot
from tests.helpers import serve_daphne, session_key_for, start_worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def stack(tmp_path):
    """daphne and a worker sharing one MEDIA_ROOT, so the page serves the bundle the worker wrote."""
    media = tmp_path / "media"
    media.mkdir()
    server = serve_daphne(MEDIA_ROOT=media)
    worker = start_worker(MEDIA_ROOT=media)
    yield server
    worker.stop()
    server.stop()


def open_page(chromium, server, user, width=1400):
    context = chromium.new_context(viewport={"width": width, "height": 1000}, accept_downloads=True)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session_key_for(user), "url": server.url}])
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    return page


def completed(run_id):
    def check():
        status = Run.objects.values_list("status", flat=True).get(pk=run_id)
        assert status not in (Run.Status.FAILED, Run.Status.STOPPED), f"run {run_id} ended {status}"
        return status == Run.Status.COMPLETED
    return check


def fits_the_phone(page):
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_it_goes_from_results_to_the_registry_and_a_comparison(chromium, stack, owner, iris_spec):
    run = launch_run(owner, spec=iris_spec, name="Iris flow")
    wait_for(completed(run.pk), timeout=120, message="the run to complete")
    run.refresh_from_db()
    page = open_page(chromium, stack, owner)

    # 1. The completed run's results.
    page.goto(f"{stack.url}/runs/{run.pk}/results/")
    expect(page.locator("h1")).to_contain_text("Results: Iris flow")
    board = page.locator("table.leaderboard")
    assert board.locator("tbody tr").count() == 2

    # 2. Sort by two columns: each header link sorts by its metric; the sorted column says so.
    labels = board.locator("thead th.num a").all_text_contents()  # as written, not as CSS cases it
    second, third = labels[1].split()[0], labels[2].split()[0]
    board.locator("thead th.num a", has_text=second).click()
    expect(page).to_have_url(re.compile(r"sort=\w+&dir=better"))
    expect(board.locator("thead th[aria-sort]")).to_contain_text(second)
    page.locator("table.leaderboard thead th.num a", has_text=third).click()
    expect(page.locator("table.leaderboard thead th[aria-sort]")).to_contain_text(third)

    # 3. Chart another row's folds: htmx swaps the chart alone (the page is not reloaded). The sort above
    # loaded a new page: until htmx has processed it (its script is deferred), a click on a chart link is a
    # plain navigation, so wait for the page's load event first.
    page.wait_for_load_state("load")
    page.wait_for_function("() => window.htmx !== undefined")
    page.evaluate("window.__samePage = true")
    rows = page.locator("table.leaderboard tbody tr")
    target = rows.nth(1) if rows.nth(0).locator("[aria-current]").count() else rows.nth(0)
    label = target.locator(".variant-desc").inner_text()
    target.locator("a.row-chart").click()
    expect(page.locator("#fold-chart-h")).to_contain_text(label)
    expect(page.locator("#fold-chart svg.fold-svg circle")).to_have_count(3)
    assert page.evaluate("window.__samePage === true")
    assert "row=" in page.url

    # 4. Download the bundle; its SHA-256 is the one shown, and the copy button copies it.
    shown = page.locator("#model-sha").inner_text().strip()
    with page.expect_download() as info:
        page.locator("#export-model").click()
    data = open(info.value.path(), "rb").read()
    assert hashlib.sha256(data).hexdigest() == shown == run.model_sha256
    page.locator(".copy-btn").click()
    expect(page.locator(".copy-btn")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == shown

    # 5. Promote it, then find it on the Models page.
    page.locator("#promote-name").fill("iris-flow-v1")
    page.locator("#promote-btn").click()
    expect(page.locator("#promoted")).to_contain_text("Promoted as iris-flow-v1")
    page.locator("nav .topnav a", has_text="Models").click()
    expect(page.locator("tr.model-row")).to_contain_text("iris-flow-v1")
    model = RegisteredModel.objects.get(name="iris-flow-v1")
    assert model.sha256 == shown

    # 6. Clone and edit opens the wizard filled from this run's spec: its dataset, its model and parameters
    # (a blank wizard ticks none) and its name; then Re-run (a new run of the same spec, which completes).
    page.goto(f"{stack.url}/runs/{run.pk}/results/")
    expect(page.locator("#clone-link")).to_have_attribute("href", f"/experiments/new/?from_run={run.pk}")
    page.locator("#clone-link").click()
    expect(page).to_have_url(f"{stack.url}/experiments/new/?step=dataset")
    expect(page.locator("input[name=source]:checked")).to_have_value("builtin:iris")
    for _ in ("target", "preprocessing", "models"):
        page.click("button[value=next]")
    expect(page.locator("h2")).to_have_text("Models")
    expect(page.locator("#id_use_LogisticRegression")).to_be_checked()
    expect(page.locator("#id_LogisticRegression__C")).to_have_value(re.compile(r"^0\.1, ?1(\.0)?$"))
    for _ in ("cv", "runner", "review"):
        page.click("button[value=next]")
    expect(page.locator("#id_name")).to_have_value("Iris flow (edited)")
    expect(page.locator(".spec-readable")).to_contain_text("3 folds")
    page.goto(f"{stack.url}/runs/{run.pk}/results/")
    page.locator("#rerun-btn").click()
    rerun = wait_for(lambda: Run.objects.filter(rerun_of=run).first(), message="the re-run")
    expect(page).to_have_url(f"{stack.url}/runs/{rerun.pk}/")
    wait_for(completed(rerun.pk), timeout=120, message="the re-run to complete")

    # 7. Compare the two runs, picked with the runs list's checkboxes.
    page.goto(f"{stack.url}/")
    page.locator(f"#compare-{run.pk}").check()
    page.locator(f"#compare-{rerun.pk}").check()
    page.get_by_role("button", name="Compare selected runs").click()
    expect(page.locator("h1")).to_have_text("Compare runs")
    expect(page.locator("table.compare-table thead")).to_contain_text(f"#{run.pk}")
    expect(page.locator("table.compare-table thead")).to_contain_text(f"#{rerun.pk}")
    # The per-fold chart (the overlaid ROC and PR plots share its frame, class plot-svg).
    expect(page.locator("#compare-body svg.fold-svg:not(.plot-svg) g.series")).to_have_count(2)
    compare_url = page.url
    assert page.errors == []

    # Every page fits a 390 px phone; wide tables scroll inside their own box.
    phone = open_page(chromium, stack, owner, width=390)
    for url in (f"{stack.url}/runs/{run.pk}/results/", compare_url, f"{stack.url}/models/",
                f"{stack.url}/models/{model.pk}/"):
        phone.goto(url)
        assert fits_the_phone(phone), f"{url} scrolls sideways at 390 px"
        screenshot(phone, "phone-" + url.split("/")[3] + "-" + url.rstrip("/").rsplit("/", 1)[-1][:12])
    assert phone.errors == []
