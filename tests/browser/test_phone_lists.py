"""The lists and the leaderboard on a 390 px phone, with real rows: nothing makes the page scroll sideways,
and the leaderboard shows a score without a swipe."""

import pytest
from django.core.files.base import ContentFile

from datasets.models import Dataset
from experiments.models import Experiment
from runs.models import Run
from tests.browser.conftest import screenshot
from tests.browser.test_layout import PHONE, finished_run, page_width
from tests.helpers import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def on_screen(locator):
    box = wait_for(locator.bounding_box, timeout=10, message="the element on screen")
    return box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]


def test_it_fits_the_experiments_list_on_a_phone(browse, daphne_server, owner, iris_spec):
    experiment = Experiment.objects.create(owner=owner, name="Penguins, every preprocessing choice tried once",
                                           spec=iris_spec)
    run = finished_run(owner)
    Run.objects.filter(pk=run.pk).update(experiment=experiment)
    page = browse(owner, viewport=PHONE)
    page.goto(f"{daphne_server.url}/experiments/")
    row = page.locator(".data-table tbody tr", has_text=experiment.name)
    assert row.count() == 1
    screenshot(page, "experiments-phone")
    assert page_width(page) <= 390
    # Every cell is still there, labelled, and on screen: the row stacks rather than hiding columns.
    for label in ("Dataset", "Task", "Models", "Fits per run", "Last run"):
        cell = row.locator(f'td[data-label="{label}"]')
        assert cell.is_visible() and on_screen(cell), label
    assert on_screen(row.get_by_role("button", name="Launch"))
    assert row.locator('td[data-label="Last run"] .badge').inner_text() == "Completed"


def test_it_fits_the_datasets_list_on_a_phone(browse, daphne_server, owner):
    dataset = Dataset(owner=owner, name="palmer_penguins_with_all_the_measurements.csv", kind=Dataset.Kind.CSV)
    dataset.file.save("penguins.csv", ContentFile(b"bill,flipper,species\n39.1,181,Adelie\n46.5,217,Gentoo\n"
                                                  b"49.3,195,Chinstrap\n38.6,190,Adelie\n"), save=False)
    dataset.describe_csv(dataset.file)
    dataset.save()
    page = browse(owner, viewport=PHONE)
    page.goto(f"{daphne_server.url}/datasets/")
    row = page.locator(".data-table tbody tr", has_text=dataset.name)
    assert row.count() == 1
    screenshot(page, "datasets-phone")
    assert page_width(page) <= 390
    for label in ("Rows × columns", "Size", "Uploaded", "Runs"):
        cell = row.locator(f'td[data-label="{label}"]')
        assert cell.is_visible() and on_screen(cell), label
    assert "4 × 3" in row.locator('td[data-label="Rows × columns"]').inner_text()
    assert on_screen(row.get_by_role("link", name="New experiment"))


def test_it_shows_leaderboard_scores_on_a_phone_without_a_swipe(browse, daphne_server, owner):
    run = finished_run(owner)
    page = browse(owner, viewport=PHONE)
    page.goto(f"{daphne_server.url}/runs/{run.pk}/results/")
    screenshot(page, "leaderboard-phone")
    assert page_width(page) <= 390
    first = page.locator(".leaderboard tbody tr").first
    score = first.locator("td.score").first
    assert score.inner_text().startswith("0.9")  # a mean ± std, not a placeholder
    assert on_screen(score)
    # The score is seen as the page opens: its box lies inside the table's visible part, unscrolled.
    wrap = page.locator(".leaderboard").locator("xpath=..")
    assert wrap.evaluate("el => el.scrollLeft") == 0
    visible = wrap.bounding_box()
    box = score.bounding_box()
    assert box["x"] + box["width"] <= visible["x"] + visible["width"]
    assert on_screen(first.locator("td.variant-cell"))
