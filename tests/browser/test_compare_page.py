"""The compare page in real Chromium against daphne: on a 390 px phone it never scrolls sideways (the
leaderboards and specs scroll inside their own boxes), and "Differences only" hides and shows the equal
settings through htmx; an anonymous viewer opens a shared comparison and sees both runs, with nothing that
acts and no link to the owner's things."""

import pytest
from playwright.sync_api import expect

from results import compare
from runs.control import launch_run
from runs.models import FoldMetric, Run
from sharing.models import ShareLink
from tests.browser.conftest import screenshot
from tests.browser.test_run_page import WATCH_SPEC, off_loop

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = {"width": 390, "height": 844}


def scored_run(owner, name, spec, depths, bonus=0.0):
    """A completed run with three folds of each RandomForest depth in `depths`, long descriptions and all."""
    run = off_loop(lambda: launch_run(owner, spec=spec, name=name))
    off_loop(run.mark_running, "w1")
    rows = []
    for n, depth in enumerate(depths, 1):
        description = f"RandomForestClassifier(n_estimators=15, max_depth={depth}, min_samples_leaf=1)"
        for fold in range(1, 4):
            rows.append(FoldMetric(run=run, variant=n, variant_description=description, fold=fold,
                                   metric="accuracy", value=0.8 + depth / 100 + bonus + fold / 1000, fit_time=0.01))
    FoldMetric.objects.bulk_create(rows)
    Run.objects.filter(pk=run.pk).update(finished_fits=len(rows), total_fits=len(rows))
    off_loop(run.mark_completed, {})
    return Run.objects.get(pk=run.pk)


@pytest.fixture
def two_runs(owner):
    first = scored_run(owner, "Forest with a long name to wrap on a phone", WATCH_SPEC, [2, 3, 4, 5])
    spec = {**WATCH_SPEC, "cv": {**WATCH_SPEC["cv"], "folds": 3, "seed": 7}, "metric": "accuracy"}
    second = scored_run(owner, "Forest again, another seed", spec, [3, 4, 5, 6], bonus=0.01)
    return first, second


def page_width(page):
    return page.evaluate("document.documentElement.scrollWidth")


def shown_settings(page):
    return [t.replace(" (differs)", "").strip() for t in page.locator("#spec-table tbody th[scope=row]").all_text_contents()]


def test_it_fits_a_phone_and_hides_the_equal_settings(browse, daphne_server, owner, two_runs):
    first, second = two_runs
    page = browse(owner, viewport=PHONE)
    page.goto(f"{daphne_server.url}/compare/?runs={first.pk},{second.pk}")
    total = len(compare.spec_table([first, second]))
    expect(page.locator("#spec-count")).to_have_text(f"1 of {total} settings differs, marked ≠.")
    toggle = page.get_by_label("Differences only")
    expect(toggle).to_be_checked()
    assert shown_settings(page) == ["cv.seed"]
    # Five rows (depths 2 to 6, each run has four), both runs' columns and a delta.
    expect(page.locator(".boards-compare tbody tr")).to_have_count(5)
    expect(page.locator(".boards-compare thead th")).to_have_count(4)
    screenshot(page, "compare-phone")
    assert page_width(page) <= 390
    boards = page.locator("#cmp-boards .table-wrap")
    assert boards.evaluate("el => el.scrollWidth > el.clientWidth")  # wider than a phone: scrolls in its box

    toggle.uncheck()  # htmx swaps the spec table alone
    expect(page.locator("#spec-table")).to_have_attribute("data-shown", "all")
    assert len(shown_settings(page)) == total and "task" in shown_settings(page)
    assert "settings=all" in page.url and page_width(page) <= 390
    toggle.check()
    expect(page.locator("#spec-table")).to_have_attribute("data-shown", "differences")
    assert "task" not in shown_settings(page) and page_width(page) <= 390
    expect(page.locator("#spec-count")).to_be_visible()  # the count and the checkbox stayed
    assert not page.errors


def test_it_shows_a_shared_comparison_to_an_anonymous_viewer(chromium, daphne_server, owner, two_runs):
    first, second = two_runs
    _, token = off_loop(ShareLink.create_for_comparison, [first, second], owner)
    context = chromium.new_context(viewport=PHONE)  # no cookie: anonymous
    try:
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        assert page.goto(f"{daphne_server.url}/s/{token}/").status == 200
        for run in (first, second):
            expect(page.locator("#cmp-runs-h + .table-wrap thead")).to_contain_text(run.name)
            expect(page.locator(".boards-compare thead")).to_contain_text(f"#{run.pk}")
        expect(page.locator(".boards-compare tbody tr")).to_have_count(5)
        # Nothing that acts, nothing of the owner's beyond these two runs.
        expect(page.locator("form[method=post], button:not([type=button]), #share-box")).to_have_count(0)
        owner_links = "a[href^='/runs/'], a[href^='/compare'], a[href^='/experiments/'], a[href^='/datasets/'], " \
                      "a[href^='/models/'], a[href^='/account/'], a[href^='/admin/']"
        expect(page.locator(owner_links)).to_have_count(0)
        expect(page.locator("a.back")).to_have_count(0)
        # Its one control, the checkbox, works through the link.
        page.get_by_label("Differences only").uncheck()
        expect(page.locator("#spec-table")).to_have_attribute("data-shown", "all")
        assert page.url.startswith(f"{daphne_server.url}/s/{token}/") and page_width(page) <= 390
        assert not errors
    finally:
        context.close()
