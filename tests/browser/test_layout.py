"""Layout, contrast and dead ends in real Chromium: narrow phones, a wide desktop, WCAG AA colours."""

import pytest
from django.utils import timezone

from runs.control import launch_run
from runs.models import FoldMetric, LogEntry, Run, RunStep
from tests.browser.conftest import screenshot
from tests.browser.test_run_page import WATCH_SPEC, off_loop
from tests.helpers import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def launch(*args, **kwargs):
    """launch_run off Playwright's loop, so its Queued event is published, not refused."""
    return off_loop(lambda: launch_run(*args, **kwargs))

PHONE = {"width": 390, "height": 844}
STATUSES = [s for s, _ in Run.Status.choices]

CONTRAST = """
([fg, bg]) => {
  const channels = c => c.match(/[\\d.]+/g).slice(0, 3).map(Number);
  const lum = c => {
    const [r, g, b] = channels(c).map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
  return (hi + 0.05) / (lo + 0.05);
}
"""


def finished_run(owner, variants=4, folds=5, status="completed"):
    """A run with every fold of `variants` scored on three metrics, long descriptions and a bundle checksum."""
    run = launch(owner, spec=WATCH_SPEC, name="A run with quite a long name to wrap on a phone")
    off_loop(run.mark_running, "w1")
    rows = []
    for variant in range(1, variants + 1):
        description = f"RandomForestClassifier(n_estimators=15, max_depth={variant}, min_samples_leaf=1)"
        for fold in range(1, folds + 1):
            for metric, value in (("accuracy", 0.9 + variant / 100), ("f1_macro", 0.8), ("roc_auc", 0.95)):
                rows.append(FoldMetric(run=run, variant=variant, variant_description=description, fold=fold,
                                       metric=metric, value=value + fold / 1000, fit_time=0.0123))
    FoldMetric.objects.bulk_create(rows)
    Run.objects.filter(pk=run.pk).update(finished_fits=variants * folds, total_fits=variants * folds,
                                         model_file="bundles/model.joblib", model_sha256="0123456789abcdef" * 4)
    if status == "completed":
        off_loop(run.mark_completed, {"best_score": 0.94})
    return Run.objects.get(pk=run.pk)


def page_width(page):
    return page.evaluate("document.documentElement.scrollWidth")


def test_it_fits_the_results_page_and_the_runs_list_on_a_phone(browse, daphne_server, owner):
    run = finished_run(owner)
    launch(owner, spec=WATCH_SPEC, name="Queued next")
    page = browse(owner, viewport=PHONE)
    missing = []
    page.on("response", lambda r: missing.append(r.url) if r.status >= 400 else None)

    page.goto(f"{daphne_server.url}/runs/{run.pk}/results/")
    screenshot(page, "results-phone")
    assert page_width(page) <= 390
    sha = page.locator("code.sha")
    box = sha.bounding_box()
    assert box["x"] + box["width"] <= 390  # wrapped, all of it on screen
    assert page.locator(".leaderboard tbody tr").count() == 4
    # The leaderboard is wider than a phone: it scrolls inside its own box.
    assert page.locator(".table-wrap").first.evaluate("el => el.scrollWidth > el.clientWidth")

    page.goto(f"{daphne_server.url}/")
    screenshot(page, "runs-phone")
    assert page_width(page) <= 390
    for label in ("Status", "Progress", "Started", "Duration"):
        cell = page.locator(f'.runs-table td[data-label="{label}"]').first
        # The list's live stream may swap the row in as it connects: between two reads the cell can be
        # detached, and bounding_box() is then None. Wait for a box rather than read it once.
        box = wait_for(cell.bounding_box, timeout=10, message=f"the {label} cell on screen")
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390, label

    page.goto(f"{daphne_server.url}/runs/{run.pk}/")
    assert page_width(page) <= 390
    assert not missing, missing  # no 404s, the favicon included
    assert page.evaluate("fetch('/favicon.ico').then(r => r.ok && r.url.endsWith('favicon.svg'))")


def test_it_gives_log_messages_the_width_of_a_phone(browse, daphne_server, owner):
    run = launch(owner, spec=WATCH_SPEC, name="Narrow log")
    off_loop(run.mark_running, "w1")
    LogEntry.objects.create(run=run, seq=100, level="warning", step="cross_validate", fold=2, variant=3,
                            message="A long warning about a model that did not converge within the iterations")
    page = browse(owner, viewport=PHONE)
    page.goto(f"{daphne_server.url}/runs/{run.pk}/")
    assert page_width(page) <= 390
    screenshot(page, "run-phone")
    message = page.locator(".log-line .log-msg").first.bounding_box()
    assert message["width"] >= 280, message


def test_it_keeps_the_log_under_the_steps_beside_a_long_metrics_table(browse, daphne_server, owner):
    run = finished_run(owner, variants=10, folds=3, status="running")
    RunStep.objects.filter(run=run, name="load_data").update(status="completed", started_at=timezone.now())
    page = browse(owner, viewport={"width": 1280, "height": 900})
    page.goto(f"{daphne_server.url}/runs/{run.pk}/")
    activity = page.locator(".run-activity").bounding_box()
    logs = page.locator(".run-logs").bounding_box()
    metrics = page.locator(".run-metrics").bounding_box()
    assert metrics["height"] > activity["height"] + 200  # the table is long...
    assert 0 <= logs["y"] - (activity["y"] + activity["height"]) < 40  # ...and opens no gap on the left
    assert metrics["x"] > logs["x"] + logs["width"]  # beside it, not under
    # The Fit column stays on one line ("0.01 s", not "0.01 / s").
    lines = page.locator(".metrics-table .fold-row .fit").first.evaluate(
        "el => { const r = document.createRange(); r.selectNodeContents(el); return r.getClientRects().length; }")
    assert lines == 1
    assert page_width(page) <= 1280
    page.goto(f"{daphne_server.url}/runs/{run.pk}/results/?sort=f1_macro&dir=worse")
    screenshot(page, "results-desktop")


def test_it_meets_wcag_aa_contrast_for_badges_and_text(browse, daphne_server, owner):
    run = launch(owner, spec=WATCH_SPEC, name="Colours")
    page = browse(owner)
    page.goto(f"{daphne_server.url}/runs/{run.pk}/")
    ratios = {}
    for status in STATUSES:
        colours = page.evaluate("""status => {
          const el = document.createElement('span');
          el.className = 'badge badge-' + status;
          el.textContent = status;
          document.body.appendChild(el);
          const style = getComputedStyle(el);
          const colours = [style.color, style.backgroundColor];
          el.remove();
          return colours;
        }""", status)
        assert "rgba(0, 0, 0, 0)" not in colours, status  # a real background, from the tokens
        ratios[f"badge {status}"] = page.evaluate(CONTRAST, colours)
    muted = page.evaluate("getComputedStyle(document.querySelector('.run-meta.muted')).color")
    page_bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
    card_bg = page.evaluate("getComputedStyle(document.querySelector('.card')).backgroundColor")
    pending = page.evaluate("getComputedStyle(document.querySelector('.step-pending .step-icon')).color")
    ratios["muted on page"] = page.evaluate(CONTRAST, [muted, page_bg])
    ratios["muted on card"] = page.evaluate(CONTRAST, [muted, card_bg])
    ratios["pending step icon on card"] = page.evaluate(CONTRAST, [pending, card_bg])
    low = {name: round(r, 2) for name, r in ratios.items() if r < 4.5}
    assert not low, low
    print({name: round(r, 2) for name, r in ratios.items()})
