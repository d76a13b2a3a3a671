"""The run page's smaller promises in real Chromium: the live chart's axes, and a Stop that leaves a clean console."""

import re

import pytest
from playwright.sync_api import expect

from runs.control import launch_run
from runs.models import Run
from tests.browser.test_run_page import LONG_SPEC, WATCH_SPEC, badge
from tests.browser.conftest import screenshot
from tests.helpers import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def collect_console(page):
    """Every console message and uncaught error of the page, as (type, text)."""
    seen = []
    page.on("console", lambda m: seen.append((m.type, m.text)))
    page.on("pageerror", lambda e: seen.append(("pageerror", str(e))))
    return seen


def test_it_stops_a_run_without_htmx_console_errors(worker, monitor, browse, daphne_server, owner):
    run = launch_run(owner, spec=LONG_SPEC, name="Stop me cleanly")
    page = browse(owner)
    console = collect_console(page)
    page.goto(f"{daphne_server.url}/runs/{run.pk}/")
    wait_for(lambda: page.locator(".fold-row").count() >= 3, timeout=60, message="some finished folds")
    expect(badge(page)).to_have_text("Running")

    page.locator("#stop-form button").click()
    page.locator("#stop-dialog button", has_text="Stop run").click()
    expect(badge(page)).to_have_text(re.compile("Cancelling…|Stopped"), timeout=5_000)
    expect(badge(page)).to_have_text("Stopped", timeout=30_000)
    run.refresh_from_db()
    assert run.status == Run.Status.STOPPED
    # The Stop answer's out-of-band fragments each found their place (htmx:oobErrorNoTarget otherwise).
    wait_for(lambda: page.locator("#run-outcome a", has_text="partial results").count() == 1, timeout=10,
             message="the stopped outcome")
    bad = [(kind, text) for kind, text in console
           if kind in ("error", "warning", "pageerror") and "htmx" in text.lower()]
    assert not bad, bad
    assert not [c for c in console if c[0] == "pageerror"]


def chart_axes(page):
    """What the live chart's axes say, and the values its points carry."""
    return page.evaluate("""() => {
      const chart = document.getElementById("metrics-chart"), texts = sel => Array.from(chart.querySelectorAll(sel)).map(t => t.textContent);
      const points = Array.from(document.querySelectorAll("#chart-data i"));
      return {x_title: texts(".x-title"), y_title: texts(".y-title"), x_ticks: texts(".x-tick"), y_ticks: texts(".y-tick"),
              axes: chart.querySelectorAll("line.axis").length,
              values: points.flatMap(p => [p.dataset.y, p.dataset.m]).filter(v => v !== "").map(Number),
              ns: points.map(p => Number(p.dataset.n))};
    }""")


def assert_axes_fit_the_data(axes):
    assert axes["x_title"] == ["Fit"] and axes["y_title"] == ["Accuracy"] and axes["axes"] == 2
    ys = [float(t) for t in axes["y_ticks"]]
    assert len(ys) == 5 and ys == sorted(ys)
    # The y ticks span the scores drawn, a little padded, as the results page's fold chart does.
    assert ys[0] < min(axes["values"]) <= max(axes["values"]) < ys[-1]
    assert ys[-1] - ys[0] < 1.3 * (max(axes["values"]) - min(axes["values"])) + 0.2
    # The x ticks number the fits in the order they were scored, from the oldest point the chart holds.
    xs = [int(t) for t in axes["x_ticks"]]
    assert xs and xs == sorted(xs) and xs[0] == axes["ns"][0]
    assert axes["ns"] == list(range(axes["ns"][0], axes["ns"][0] + len(axes["ns"])))
    assert set(xs) <= set(axes["ns"])


def test_it_draws_the_live_chart_with_axes_that_fit_the_data(worker, browse, daphne_server, owner):
    run = launch_run(owner, spec=WATCH_SPEC, name="Axes")
    page = browse(owner)
    page.goto(f"{daphne_server.url}/runs/{run.pk}/")
    wait_for(lambda: page.locator("#metrics-chart circle.chart-dot").count() >= 4, timeout=60, message="chart dots")
    live = chart_axes(page)
    assert live["ns"][0] == 1
    assert_axes_fit_the_data(live)

    expect(badge(page)).to_have_text("Completed", timeout=90_000)
    fits = run.fold_metrics.values("variant", "fold").distinct().count()
    wait_for(lambda: page.locator("#metrics-chart circle.chart-dot").count() == fits, timeout=10, message="dots")
    streamed = chart_axes(page)
    assert_axes_fit_the_data(streamed)
    assert streamed["ns"] == list(range(1, fits + 1))
    # The page rendered afresh numbers the fits as the stream did.
    page.reload()
    wait_for(lambda: page.locator("#metrics-chart circle.chart-dot").count() == fits, timeout=10, message="dots")
    assert chart_axes(page) == streamed
    # The dots sit inside the axes.
    box = page.evaluate("""() => Array.from(document.querySelectorAll('#metrics-chart circle.chart-dot'))
                             .map(c => [Number(c.getAttribute('cx')), Number(c.getAttribute('cy'))])""")
    assert all(58 <= x <= 390 and 10 <= y <= 164 for x, y in box)
    assert not page.errors
    screenshot(page, "run-live-chart")
