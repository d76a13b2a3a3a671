"""The run page's smaller promises in real Chromium: the live chart's axes, and a Stop that leaves a clean console."""

import re

import pytest
from playwright.sync_api import expect

from runs.control import launch_run
from runs.models import Run
from tests.browser.test_run_page import LONG_SPEC, badge
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
